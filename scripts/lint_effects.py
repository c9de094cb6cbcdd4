"""Measure the effects behind the risky-prompt lint on the bundled local model.

Run from the repository root (needs the ``local`` extra; ~420 greedy calls, cached)::

    python scripts/lint_effects.py                  # writes pytest_promptpert/lint_effects.json
    python scripts/lint_effects.py --questions 12   # a quicker, rougher table (~126 calls)

Each of 40 short factual questions is asked in a zero-shot and a few-shot ``Question: …
Answer:`` prompt, as written and with the variant that stands for each lint rule applied (to the
whole prompt for the answer cue, to the question otherwise). An answer *changed* when its first
line differs after case, whitespace and final-punctuation normalisation. The lint quotes these
counts next to each finding.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from pytest_promptpert import CachedLLM
from pytest_promptpert.variants import VariantCatalog

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "pytest_promptpert" / "lint_effects.json"
MODEL = "local/gemma-3-270m"
MAX_TOKENS = 12

QUESTIONS = (
    "What is the capital of France?",
    "What is the capital of Japan?",
    "What is the capital of Italy?",
    "What is the capital of Germany?",
    "What is the capital of Spain?",
    "What is the capital of Canada?",
    "What is the largest planet in the solar system?",
    "What is the closest star to the Earth?",
    "How many legs does a spider have?",
    "How many days are there in a week?",
    "How many continents are there?",
    "How many sides does a triangle have?",
    "What colour is the sky on a clear day?",
    "What colour are ripe bananas?",
    "What is the boiling point of water in Celsius?",
    "What is two plus two?",
    "What is ten minus three?",
    "What is the chemical symbol for gold?",
    "What gas do plants absorb from the air?",
    "Who wrote Romeo and Juliet?",
    "Who painted the Mona Lisa?",
    "Which animal is known as the king of the jungle?",
    "Which ocean is the largest?",
    "Which planet is known as the red planet?",
    "What is the longest river in Africa?",
    "What language is spoken in Brazil?",
    "What is the currency of the United Kingdom?",
    "In which country are the pyramids of Giza?",
    "What is frozen water called?",
    "What do bees make?",
)
#: Questions with quoted words, for the quotes rule.
QUOTED = (
    'What is the plural of "mouse"?',
    'What is the opposite of "hot"?',
    'What is the French word for "cat"?',
    'What is the past tense of "run"?',
    'How many letters are in the word "apple"?',
    "What is the opposite of 'up'?",
    "What is the plural of 'child'?",
    'Which animal says "moo"?',
    'What is the German word for "house"?',
    'What is the first letter of "zebra"?',
)

FEW_SHOT = (
    "Question: What is the capital of Portugal?\nAnswer: Lisbon\n\n"
    "Question: How many wheels does a bicycle have?\nAnswer: Two\n\n"
    "Question: What colour is grass?\nAnswer: Green\n\n"
)
TEMPLATES = {"zero-shot": "Question: {q}\nAnswer:", "few-shot": FEW_SHOT + "Question: {q}\nAnswer:"}

#: lint rule -> (variant, applied to "prompt" or "question")
RULES = {
    "space_after_cue": ("trailing_space", "prompt"),
    "no_terminal_punctuation": ("strip_period", "question"),
    "lower_first": ("lower_first", "question"),
    "double_space": ("double_space", "question"),
    "quotes": ("curly_quotes", "question"),
}


def normalise(output: str) -> str:
    first = next((line for line in output.strip().splitlines() if line.strip()), "")
    return re.sub(r"[\s.!?]+$", "", " ".join(first.lower().split()))


def questions(n: int) -> tuple[str, ...]:
    """*n* questions, a quarter of them with quoted words (all 40 by default)."""
    quoted = min(len(QUOTED), n // 4)
    return QUESTIONS[: n - quoted] + QUOTED[:quoted]


def measure(llm: CachedLLM, asked_questions: tuple[str, ...], only: list[str]) -> dict[str, object]:
    catalog = VariantCatalog()
    rules: dict[str, object] = {}
    for rule in only:
        variant, where = RULES[rule]
        measurements = []
        for setting, template in TEMPLATES.items():
            asked = changed = 0
            for q in asked_questions:
                prompt = template.format(q=q)
                if where == "prompt":
                    perturbed = catalog.apply(variant, prompt)
                else:
                    perturbed = template.format(q=catalog.apply(variant, q))
                if perturbed == prompt:
                    continue  # the variant has nothing to change in this question
                asked += 1
                changed += normalise(llm(prompt)) != normalise(llm(perturbed))
            measurements.append(
                {"setting": setting, "variant": variant, "questions": asked, "changed": changed}
            )
            print(f"{rule:24} {setting:9} {variant:15} changed {changed:2} of {asked}", flush=True)
        rules[rule] = {"variant": variant, "applied_to": where, "measurements": measurements}
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache-dir", default=str(ROOT / ".promptpert_cache"))
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument(
        "--questions",
        type=int,
        default=len(QUESTIONS) + len(QUOTED),
        help="how many of the 40 questions to ask (fewer for a quick, rougher table)",
    )
    parser.add_argument(
        "--rules", nargs="+", choices=list(RULES), default=list(RULES), help="measure only these"
    )
    args = parser.parse_args()
    asked = questions(args.questions)
    started = time.perf_counter()
    with CachedLLM(MODEL, cache_dir=args.cache_dir, temperature=0, max_tokens=MAX_TOKENS) as llm:
        rules = measure(llm, asked, args.rules)
        calls = llm.stats.calls
    command = "python scripts/lint_effects.py" + (
        f" --questions {args.questions}" if len(asked) < len(QUESTIONS) + len(QUOTED) else ""
    )
    table = {
        "model": MODEL,
        "source": f"{command} (greedy, max_tokens={MAX_TOKENS}, first answer line compared)",
        "questions": len(asked),
        "rules": rules,
    }
    Path(args.out).write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    print(f"{calls} calls, {time.perf_counter() - started:.0f}s; wrote {args.out}")


if __name__ == "__main__":
    main()
