"""Interception overhead, measured side by side in one process (not a timed test).

    python benchmarks/bench_intercept.py [--calls 300]

Against the loopback fake provider (tests/fake_provider.py, no latency), per call, with the
``openai`` SDK:

- bare: no interception, a real HTTP round trip to loopback;
- intercepted, cached: every call answered from the cache (a warm run: no HTTP at all);
- intercepted, passed through: a request interception does not understand (an unrelated
  JSON POST), to show what interception costs the application's other HTTP traffic.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import fake_provider
import httpx2
import openai

from pytest_promptpert import CachedLLM
from pytest_promptpert.intercept import CallCache, Interception, intercepting


def per_call(function: Callable[[int], object], calls: int) -> tuple[float, float]:
    """(median wall ms, CPU ms) per call over *calls* calls, after 20 warm-up calls."""
    for i in range(20):
        function(i)
    walls = []
    cpu = time.process_time()
    for i in range(calls):
        started = time.perf_counter()
        function(i)
        walls.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu
    return statistics.median(walls) * 1000, cpu / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    server = fake_provider.start()
    sdk = openai.OpenAI(base_url=server.url, api_key="sk-bench")
    prompts = [f"Question number {i % 50}" for i in range(args.calls + 20)]

    def ask(i: int) -> object:
        messages = [{"role": "user", "content": prompts[i]}]
        return sdk.chat.completions.create(model="stable", messages=messages)

    plain = httpx2.Client()

    def other(i: int) -> object:
        return plain.post(f"{server.url}/not-a-model", json={"n": i})

    rows = [("bare openai SDK, loopback HTTP", *per_call(ask, args.calls))]
    with tempfile.TemporaryDirectory() as directory:
        client = CachedLLM("unused", cache_dir=directory)
        with intercepting(Interception(CallCache(client))):
            for i in range(len(prompts)):
                ask(i)  # fill the cache
            rows.append(("intercepted, answered from the cache", *per_call(ask, args.calls)))
            rows.append(("intercepted, passed through (other POST)", *per_call(other, args.calls)))
        rows.insert(1, ("bare other POST, loopback HTTP", *per_call(other, args.calls)))
        client.close()
    server.shutdown()
    print(f"{args.calls} calls each, median wall and mean CPU per call")
    print(f"| {'case':<42} | wall ms | CPU ms |")
    print(f"|{'-' * 44}|---------|--------|")
    for name, wall, cpu in rows:
        print(f"| {name:<42} | {wall:7.3f} | {cpu:6.3f} |")


if __name__ == "__main__":
    main()
