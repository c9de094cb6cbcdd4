"""Calibrate the metrics on labelled pairs of real outputs of the bundled local model.

One command recollects (needs the ``local`` extra; 419 greedy calls, about 25 minutes on two
cores, cached in ``.promptpert_calibration_cache/`` so a rerun makes none)::

    python scripts/calibrate.py collect            # writes scripts/calibration.json

One command rebuilds the held-out table from the stored outputs and labels, with no model
call, and rewrites the marked block of README.md::

    python scripts/calibrate.py table --write-readme

The set: every prompt of ``calibration_prompts.py`` (five kinds: the sign prompt family, factual
Q/A, few-shot classification, instructions with lists, structured JSON) sent as written and with
every catalog variant that changes it (all families but ``control``; two variants giving the
same prompt count once), greedy, on ``local/gemma-3-270m``. Each (original, variant) pair has an
id ``kind/prompt/variant`` and a human label in ``calibration_labels.json``; the labelling rule
is in ``CALIBRATION.md``. ``collect`` also stores the ``embedding`` metric's scores (the bundled
all-MiniLM-L6-v2), so ``table`` needs no model.

The ``judge`` metric with the local model as its judge is measured apart, on a few held-out
pairs (``python scripts/calibrate.py judge --limit 5``, 20 to 35 s a pair): the 270M base model
continues the judge's prompt instead of answering it, so it gives no verdict to calibrate on.
``dump`` prints every pair's two outputs (and no score), for labelling.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

from calibration_prompts import KINDS, PROMPTS
from calibration_stats import Pair, build_report, held_out_ids, render_markdown

from pytest_promptpert import CachedLLM
from pytest_promptpert.extract import parse_extract
from pytest_promptpert.metrics import MetricContext
from pytest_promptpert.semantic import EmbeddingMetric, JudgeError, JudgeMetric
from pytest_promptpert.variants import CONTROL, VariantCatalog

HERE = Path(__file__).parent
ROOT = HERE.parent
MODEL = "local/gemma-3-270m"
OUTPUTS = HERE / "calibration.json"
LABELS = HERE / "calibration_labels.json"
CACHE = ROOT / ".promptpert_calibration_cache"
README = ROOT / "README.md"
BEGIN = "<!-- calibration-table: begin (python scripts/calibrate.py table --write-readme) -->"
END = "<!-- calibration-table: end -->"


def variant_prompts(prompt: str) -> list[tuple[str, str]]:
    """(variant name, prompt) for each catalog variant that changes *prompt*, first name wins."""
    catalog = VariantCatalog()
    seen = {prompt}
    out = []
    for name in catalog.names():
        if name == CONTROL:
            continue
        text = catalog.apply(name, prompt)
        if text not in seen:
            seen.add(text)
            out.append((name, text))
    return out


def collect(llm: CachedLLM) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for kind, prompts in PROMPTS.items():
        spec = KINDS[kind]
        for pid, prompt in prompts.items():
            original = llm(prompt, max_tokens=spec.max_tokens)
            for variant, text in variant_prompts(prompt):
                rows.append(
                    {
                        "id": f"{kind}/{pid}/{variant}",
                        "kind": kind,
                        "prompt_id": pid,
                        "variant": variant,
                        "extract": spec.extract,
                        "original_prompt": prompt,
                        "variant_prompt": text,
                        "original": original,
                        "output": llm(text, max_tokens=spec.max_tokens),
                        "model_scores": {},
                    }
                )
            print(f"{kind}/{pid}: {len(rows)} pairs so far", file=sys.stderr, flush=True)
    return rows


def _context(llm: CachedLLM, prompt: str) -> MetricContext:
    return MetricContext(
        prompt=prompt,
        model=llm.model,
        judge_model=None,
        embedding_model=None,
        api_base=None,
        request=llm.request,
        fetch=llm.fetch,
    )


def score_with_embeddings(llm: CachedLLM, rows: list[dict[str, Any]]) -> None:
    """Store ``embedding`` on every pair: of the whole outputs, and of what the extractor found."""
    for n, row in enumerate(rows, 1):
        embed = EmbeddingMetric().bind(_context(llm, row["original_prompt"]))
        scores = row["model_scores"]
        scores["embedding"] = float(embed(row["original"], row["output"]))  # type: ignore[arg-type]
        if row["extract"]:
            extractor = parse_extract(row["extract"])
            assert extractor is not None
            a, b = extractor(row["original"]).value, extractor(row["output"]).value
            if a is not None and b is not None:
                scores["embedding+extract"] = float(embed(a, b))  # type: ignore[arg-type]
        if n % 50 == 0:
            print(f"embedded {n}/{len(rows)}", file=sys.stderr, flush=True)


def ask_judge(llm: CachedLLM, rows: list[dict[str, Any]], limit: int) -> None:
    """Ask the ``judge`` metric (the local model as judge) on *limit* held-out pairs, spread out.

    Prints each pair's verdict (or that the reply held none) and the time it took; the verdicts
    are not stored, because the bundled base model gives too few of them to calibrate on.
    """
    held = held_out_ids([(r["id"], r["kind"]) for r in rows])
    pool = [r for r in rows if r["id"] in held]
    sample = pool[:: max(1, len(pool) // limit)][:limit]
    verdicts = 0
    for row in sample:
        started = time.perf_counter()
        try:
            rating = JudgeMetric().bind(_context(llm, row["original_prompt"]))(
                row["original"], row["output"]
            )
        except JudgeError as exc:
            said = str(exc).partition("verdict: ")[2]
            shown = f"no verdict, the reply begins {said[:100]}"
        else:
            verdicts += 1
            shown = f"verdict {rating!r:.160}"
        print(f"{row['id']} ({time.perf_counter() - started:.0f} s): {shown}")
    print(f"{verdicts} of {len(sample)} judge replies held a same/different verdict")


def save(path: Path, rows: list[dict[str, Any]]) -> None:
    data = {"model": MODEL, "collected": datetime.date.today().isoformat(), "pairs": rows}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def table(outputs: Path = OUTPUTS, labels: Path = LABELS) -> str:
    """The Markdown block of README.md, from the stored outputs and labels alone."""
    data = json.loads(outputs.read_text(encoding="utf-8"))
    stored = json.loads(labels.read_text(encoding="utf-8"))
    report = build_report(load_pairs(data["pairs"], stored))
    return render_markdown(report, date=data["collected"])


def load_pairs(rows: list[dict[str, Any]], labels: dict[str, str]) -> list[Pair]:
    missing = [r["id"] for r in rows if r["id"] not in labels]
    if missing:
        raise SystemExit(f"{len(missing)} pairs have no label in {LABELS}, e.g. {missing[:3]}")
    return [
        Pair(
            id=r["id"],
            kind=r["kind"],
            label=labels[r["id"]],
            original=r["original"],
            output=r["output"],
            extract=r["extract"],
            model_scores=r["model_scores"],
        )
        for r in rows
    ]


def write_readme(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no block between {BEGIN!r} and {END!r}")
    text = text[: start + len(BEGIN)] + "\n" + table.rstrip("\n") + "\n" + text[end:]
    README.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="call the local model (cached) and write the outputs")
    c.add_argument("--out", type=Path, default=OUTPUTS)
    j = sub.add_parser("judge", help="ask the judge metric (local model) on held-out pairs")
    j.add_argument("--from-json", type=Path, default=OUTPUTS)
    j.add_argument("--limit", type=int, default=5)
    t = sub.add_parser("table", help="the held-out table from stored outputs; no model call")
    t.add_argument("--from-json", type=Path, default=OUTPUTS)
    t.add_argument("--labels", type=Path, default=LABELS)
    t.add_argument("--write-readme", action="store_true")
    d = sub.add_parser("dump", help="print every pair's outputs, for labelling (no scores)")
    d.add_argument("--from-json", type=Path, default=OUTPUTS)
    d.add_argument("--kind")
    args = parser.parse_args()
    if args.command == "collect":
        with CachedLLM(MODEL, cache_dir=CACHE, temperature=0) as llm:
            rows = collect(llm)
            save(args.out, rows)
            score_with_embeddings(llm, rows)
        save(args.out, rows)
        print(f"wrote {len(rows)} pairs to {args.out}", file=sys.stderr)
        return
    if args.command == "table":
        text = table(args.from_json, args.labels)
        print(text)
        if args.write_readme:
            write_readme(text)
        return
    rows = json.loads(args.from_json.read_text(encoding="utf-8"))["pairs"]
    if args.command == "judge":
        with CachedLLM(MODEL, cache_dir=CACHE, temperature=0) as llm:
            ask_judge(llm, rows, args.limit)
        return
    if args.command == "dump":
        for r in rows:
            if args.kind and r["kind"] != args.kind:
                continue
            print(f"## {r['id']}\n  O: {r['original']!r}\n  V: {r['output']!r}")
        return


if __name__ == "__main__":
    main()
