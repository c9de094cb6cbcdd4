"""The figures ``run.py`` puts in its summary table: each benchmark records its own.

A benchmark calls :func:`record` for each headline figure; when ``run.py`` runs it, the
environment variable ``PROMPTPERT_BENCH_SUMMARY`` names a JSON-lines file the figures are
appended to, and ``run.py`` turns them into the table at the top of ``RESULTS.md``. Run alone,
a benchmark records nothing (its own Markdown is all it prints).
"""

from __future__ import annotations

import json
import os

ENV = "PROMPTPERT_BENCH_SUMMARY"


def record(figure: str, measured: str, target: str = "", met: bool | None = None) -> None:
    """One row: what was compared, the measured ratio or difference, the target, met or not."""
    path = os.environ.get(ENV)
    if not path:
        return
    row = {"figure": figure, "measured": measured, "target": target, "met": met}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def read(path: str) -> list[dict[str, object]]:
    try:
        with open(path, encoding="utf-8") as rows:
            return [json.loads(line) for line in rows if line.strip()]
    except FileNotFoundError:
        return []


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| figure | measured | target | met |", "|---|---:|---:|:---:|"]
    for row in rows:
        met = {True: "yes", False: "**no**", None: ""}[row.get("met")]  # type: ignore[index]
        lines.append(f"| {row['figure']} | {row['measured']} | {row['target']} | {met} |")
    return "\n".join(lines)
