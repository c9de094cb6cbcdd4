"""The benchmark suite, one command: every ``benchmarks/bench_*.py`` in turn, one Markdown file.

    pip install -e '.[bench]'
    python benchmarks/run.py            # writes benchmarks/RESULTS.md and prints it
    python benchmarks/run.py --quick    # smaller sizes, for a smoke run
    python benchmarks/run.py --only bench_overhead.py bench_runs.py

Every figure is measured side by side in the same run (a ratio or a difference against the thing
it is compared with); nothing here is asserted in the test suite. The file opens with the
summary table (each benchmark's headline figures, recorded through ``summary.py``, against the
targets), then each benchmark's own tables. The header names the date, the machine, its load
and the Python and package versions, so a figure quoted in the README can be traced to its run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import summary

HERE = Path(__file__).resolve().parent

QUICK = {
    "bench_overhead.py": ["--calls", "50", "--rounds", "3", "--repeat", "3"],
    "bench_runs.py": ["--prompts", "8", "--repeat", "1"],
    "bench_local.py": ["--only", "test_questions.py"],
    "bench_fanout.py": ["--repeat", "1"],
    "bench_cache.py": ["--entries", "10000", "--samples", "1000"],
    "bench_cache_cli.py": ["--entries", "5000", "--samples", "500"],
    "bench_intercept.py": ["--calls", "100"],
    "bench_prefetch.py": ["--repeat", "1"],
}


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for name in ("pytest", "litellm", "openai", "diskcache", "rapidfuzz"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{name} {importlib.metadata.version(name)}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{datetime.date.today().isoformat()}, {cpu}, {os.cpu_count()} cores"
        f" (load average at the start {load}), Python {platform.python_version()},"
        f" {', '.join(versions)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--only", nargs="+", metavar="SCRIPT", help="these bench_*.py only")
    args = parser.parse_args()
    header = f"# Benchmark results\n\n{_machine()}\n\nCommand: `python benchmarks/run.py"
    header += " --quick`" if args.quick else "`"
    sections = []
    failed = 0
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.name in args.only or s.stem in args.only]
    with tempfile.TemporaryDirectory() as tmp:
        figures = str(Path(tmp) / "summary.jsonl")
        env = {**os.environ, summary.ENV: figures}
        for script in scripts:
            extra = QUICK.get(script.name, []) if args.quick else []
            print(f"running {script.name} {' '.join(extra)}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, str(script), *extra],
                capture_output=True,
                text=True,
                cwd=HERE.parent,
                env=env,
            )
            took = time.perf_counter() - started
            body = done.stdout.strip()
            if done.returncode != 0:
                failed += 1
                body += (
                    f"\n\n**failed (exit {done.returncode})**\n\n```\n{done.stderr[-2000:]}\n```"
                )
            sections.append(f"## {script.stem} ({took:.0f} s)\n\n{body}\n")
        rows = summary.read(figures)
    text = "\n".join([header, "## Summary\n", summary.table(rows) + "\n", *sections])
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
