"""What the plugin costs on top of what it wraps: import time and per-call overhead.

Run from the repository root, with the project installed (no network, no real model)::

    .venv/bin/python benchmarks/bench_overhead.py [--calls 200] [--repeat 7]

- plugin import: the least wall time of ``python -c "import pytest"`` against
  ``python -c "import pytest, pytest_promptpert.plugin"`` over ``--repeat`` fresh interpreters,
  and which heavy modules the plugin's import brought in (litellm, asyncio, rapidfuzz: none is
  wanted);
- per call, serial, against the test suite's fake OpenAI-compatible provider on loopback with
  no latency: the bare ``openai`` SDK, bare ``litellm.completion``, and ``CachedLLM`` in
  ``cache="off"`` (every call a real call) and cold ``auto`` (every call a real call written to
  the cache) — median milliseconds of wall time per call.

Prints Markdown tables. Each figure is a ratio measured side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fake_provider

HEAVY = ("litellm", "asyncio", "rapidfuzz", "openai", "httpx", "diskcache")


def _least(code: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - started)
    return best


def import_time(repeat: int) -> list[str]:
    bare = _least("import pytest", repeat)
    plugin = _least("import pytest, pytest_promptpert.plugin", repeat)
    probe = (
        "import sys, pytest; before = set(sys.modules); import pytest_promptpert.plugin;"
        f" print(','.join(m for m in {HEAVY!r} if m in sys.modules and m not in before))"
    )
    brought = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.strip()
    return [
        "| import | least wall time |",
        "|---|---:|",
        f"| `import pytest` | {bare * 1000:.0f} ms |",
        f"| `import pytest, pytest_promptpert.plugin` | {plugin * 1000:.0f} ms |",
        f"| the plugin's own cost | **{(plugin - bare) * 1000:.0f} ms** |",
        "",
        f"Heavy modules the plugin's import brought in: {brought or 'none'}"
        f" (checked: {', '.join(HEAVY)}).",
    ]


def _per_call(call: Callable[[int], object], calls: int) -> float:
    call(-1)  # warm up: connections, lazy imports
    times = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def per_call(calls: int) -> list[str]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    server = fake_provider.start()
    key = "sk-bench-not-a-real-key"
    os.environ["OPENAI_API_KEY"] = key
    try:
        import litellm
        import openai

        from pytest_promptpert import CachedLLM

        client = openai.OpenAI(base_url=server.url, api_key=key, max_retries=0)

        def sdk(i: int) -> object:
            return client.chat.completions.create(
                model="stable", messages=[{"role": "user", "content": f"sdk {i}"}]
            )

        def bare_litellm(i: int) -> object:
            return litellm.completion(
                model="openai/stable",
                api_base=server.url,
                messages=[{"role": "user", "content": f"litellm {i}"}],
                max_retries=0,
            )

        rows = [("bare `openai` SDK", _per_call(sdk, calls))]
        rows.append(("bare `litellm.completion`", _per_call(bare_litellm, calls)))
        with tempfile.TemporaryDirectory() as tmp:
            for mode in ("off", "auto"):
                with CachedLLM(
                    "openai/stable",
                    api_base=server.url,
                    cache=mode,
                    cache_dir=Path(tmp) / mode,
                    concurrency=1,
                ) as llm:
                    rows.append(
                        (
                            f"`CachedLLM`, cache={mode}",
                            _per_call(lambda i, llm=llm, m=mode: llm(f"{m} {i}"), calls),
                        )
                    )
    finally:
        server.shutdown()
    base = rows[1][1]
    lines = ["| client (serial, loopback, no latency) | ms per call | over litellm |"]
    lines.append("|---|---:|---:|")
    for name, ms in rows:
        lines.append(f"| {name} | {ms:.2f} | {ms - base:+.2f} ms |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print("### Plugin import\n")
    print("\n".join(import_time(args.repeat)))
    print("\n### Per-call overhead\n")
    print("\n".join(per_call(args.calls)))


if __name__ == "__main__":
    main()
