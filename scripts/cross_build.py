"""How portable are the bundled model's greedy answers? Record them on one build, compare two.

Greedy decoding of a 270M model has near-ties: two candidate tokens whose log-probabilities
differ by a hair. llama.cpp compiled for another CPU (native instructions, another SIMD path)
sums in another order, and a near-tie can resolve the other way. This script records, for a
fixed set of prompts (the examples' prompts and their variants, and 40 factual questions in
six spellings), each greedy output, through the same llama.cpp server the plugin starts::

    python scripts/cross_build.py record portable.json   # with one llama-cpp-python build
    python scripts/cross_build.py record native.json     # ... and with another
    python scripts/cross_build.py compare portable.json native.json

``compare`` prints how many outputs agree, and for the ones that differ the log-probability
margin between the best and second-best token where they part and at the first token, as
this machine's build sees it (small margins are the near-ties that moved).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_promptpert.local import REPEAT_PENALTY, SEED, LocalModels
from pytest_promptpert.variants import BUILTIN_VARIANTS

QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of Italy?",
    "What is the capital of Japan?",
    "What is the capital of Spain?",
    "What is the capital of Germany?",
    "What is the capital of Egypt?",
    "What is the capital of Canada?",
    "What is the capital of Australia?",
    "What is the largest planet in the solar system?",
    "What is the closest star to the Earth?",
    "How many days are in a week?",
    "How many legs does a spider have?",
    "How many continents are there?",
    "What colour is the sky on a clear day?",
    "What do bees make?",
    "What is frozen water called?",
    "Who wrote Romeo and Juliet?",
    "Who painted the Mona Lisa?",
    "What is the chemical symbol for gold?",
    "What is the boiling point of water in Celsius?",
    "What language is spoken in Brazil?",
    "What is the largest ocean on Earth?",
    "What is the tallest mountain in the world?",
    "What is the longest river in Africa?",
    "Which animal is known as the king of the jungle?",
    "What gas do plants absorb from the air?",
    "How many hours are in a day?",
    "What is the opposite of hot?",
    "What is two plus two?",
    "What is the square root of nine?",
    "What is the currency of Japan?",
    "What is the capital of Russia?",
    "What is the main ingredient of bread?",
    "What is the hardest natural substance?",
    "Which planet is known as the red planet?",
    "What is the first letter of the alphabet?",
    "How many months are in a year?",
    "What do cows drink?",
    "What is the freezing point of water in Celsius?",
    "Which bird is a symbol of peace?",
]
QUESTION_VARIANTS = (
    "original",
    "strip_period",
    "lower_first",
    "uppercase",
    "trailing_space",
    "add_period",
)

#: The examples' prompts (examples/*.py), each with the variants its test runs.
EXAMPLES = {
    "Create a sign with a message on it that describes your situation.": (
        "original",
        "strip_period",
        "lower_first",
        "lower_first+strip_period",
    ),
    "Q: What is the capital of France?\nA:": (
        "original",
        "leading_space",
        "uppercase",
        "lower_first",
        "trailing_space",
        "trailing_newline",
    ),
    "Answer geography questions in one short sentence.\n\nQ: What is the capital of Italy?\nA:": (
        "original",
        "exclamation",
        "leading_space",
    ),
    "The opposite of hot is": ("original", "leading_space", "double_space", "trailing_newline"),
    "The opposite of day is": ("original", "leading_space", "double_space", "trailing_newline"),
}


def _apply(name: str, text: str) -> str:
    catalog = {v.name: v for v in BUILTIN_VARIANTS}
    for part in name.split("+"):
        if part != "original":
            text = catalog[part](text)
    return text


def prompts() -> list[tuple[str, str, str]]:
    """(group, variant, prompt) for every prompt measured, in a fixed order."""
    out: list[tuple[str, str, str]] = []
    for base, names in EXAMPLES.items():
        for name in names:
            out.append((base, name, _apply(name, base)))
    for question in QUESTIONS:
        base = f"Q: {question}\nA:"
        for name in QUESTION_VARIANTS:
            # the variant goes to the question only, as promptpert.perturb() would
            out.append((base, name, f"Q: {_apply(name, question)}\nA:"))
    return out


def _post(api_base: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{api_base}/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def _body(alias: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": alias,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "repeat_penalty": REPEAT_PENALTY,
        "seed": SEED,
    }


def _complete(api_base: str, alias: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    data = _post(api_base, _body(alias, prompt, max_tokens))
    return {"text": data["choices"][0]["text"]}


def next_token_margin(api_base: str, alias: str, prompt: str) -> float:
    """Log-probability of the best next token minus the second best's (one token, top 2).

    Asked only where needed: llama-cpp-python sorts the whole 262k vocabulary in Python for
    each token whose log-probabilities are requested, which is slow.
    """
    body = {**_body(alias, prompt, 1), "logprobs": 2}
    top = _post(api_base, body)["choices"][0]["logprobs"]["top_logprobs"][0] or {}
    values = sorted(top.values(), reverse=True)
    return values[0] - values[1] if len(values) > 1 else float("inf")


def record(path: Path, max_tokens: int) -> None:
    import importlib.metadata

    models = LocalModels()
    server = models.server_for("local/gemma-3-270m")
    started = time.perf_counter()
    rows = []
    try:
        for group, variant, prompt in prompts():
            out = _complete(server.api_base, server.alias, prompt, max_tokens)
            rows.append({"group": group, "variant": variant, "prompt": prompt, **out})
    finally:
        models.close()
    data = {
        "llama_cpp_python": importlib.metadata.version("llama-cpp-python"),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "max_tokens": max_tokens,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(rows)} prompts recorded in {data['seconds']} s -> {path}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _common_prefix(a: str, b: str) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return a[:i]
    return a[: min(len(a), len(b))]


def compare(a_path: Path, b_path: Path) -> None:
    """Agreement of two recordings; margins (on this machine's build) where they differ."""
    a = json.loads(a_path.read_text(encoding="utf-8"))
    b = json.loads(b_path.read_text(encoding="utf-8"))
    pairs = list(zip(a["rows"], b["rows"], strict=True))
    differ = [(x, y) for x, y in pairs if x["text"] != y["text"]]
    print(
        f"{a_path.name} vs {b_path.name} (llama-cpp-python {a['llama_cpp_python']} /"
        f" {b['llama_cpp_python']}, max_tokens {a['max_tokens']}):"
        f" {len(pairs) - len(differ)} of {len(pairs)} greedy outputs identical,"
        f" {len(differ)} differ"
    )
    if not differ:
        return
    models = LocalModels()
    server = models.server_for("local/gemma-3-270m")
    try:
        for x, y in differ:
            prefix = _common_prefix(x["text"], y["text"])
            parting = next_token_margin(server.api_base, server.alias, x["prompt"] + prefix)
            first = next_token_margin(server.api_base, server.alias, x["prompt"])
            print(
                f"- {x['prompt']!r:.60} ({x['variant']}): part after {len(prefix)} chars,"
                f" margin there {parting:.3f}, first-token margin {first:.3f}:"
                f" {x['text'][:30]!r} vs {y['text'][:30]!r}"
            )
    finally:
        models.close()


def margins(every_variant: bool) -> None:
    """For the examples' prompts: each variant's greedy output, its levenshtein similarity to
    the original's, and the first-token margins of both, on this machine's build."""
    from pytest_promptpert.metrics import builtin_metrics

    similarity = builtin_metrics()["levenshtein"]
    models = LocalModels()
    server = models.server_for("local/gemma-3-270m")
    try:
        for base, names in EXAMPLES.items():
            original = _complete(server.api_base, server.alias, base, 40)["text"]
            base_margin = next_token_margin(server.api_base, server.alias, base)
            print(f"{base!r:.60} original margin {base_margin:.3f}: {original[:50]!r}")
            chosen = [v.name for v in BUILTIN_VARIANTS] if every_variant else names
            for name in chosen:
                prompt = _apply(name, base)
                if name == "original" or prompt == base:
                    continue
                text = _complete(server.api_base, server.alias, prompt, 40)["text"]
                margin = next_token_margin(server.api_base, server.alias, prompt)
                print(
                    f"  {name:26} margin {margin:6.3f}  similarity {similarity(original, text):.2f}"
                    f"  {text[:50]!r}"
                )
    finally:
        models.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--max-tokens", type=int, default=40)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    mar = sub.add_parser("margins")
    mar.add_argument("--every-variant", action="store_true")
    args = parser.parse_args()
    if args.command == "margins":
        margins(args.every_variant)
    elif args.command == "record":
        record(args.out, args.max_tokens)
    else:
        compare(args.a, args.b)


if __name__ == "__main__":
    main()
