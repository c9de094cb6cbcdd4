"""A cold run against its physical limit, with and without the manifest of an earlier run.

Run from the repository root, with the project installed (no network, no real model)::

    .venv/bin/python benchmarks/bench_prefetch.py
    .venv/bin/python benchmarks/bench_prefetch.py --prompts 24 --latency 0.4 --repeat 3

Starts the fake OpenAI-compatible provider of the test suite on loopback with a latency of L
seconds per answer, writes a temporary project of PROMPTS tests (one prompt each) x VARIANTS
prompt-changing variants and times ``python -m pytest`` on it, every time with an empty cache:

- cold, no manifest: the first run of the suite (the within-test fan-out only);
- cold, with a manifest: the cache emptied, the manifest of a previous run kept, so the run
  starts every call at session start (cross-test prefetch);
- the same two with no provider latency: the fixed cost of a cold run (pytest, litellm's import,
  the per-call work), which no prefetch can hide.

The physical limit is ceil(U / C) x L for the U unique calls at concurrency C. Prints a Markdown
table (wall time is the median of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
SUBJECTS = [
    "the capital of France",
    "three primary colours",
    "the legs of a spider",
    "good morning in German",
    "the author of Moby Dick",
    "the boiling point of water",
    "the largest planet",
    "the speed of light",
]

SUITE = """
import pytest

PROMPTS = {prompts!r}


@pytest.mark.parametrize("prompt", PROMPTS, ids=[f"p{{i}}" for i in range(len(PROMPTS))])
@pytest.mark.promptpert(variants={variants!r})
def test_answer(llm, prompt):
    assert "forty-two" in llm(prompt)
"""


@dataclass
class Row:
    configuration: str
    with_manifest: bool
    latency: float
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    #: from the provider's first request to its last answer
    spans: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    peak_in_flight: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


class TimedRequests(list[Any]):
    """The fake provider's request log, with the time each answer was logged (after latency)."""

    times: list[float]

    def append(self, item: Any) -> None:
        self.times.append(time.perf_counter())
        super().append(item)

    def clear(self) -> None:
        self.times.clear()
        super().clear()


def prompts(n: int) -> list[str]:
    return [f"Question {i}: what do you know about {SUBJECTS[i % len(SUBJECTS)]}" for i in range(n)]


def child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
        and not k.startswith("PROMPTPERT_")
    }
    env["OPENAI_API_KEY"] = "sk-bench-not-a-secret"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_pytest(root: Path, cache_dir: Path, concurrency: int) -> tuple[float, float]:
    """Wall and CPU seconds of one pytest run."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        f"--promptpert-cache-dir={cache_dir}",
        f"--promptpert-concurrency={concurrency}",
    ]
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=child_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed, _children_cpu() - cpu


def bench(
    server: fake_provider.FakeProvider,
    work: Path,
    *,
    n: int,
    latency: float,
    concurrency: int,
    repeat: int,
    variants: list[str],
) -> tuple[list[Row], Path]:
    root = work / "project"
    root.mkdir()
    (root / "test_suite.py").write_text(SUITE.format(prompts=prompts(n), variants=variants))
    (root / "pyproject.toml").write_text(
        f'[tool.promptpert]\nmodel = "openai/stable"\napi_base = "{server.url}"\n'
    )
    # A first run writes the manifest that the "with a manifest" runs start from.
    seed = work / "seed-cache"
    server.latency = 0.0
    run_pytest(root, seed, concurrency)
    manifest = seed / "manifest.json"
    if not manifest.is_file():
        sys.exit("the first run wrote no manifest.json: is this the prefetch branch?")
    rows = [
        Row(f"cold, {'with a manifest' if m else 'no manifest'}, latency {delay:g} s", m, delay)
        for m in (False, True)
        for delay in (latency, 0.0)
    ]
    log = TimedRequests()
    log.times = []
    server.requests = log
    runs = 0
    for i in range(repeat):  # configurations interleaved: a load change hits them alike
        for row in rows:
            runs += 1
            cache_dir = work / f"cache-{runs}"
            if row.with_manifest:
                cache_dir.mkdir()
                shutil.copy(manifest, cache_dir / "manifest.json")
            server.latency = row.latency
            with server.lock:
                server.max_in_flight = 0
                log.clear()
            wall, cpu = run_pytest(root, cache_dir, concurrency)
            row.seconds.append(wall)
            row.cpu.append(cpu)
            row.calls.append(len(log))
            row.spans.append(log.times[-1] - log.times[0] + row.latency if log.times else 0.0)
            row.peak_in_flight = max(row.peak_in_flight, server.max_in_flight)
            print(
                f"  {row.configuration}: run {i + 1}/{repeat} {wall:.2f} s wall,"
                f" {cpu:.2f} s CPU, provider busy {row.spans[-1]:.2f} s",
                file=sys.stderr,
            )
    return rows, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=24, help="tests, one prompt each")
    parser.add_argument("--latency", type=float, default=0.4, help="seconds per model answer")
    parser.add_argument(
        "--variants", type=int, default=len(VARIANTS), help=f"variants per test (1-{len(VARIANTS)})"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    args = parser.parse_args()

    fake_provider._Handler.disable_nagle_algorithm = True
    server = fake_provider.start()
    try:
        with tempfile.TemporaryDirectory(prefix="promptpert-bench-prefetch-") as tmp:
            rows, _ = bench(
                server,
                Path(tmp),
                n=args.prompts,
                latency=args.latency,
                concurrency=args.concurrency,
                repeat=args.repeat,
                variants=VARIANTS[: args.variants],
            )
    finally:
        server.shutdown()

    unique = max(rows[0].calls)
    limit = math.ceil(unique / args.concurrency) * args.latency
    print(
        f"\n### Cold runs: {args.prompts} prompts x (original + {args.variants} variants),"
        f" {unique} unique calls, latency L = {args.latency} s, concurrency C ="
        f" {args.concurrency}\n"
    )
    print(
        f"Physical limit ceil(U / C) x L = ceil({unique} / {args.concurrency}) x {args.latency}"
        f" = {limit:.1f} s.\n"
    )
    print(
        f"| configuration | wall (median of {args.repeat}) | CPU | calls | peak in flight"
        " | provider busy | wall / limit | provider busy / limit |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        calls = "/".join(str(c) for c in sorted(set(row.calls)))
        span = statistics.median(row.spans)
        ratios = " | |"
        if row.latency:
            ratios = f" {row.median / limit:.2f}x | {span / limit:.2f}x |"
        print(
            f"| {row.configuration} | {row.median:.2f} s | {statistics.median(row.cpu):.2f} s"
            f" | {calls} | {row.peak_in_flight} | {span:.2f} s |{ratios}"
        )
    fixed = statistics.median(rows[1].seconds + rows[3].seconds)
    print(
        f"\nwall / limit includes the fixed cost of a cold run that no prefetch hides: pytest's"
        f" start, litellm's import, the per-call work and the exit ({fixed:.2f} s here: the"
        " latency-0 runs). provider busy: from the provider's first request to its last"
        " answer, the part the prefetch packs. Target (issue 13): <= 1.3x with a manifest,"
        " <= 1.5x without one."
    )


if __name__ == "__main__":
    main()
