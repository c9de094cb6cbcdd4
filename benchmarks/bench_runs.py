"""Whole pytest runs, side by side: cached vs plain pytest, vs pytest-recording, cold vs its floor.

Run from the repository root, with the project and its ``bench`` extra installed (no network,
no real model)::

    .venv/bin/python benchmarks/bench_runs.py [--prompts 24] [--variants 5] [--repeat 3]

Writes temporary projects of PROMPTS prompts x (original + VARIANTS variants) items against the
test suite's fake OpenAI-compatible provider on loopback and runs ``python -m pytest`` on them:

- **cached vs plain**: the marked suite with every answer cached, against the same number of
  unmarked items that call no model (plugin installed, and plugin disabled), wall time and peak
  RSS of the pytest process (``os.wait4``), the runs taking turns, median of ``--repeat``;
- **cached vs pytest-recording**: the same model calls made with bare ``litellm.completion``
  under ``@pytest.mark.vcr`` (recorded once, then replayed with ``--record-mode=none``);
- **cold vs the physical limit**: the marked suite with an empty cache at provider latency
  ``--latency`` L, against ceil(U / C) x L for its U unique calls at concurrency C (the
  default, 8), and the same cold run at latency 0 (what a cold run costs besides waiting).

Prints Markdown tables; records the headline ratios for ``run.py``'s summary.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fake_provider
import summary

VARIANTS = ["add_period", "uppercase", "lowercase", "trailing_space", "double_space", "exclamation"]
CONCURRENCY = 8  # the plugin's default


def prompts(n: int) -> list[str]:
    return [f"Question {i}: what is {i} plus {i + 1}" for i in range(n)]


MARKED = """
import pytest

PROMPTS = {prompts!r}


@pytest.mark.parametrize("prompt", PROMPTS, ids=[f"p{{i}}" for i in range(len(PROMPTS))])
@pytest.mark.promptpert(variants={variants!r})
def test_answer(llm, prompt):
    assert "forty-two" in llm(prompt)
"""

PLAIN = """
import pytest

PROMPTS = {prompts!r}
VARIANTS = {variants!r}


@pytest.mark.parametrize("variant", ["original", *VARIANTS])
@pytest.mark.parametrize("prompt", PROMPTS, ids=[f"p{{i}}" for i in range(len(PROMPTS))])
def test_answer(prompt, variant):
    assert prompt
"""

RECORDED = """
import litellm
import pytest

TEXTS = {texts!r}


@pytest.mark.vcr
@pytest.mark.parametrize("text", TEXTS, ids=[f"t{{i}}" for i in range(len(TEXTS))])
def test_answer(text):
    answer = litellm.completion(
        model="openai/stable",
        api_base={api_base!r},
        messages=[{{"role": "user", "content": text}}],
        max_retries=0,
    )
    assert "forty-two" in answer.choices[0].message.content
"""


@dataclass
class Runs:
    name: str
    seconds: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rss(self) -> float:
        return statistics.median(self.rss_mib)


def child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    }
    env["OPENAI_API_KEY"] = "sk-bench-not-a-secret"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def run_pytest(root: Path, *args: str) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of ``python -m pytest`` in *root*; exits on a failure."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "no:randomly", *args]
    out = root / "pytest-output.txt"
    with out.open("w") as sink:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=root, env=child_env(), stdout=sink, stderr=sink)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({proc.returncode}):\n{out.read_text()}")
    return elapsed, usage.ru_maxrss / 1024  # KiB on Linux


def measure(runs: Runs, server: fake_provider.FakeProvider, root: Path, *args: str) -> None:
    before = server.calls
    seconds, rss = run_pytest(root, *args)
    runs.seconds.append(seconds)
    runs.rss_mib.append(rss)
    runs.calls.append(server.calls - before)
    print(f"  {runs.name}: {seconds:.2f} s, {rss:.0f} MiB", file=sys.stderr, flush=True)


def variant_texts(texts: list[str], names: list[str]) -> list[str]:
    from pytest_promptpert.variants import VariantCatalog

    catalog = VariantCatalog()
    return [v for t in texts for v in (t, *(catalog.get(name)(t) for name in names))]


def write(root: Path, source: str, api_base: str) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        f'[tool.promptpert]\nmodel = "openai/stable"\napi_base = "{api_base}"\n'
    )
    (root / "test_suite.py").write_text(source)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--variants", type=int, default=5, help=f"at most {len(VARIANTS)}")
    parser.add_argument("--latency", type=float, default=0.4, help="seconds per answer, cold")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each warm suite")
    parser.add_argument("--cold-repeat", type=int, default=1, help="runs of each cold suite")
    args = parser.parse_args()
    texts, names = prompts(args.prompts), VARIANTS[: args.variants]
    items = len(texts) * (1 + len(names))

    fake_provider._Handler.disable_nagle_algorithm = True  # no delayed-ACK stalls (~40 ms)
    server = fake_provider.start()
    try:
        with tempfile.TemporaryDirectory(prefix="promptpert-bench-") as tmp:
            work = Path(tmp)
            marked = write(
                work / "marked", MARKED.format(prompts=texts, variants=names), server.url
            )
            plain = write(work / "plain", PLAIN.format(prompts=texts, variants=names), server.url)
            recorded = write(
                work / "recorded",
                RECORDED.format(texts=variant_texts(texts, names), api_base=server.url),
                server.url,
            )
            print("recording and filling the cache (latency 0)", file=sys.stderr, flush=True)
            run_pytest(marked)
            run_pytest(recorded, "-p", "no:promptpert", "--record-mode=once")
            warm = [
                (Runs("fully cached, marked suite"), marked, ()),
                (Runs("plain pytest, same items unmarked"), plain, ()),
                (Runs("plain pytest, plugin disabled"), plain, ("-p", "no:promptpert")),
                (
                    Runs("pytest-recording + litellm, replaying"),
                    recorded,
                    ("-p", "no:promptpert", "--record-mode=none"),
                ),
            ]
            for _ in range(args.repeat):
                for runs, root, extra in warm:
                    measure(runs, server, root, *extra)
            cold = [Runs(f"cold, latency {args.latency:g} s"), Runs("cold, latency 0")]
            for i in range(args.cold_repeat):
                for runs, latency in zip(cold, (args.latency, 0.0), strict=True):
                    server.latency = latency
                    measure(
                        runs, server, marked, f"--promptpert-cache-dir={work}/cold-{i}-{latency}"
                    )
            server.latency = 0.0
    finally:
        server.shutdown()

    cached, plain_run, disabled, vcr = (runs for runs, _, _ in warm)
    print(
        f"### Warm runs: {len(texts)} prompts x (original + {len(names)} variants) = {items} items"
        f" (median of {args.repeat}, the runs taking turns)\n"
    )
    print("| run | wall | peak RSS | model calls | cached run's wall / this |")
    print("|---|---:|---:|---:|---:|")
    for runs in (cached, plain_run, disabled, vcr):
        print(
            f"| {runs.name} | {runs.wall:.2f} s | {runs.rss:.0f} MiB | {max(runs.calls)}"
            f" | {cached.wall / runs.wall:.2f}x |"
        )
    wall_ratio, rss_ratio = cached.wall / plain_run.wall, cached.rss / plain_run.rss
    print(
        f"\nCached vs plain pytest (plugin installed): {wall_ratio:.2f}x wall,"
        f" {rss_ratio:.2f}x peak RSS. pytest-recording + litellm replaying the same"
        f" {items} calls takes {vcr.wall / cached.wall:.1f}x the cached run's wall time and"
        f" {vcr.rss / cached.rss:.1f}x its peak RSS."
    )
    summary.record(
        f"cached run vs plain pytest, {items} items: wall",
        f"{wall_ratio:.2f}x ({cached.wall:.2f} vs {plain_run.wall:.2f} s)",
        "<= 1.2x",
        wall_ratio <= 1.2,
    )
    summary.record(
        f"cached run vs plain pytest, {items} items: peak RSS",
        f"{rss_ratio:.2f}x ({cached.rss:.0f} vs {plain_run.rss:.0f} MiB)",
        "<= 1.2x",
        rss_ratio <= 1.2,
    )
    summary.record(
        f"cached run vs pytest-recording + litellm replaying the same {items} calls",
        f"{vcr.wall / cached.wall:.1f}x faster ({vcr.wall:.2f} vs {cached.wall:.2f} s)",
        ">= 10x faster",
        vcr.wall / cached.wall >= 10,
    )

    slow, fast = cold
    unique = max(slow.calls)
    floor = math.ceil(unique / CONCURRENCY) * args.latency
    waiting = slow.wall - fast.wall
    print(
        f"\n### Cold runs: {items} items, {unique} unique calls, concurrency {CONCURRENCY}"
        f" (median of {args.cold_repeat})\n"
    )
    print("| run | wall | model calls | vs the floor |")
    print("|---|---:|---:|---:|")
    print(f"| {slow.name} | {slow.wall:.2f} s | {unique} | {slow.wall / floor:.2f}x |")
    print(f"| {fast.name}: the fixed cost | {fast.wall:.2f} s | {max(fast.calls)} | |")
    print(
        f"| physical floor: ceil({unique} / {CONCURRENCY}) x {args.latency:g} s | {floor:.2f} s"
        " | | 1.00x |"
    )
    print(
        f"\nWaiting on the model (cold at {args.latency:g} s minus cold at 0): {waiting:.2f} s,"
        f" {waiting / floor:.2f}x the floor. Without a manifest each test's calls go out"
        " together and tests follow each other: one round of latency per test at best."
    )
    summary.record(
        f"cold run at L = {args.latency:g} s, {unique} calls vs ceil(U/C) x L = {floor:.1f} s",
        f"{slow.wall / floor:.2f}x whole run; {waiting / floor:.2f}x waiting"
        f" ({slow.wall:.1f} s; {fast.wall:.1f} s of it at latency 0)",
        "<= 1.5x (no manifest)",
        slow.wall / floor <= 1.5,
    )


if __name__ == "__main__":
    main()
