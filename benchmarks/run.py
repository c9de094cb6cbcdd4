"""The benchmark suite, one command: every ``benchmarks/bench_*.py`` in turn, one Markdown file.

    .venv/bin/python benchmarks/run.py            # writes benchmarks/RESULTS.md and prints it
    .venv/bin/python benchmarks/run.py --quick    # smaller sizes, for a smoke run

Every figure is measured side by side in the same run (a ratio or a difference against the thing
it is compared with); nothing here is asserted in the test suite. The header names the date,
the machine and the Python and package versions, so a figure quoted in the README can be traced
to its run.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent

QUICK = {
    "bench_overhead.py": ["--calls", "50", "--repeat", "3"],
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
    return (
        f"{datetime.date.today().isoformat()}, {cpu}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, {', '.join(versions)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    sections = [f"# Benchmark results\n\n{_machine()}\n"]
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        extra = QUICK.get(script.name, []) if args.quick else []
        print(f"running {script.name} {' '.join(extra)}", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, str(script), *extra], capture_output=True, text=True, cwd=HERE.parent
        )
        body = done.stdout.strip()
        if done.returncode != 0:
            failed += 1
            body += f"\n\n**failed (exit {done.returncode})**\n\n```\n{done.stderr[-2000:]}\n```"
        sections.append(f"## {script.stem}\n\n{body}\n")
    text = "\n".join(sections)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
