"""Where a cold ``CachedLLM`` call spends its time: cProfile over every thread it uses.

Run from the repository root, with the project installed (no network, no real model)::

    .venv/bin/python benchmarks/profile_cold.py [--calls 300] [--concurrency 1] [--top 30]

Starts the test suite's fake OpenAI-compatible provider on loopback (no latency), imports and
warms litellm, then makes ``--calls`` cold calls (every one a miss written to a fresh cache)
with every thread profiled (the caller, the pool's workers, the per-call deadline threads, the
lock leases), and prints the merged profile sorted by cumulative and by own time. Bare
``litellm.completion`` is profiled the same way first, so the two can be told apart.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fake_provider

OURS = r"pytest_promptpert|diskcache|sqlite|threading.py:(9[0-9][0-9]|start)"

_profiles: list[cProfile.Profile] = []
_profiles_lock = threading.Lock()
_original_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile()
    with _profiles_lock:
        _profiles.append(profile)
    profile.enable()
    try:
        _original_run(self)
    finally:
        profile.disable()


def profile_calls(
    call: Callable[[int], object], calls: int, close: Callable[[], object] = lambda: None
) -> tuple[pstats.Stats, float]:
    """The merged profile of *calls* calls, over every thread, and the wall ms per call.

    Threads started before this (a pool's workers) are not seen: build the client inside,
    and *close* it (its threads end) before the profiles are merged.
    """
    _profiles.clear()
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    main = cProfile.Profile()
    try:
        call(-1)  # warm up: the pool's threads start (profiled), connections open
        started = time.perf_counter()
        main.enable()
        for i in range(calls):
            call(i)
        main.disable()
        wall = (time.perf_counter() - started) / calls * 1000
        close()
    finally:
        threading.Thread.run = _original_run  # type: ignore[method-assign]
    stats = pstats.Stats(main)
    for profile in list(_profiles):
        with contextlib.suppress(TypeError):  # a thread still running its profile: skipped
            stats.add(profile)
    return stats, wall


def show(title: str, stats: pstats.Stats, wall: float, calls: int, top: int) -> None:
    print(f"\n## {title}: {wall:.2f} ms wall per call ({calls} calls)\n")
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(key).print_stats(top)
        print(f"### by {key}\n```\n{out.getvalue().strip()}\n```")
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    # this plugin's own work, the cache's and the threads it starts
    stats.sort_stats("cumulative").print_stats(OURS, top)
    print(f"### ours (cumulative)\n```\n{out.getvalue().strip()}\n```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--skip-litellm", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ["OPENAI_API_KEY"] = "sk-profile-not-a-real-key"
    server = fake_provider.start()
    try:
        import litellm

        from pytest_promptpert import CachedLLM
        from pytest_promptpert.backend import import_litellm

        import_litellm()

        def bare(i: int) -> object:
            return litellm.completion(
                model="openai/stable",
                api_base=server.url,
                messages=[{"role": "user", "content": f"bare {i}"}],
                max_retries=0,
            )

        if not args.skip_litellm:
            stats, wall = profile_calls(bare, args.calls)
            show("bare litellm.completion", stats, wall, args.calls, args.top)
        with tempfile.TemporaryDirectory() as tmp:
            llm = CachedLLM(
                "openai/stable",
                api_base=server.url,
                cache_dir=Path(tmp) / "cache",
                concurrency=args.concurrency,
            )
            stats, wall = profile_calls(lambda i: llm(f"cold {i}"), args.calls, llm.close)
            show("CachedLLM, cold (auto, every call a miss)", stats, wall, args.calls, args.top)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
