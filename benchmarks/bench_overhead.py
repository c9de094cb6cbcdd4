"""What the plugin costs on top of what it wraps: import time and per-call overhead.

Run from the repository root, with the project installed (no network, no real model)::

    .venv/bin/python benchmarks/bench_overhead.py [--calls 200] [--rounds 5] [--repeat 7]

- plugin import: the least wall time of ``python -c "import pytest"`` against
  ``python -c "import pytest, pytest_promptpert.plugin"`` over ``--repeat`` fresh interpreters
  (alternating), and which heavy modules the plugin's import brought in (litellm, asyncio,
  rapidfuzz: none is wanted);
- per call, against the test suite's fake OpenAI-compatible provider on loopback with no
  latency, at concurrency 1 (one call after another) and 8 (eight threads): the bare ``openai``
  SDK, bare ``litellm.completion``, and ``CachedLLM`` cold (every call a miss written to the
  cache) and with ``cache="off"``. ``--rounds`` rounds, the clients taking turns within each,
  so that a machine's load falls on all of them alike; the figure is the median over rounds of
  wall time per call, and the overhead the median of the per-round differences.

Prints Markdown tables. Each figure is a ratio or difference measured side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fake_provider
import summary

#: where the import probes run: the installed package, not a checkout in the current directory
NEUTRAL = tempfile.gettempdir()
HEAVY = ("litellm", "asyncio", "rapidfuzz", "openai", "httpx", "diskcache")


def _times(code: str, other: str, repeat: int) -> tuple[float, float]:
    """Least wall time of fresh interpreters running *code* and *other*, taking turns."""
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for i, source in enumerate((code, other)):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", source], check=True, cwd=NEUTRAL)
            best[i] = min(best[i], time.perf_counter() - started)
    return best[0], best[1]


def _own_import_time(repeat: int) -> tuple[float, int]:
    """(ms, modules): ``-X importtime`` self time of the modules the plugin's import adds.

    Each module's least self time over *repeat* fresh interpreters: steadier than the
    difference of two whole-interpreter wall times on a busy machine.
    """
    best: dict[str, int] = {}
    for _ in range(repeat):
        seen = {}
        for code in ("import pytest", "import pytest, pytest_promptpert.plugin"):
            err = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", code],
                capture_output=True,
                text=True,
                check=True,
                cwd=NEUTRAL,
            ).stderr
            seen[code] = {
                m.group(2): int(m.group(1))
                for m in re.finditer(r"import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)", err)
            }
        bare, plugin = seen.values()
        for name, micros in plugin.items():
            if name not in bare:
                best[name] = min(best.get(name, micros), micros)
    return sum(best.values()) / 1000, len(best)


def import_time(repeat: int) -> list[str]:
    bare, plugin = _times("import pytest", "import pytest, pytest_promptpert.plugin", repeat)
    own, modules = _own_import_time(repeat)
    probe = (
        "import sys, pytest; before = set(sys.modules); import pytest_promptpert.plugin;"
        f" print(','.join(m for m in {HEAVY!r} if m in sys.modules and m not in before))"
    )
    brought = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=NEUTRAL
    ).stdout.strip()
    cost = (plugin - bare) * 1000
    summary.record(
        "plugin import over bare `import pytest`",
        f"{own:.1f} ms in {modules} modules (wall: {cost:+.0f} ms, {plugin / bare:.2f}x);"
        f" heavy modules: {brought or 'none'}",
        "<= 30 ms, none of litellm/asyncio/rapidfuzz",
        max(own, cost) <= 30 and not any(m in brought for m in ("litellm", "asyncio", "rapidfuzz")),
    )
    return [
        "| import | least wall time |",
        "|---|---:|",
        f"| `import pytest` | {bare * 1000:.0f} ms |",
        f"| `import pytest, pytest_promptpert.plugin` | {plugin * 1000:.0f} ms |",
        f"| the plugin's own cost | **{cost:+.0f} ms** |",
        f"| the {modules} modules it adds, their own import time (`-X importtime`, least"
        f" of {repeat}) | **{own:.1f} ms** |",
        "",
        f"Heavy modules the plugin's import brought in: {brought or 'none'}"
        f" (checked: {', '.join(HEAVY)}).",
    ]


def _batch(call: Callable[[str], object], prompts: list[str], concurrency: int) -> float:
    """Wall ms per call for *prompts*, *concurrency* threads at a time."""
    started = time.perf_counter()
    if concurrency == 1:
        for prompt in prompts:
            call(prompt)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(call, prompts))
    return (time.perf_counter() - started) / len(prompts) * 1000


def per_call(calls: int, rounds: int, concurrency: int, server_url: str) -> list[str]:
    import litellm
    import openai

    from pytest_promptpert import CachedLLM

    key = os.environ["OPENAI_API_KEY"]
    sdk = openai.OpenAI(base_url=server_url, api_key=key, max_retries=0)

    def bare_sdk(prompt: str) -> object:
        return sdk.chat.completions.create(
            model="stable", messages=[{"role": "user", "content": prompt}]
        )

    def bare_litellm(prompt: str) -> object:
        return litellm.completion(
            model="openai/stable",
            api_base=server_url,
            messages=[{"role": "user", "content": prompt}],
            max_retries=0,
        )

    names = [
        "bare `openai` SDK",
        "bare `litellm.completion`",
        "`CachedLLM`, cold (a miss written to the cache)",
        '`CachedLLM`, cache="off"',
    ]
    results: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        clients = {
            mode: CachedLLM(
                "openai/stable",
                api_base=server_url,
                cache=mode,
                cache_dir=Path(tmp) / mode,
                concurrency=concurrency,
            )
            for mode in ("auto", "off")
        }
        calls_of = {
            names[0]: bare_sdk,
            names[1]: bare_litellm,
            names[2]: clients["auto"],
            names[3]: clients["off"],
        }
        try:
            for name, call in calls_of.items():  # warm up: connections, lazy imports, threads
                _batch(call, [f"warm {name} {i}" for i in range(concurrency)], concurrency)
            for r in range(rounds):
                for name, call in calls_of.items():
                    prompts = [f"{name} round {r} question {i}" for i in range(calls)]
                    results[name].append(_batch(call, prompts, concurrency))
        finally:
            for client in clients.values():
                client.close()
    median = {name: statistics.median(times) for name, times in results.items()}

    def over(name: str, base: str) -> float:
        return statistics.median(a - b for a, b in zip(results[name], results[base], strict=True))

    cold = names[2]
    summary.record(
        f"cold `CachedLLM` call over bare `litellm.completion`, concurrency {concurrency}",
        f"{over(cold, names[1]):+.2f} ms ({median[cold]:.2f} vs {median[names[1]]:.2f} ms)",
        "< 1 ms",
        over(cold, names[1]) < 1.0,
    )
    summary.record(
        f"cold `CachedLLM` call over the bare `openai` SDK, concurrency {concurrency}",
        f"{over(cold, names[0]):+.2f} ms ({median[cold]:.2f} vs {median[names[0]]:.2f} ms)",
    )
    lines = [
        f"| client (concurrency {concurrency}, loopback, no latency) | ms per call"
        " | over the SDK | over litellm |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        lines.append(
            f"| {name} | {median[name]:.2f} | {over(name, names[0]):+.2f} ms"
            f" | {over(name, names[1]):+.2f} ms |"
        )
    lines.append(
        f"\n{calls} calls a round, {rounds} rounds; medians over rounds, differences paired"
        " by round."
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200, help="calls a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=7, help="fresh interpreters to import")
    args = parser.parse_args()
    print("### Plugin import\n")
    print("\n".join(import_time(args.repeat)))
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ["OPENAI_API_KEY"] = "sk-bench-not-a-real-key"
    # http.server writes headers and body apart: without this, delayed ACKs add ~40 ms.
    fake_provider._Handler.disable_nagle_algorithm = True
    server = fake_provider.start()
    try:
        for concurrency in (1, 8):
            print(f"\n### Per-call overhead, concurrency {concurrency}\n")
            print("\n".join(per_call(args.calls, args.rounds, concurrency, server.url)))
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
