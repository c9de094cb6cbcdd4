"""How much the concurrent fan-out of variant calls saves, and what a fully cached run costs.

Run from the repository root, with the project installed (no network, no real model)::

    .venv/bin/python benchmarks/bench_fanout.py
    .venv/bin/python benchmarks/bench_fanout.py --latency 0.4 --repeat 3 --acalls 16

Starts the fake OpenAI-compatible provider of the test suite on loopback, writes a temporary
project of PROMPTS prompts x 6 prompt-changing variants and times ``python -m pytest`` on it:
cold with ``--promptpert-concurrency=1``, cold with the default (8), cold with no provider
latency (the fixed cost of a cold run), warm (every answer cached), and an equivalent unmarked
suite that makes no model call at all (plugin loaded, and plugin disabled). Then times
``CachedLLM.acall`` fanned out with ``asyncio.gather``. Prints Markdown tables (wall time is
the median of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fake_provider

VARIANTS = [
    "add_period",
    "uppercase",
    "lowercase",
    "trailing_space",
    "leading_space",
    "double_space",
]
PROMPTS = [
    "What is the capital of France",
    "Name three primary colours",
    "How many legs does a spider have",
    "Translate good morning into German",
    "Who wrote the novel Moby Dick",
]

MARKED_SUITE = f"""
import pytest

PROMPTS = {PROMPTS!r}


@pytest.mark.parametrize("prompt", PROMPTS, ids=[f"p{{i}}" for i in range(len(PROMPTS))])
@pytest.mark.promptpert(variants={VARIANTS!r})
def test_answer(llm, prompt):
    assert "forty-two" in llm(prompt)
"""

# The same items (one per prompt and variant), no marker, no model: pytest's own cost.
PLAIN_SUITE = f"""
import pytest

PROMPTS = {PROMPTS!r}
VARIANTS = {["original", *VARIANTS]!r}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("prompt", PROMPTS, ids=[f"p{{i}}" for i in range(len(PROMPTS))])
def test_answer(prompt, variant):
    assert prompt
"""


@dataclass
class Row:
    configuration: str
    seconds: list[float]
    calls: list[int]
    peak_in_flight: int

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def write_project(root: Path, api_base: str, cache_dir: Path) -> None:
    (root / "pyproject.toml").write_text(
        "[tool.promptpert]\n"
        'model = "openai/stable"\n'
        f'api_base = "{api_base}"\n'
        f'cache_dir = "{cache_dir.as_posix()}"\n'
    )


def child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    }
    env["OPENAI_API_KEY"] = "sk-bench-not-a-secret"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def run_pytest(root: Path, *args: str) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=child_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed


def measure(
    name: str, server: fake_provider.FakeProvider, repeat: int, run: Callable[[int], float]
) -> Row:
    """*run(i)* prepares run *i*, then times the part measured and returns its seconds."""
    row = Row(name, [], [], 0)
    for i in range(repeat):
        with server.lock:
            server.max_in_flight = 0
        calls_before = server.calls
        row.seconds.append(run(i))
        row.calls.append(server.calls - calls_before)
        row.peak_in_flight = max(row.peak_in_flight, server.max_in_flight)
        print(f"  {name}: run {i + 1}/{repeat} {row.seconds[-1]:.2f} s", file=sys.stderr)
    return row


def bench_pytest(server: fake_provider.FakeProvider, work: Path, repeat: int) -> list[Row]:
    marked = work / "marked"
    plain = work / "plain"
    for root, suite in ((marked, MARKED_SUITE), (plain, PLAIN_SUITE)):
        root.mkdir()
        (root / "test_suite.py").write_text(suite)
    write_project(plain, server.url, work / "plain-cache")

    def cold(*args: str) -> Callable[[int], float]:
        def run(i: int) -> float:
            write_project(marked, server.url, work / f"cold{''.join(args)}-{i}")
            return run_pytest(marked, *args)

        return run

    run_cold = cold()

    def no_latency(i: int) -> float:
        """A cold run's fixed cost: litellm's import and teardown, pytest, per-call work."""
        latency, server.latency = server.latency, 0.0
        try:
            return run_cold(repeat + i)
        finally:
            server.latency = latency

    return [
        measure(
            "cold, `--promptpert-concurrency=1`", server, repeat, cold("--promptpert-concurrency=1")
        ),
        measure("cold, default concurrency (8)", server, repeat, cold()),
        measure("cold, default concurrency, provider latency 0", server, repeat, no_latency),
        # The last cold run's cache holds every answer: a rerun is fully cached.
        measure("warm (all cached)", server, repeat, lambda _: run_pytest(marked)),
        measure(
            "plain pytest, unmarked suite (plugin loaded)",
            server,
            repeat,
            lambda _: run_pytest(plain),
        ),
        measure(
            "plain pytest, unmarked suite, `-p no:promptpert`",
            server,
            repeat,
            lambda _: run_pytest(plain, "-p", "no:promptpert"),
        ),
    ]


def bench_acall(server: fake_provider.FakeProvider, work: Path, n: int, repeat: int) -> list[Row]:
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-secret")
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    from pytest_promptpert import CachedLLM

    # litellm's import and first-call setup are not what is measured here.
    with CachedLLM("openai/stable", cache_dir=work / "acall-warmup", api_base=server.url) as llm:
        llm("warm up")

    def fan_out(concurrency: int) -> Callable[[int], float]:
        def run(i: int) -> float:
            cache_dir = work / f"acall-{concurrency}-{i}"
            with CachedLLM(
                "openai/stable", cache_dir=cache_dir, api_base=server.url, concurrency=concurrency
            ) as llm:

                async def gather() -> list[str]:
                    return await asyncio.gather(*(llm.acall(f"question {j}") for j in range(n)))

                start = time.perf_counter()
                outputs = asyncio.run(gather())
                elapsed = time.perf_counter() - start
            assert len(outputs) == n
            return elapsed

        return run

    return [measure(f"{n} x `acall`, concurrency {c}", server, repeat, fan_out(c)) for c in (1, 8)]


def table(rows: list[Row], reference: Row, ratio_name: str) -> str:
    lines = [
        f"| configuration | wall time (median of {len(reference.seconds)}) | model calls"
        f" per run | peak calls in flight | fastest run | {ratio_name} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        calls = "/".join(str(c) for c in sorted(set(row.calls)))
        lines.append(
            f"| {row.configuration} | {row.median:.2f} s | {calls} | {row.peak_in_flight}"
            f" | {min(row.seconds):.2f} s | {reference.median / row.median:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.4, help="seconds per model answer")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument("--acalls", type=int, default=16, help="concurrent acall()s")
    args = parser.parse_args()

    # http.server writes headers and body separately; with Nagle on, the client's delayed ACK
    # adds ~40 ms to every answer, which is not the provider latency being simulated.
    fake_provider._Handler.disable_nagle_algorithm = True
    server = fake_provider.start()
    server.latency = args.latency
    try:
        with tempfile.TemporaryDirectory(prefix="promptpert-bench-") as tmp:
            work = Path(tmp)
            pytest_rows = bench_pytest(server, work, args.repeat)
            acall_rows = bench_acall(server, work, args.acalls, args.repeat)
    finally:
        server.shutdown()

    items = len(PROMPTS) * (len(VARIANTS) + 1)
    print(
        f"\n### pytest runs: {len(PROMPTS)} prompts x (original + {len(VARIANTS)} variants)"
        f" = {items} items, provider latency {args.latency} s\n"
    )
    print(table(pytest_rows, pytest_rows[0], "speed-up vs concurrency 1"))
    serial, fanned, fixed, warm, plain = pytest_rows[:5]
    waited = (serial.median - fixed.median, fanned.median - fixed.median)
    print(
        f"\nWaiting on the model (cold minus the latency-0 run): concurrency 1"
        f" {waited[0]:.2f} s (ideal {items * args.latency:.1f} s),"
        f" concurrency 8 {waited[1]:.2f} s (ideal"
        f" {len(PROMPTS) * args.latency:.1f} s: one fan-out of {len(VARIANTS) + 1} calls per"
        f" prompt, prompts in turn): {waited[0] / waited[1]:.1f}x."
        f"\nFixed cost of a cold run over a warm one: {fixed.median - warm.median:.2f} s."
    )
    print(
        f"\nCached overhead: warm run - plain pytest (plugin loaded) ="
        f" {warm.median - plain.median:+.2f} s"
        f" ({(warm.median - plain.median) / items * 1000:.1f} ms per item)."
    )
    print(f"\n### `CachedLLM.acall` fan-out, provider latency {args.latency} s\n")
    print(table(acall_rows, acall_rows[0], "speed-up vs concurrency 1"))


if __name__ == "__main__":
    main()
