"""How the response cache behaves as a suite grows: lookup latency, disk size, memory.

Run from the repository root (no model, no network; a few minutes at most)::

    .venv/bin/python scripts/bench_cache.py
    .venv/bin/python scripts/bench_cache.py --entries 100000 --samples 5000

Fills a ``ResponseCache`` in a temporary directory with synthetic requests and completions,
and at 1k, 10k and 100k entries times lookups (hits and misses, p50/p99 in microseconds)
through ``ResponseCache.get`` and through ``CachedLLM.fetch``. Then, in a fresh process so the
fill does not count, makes ``--entries`` cached lookups through ``CachedLLM.fetch`` and reports
the peak RSS as it goes. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_promptpert.cache import ResponseCache
from pytest_promptpert.client import CachedLLM
from pytest_promptpert.request import Completion, Request

MODEL = "openai/stable"
PARAMS = {"temperature": 0.0, "max_tokens": 128}
ANSWER = (
    "The capital of France is Paris. It has been the capital since the tenth century, sits on"
    " the Seine, and is home to about two million people in the city proper and over twelve"
    " million in the wider metropolitan area. "
)


def request(i: int) -> Request:
    """The *i*-th synthetic request: a question and a few-shot system message, like a suite's."""
    return Request(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Answer in one short paragraph."},
            {"role": "user", "content": f"Question {i}: what is the capital of country {i}?"},
        ],
        params=PARAMS,
    )


def completion(i: int) -> Completion:
    return Completion(
        output=f"Answer {i}. {ANSWER}", model=MODEL, prompt_tokens=24, completion_tokens=60
    )


def fill(cache: ResponseCache, start: int, stop: int) -> float:
    """Write entries *start* to *stop* one ``set`` each, as calls would; returns seconds."""
    began = time.perf_counter()
    for i in range(start, stop):
        cache.set(request(i), completion(i))
    return time.perf_counter() - began


def timings(lookup: Callable[[Request], object], requests: list[Request]) -> list[float]:
    """Microseconds per lookup of each of *requests* (built beforehand, so not timed)."""
    out = []
    clock = time.perf_counter_ns
    for r in requests:
        began = clock()
        lookup(r)
        out.append((clock() - began) / 1000)
    return out


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{p50:.0f} / {p99:.0f}"


def disk_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def rss_now_kib() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() // 1024


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def bench_latency(directory: Path, sizes: list[int], samples: int) -> list[str]:
    rng = random.Random(7)
    cache = ResponseCache(directory, "auto")
    llm = CachedLLM(MODEL, cache_dir=directory)
    rows = []
    filled = 0
    misses_from = 10 * max(sizes)  # indices never written
    for size in sizes:
        seconds = fill(cache, filled, size)
        writes = size - filled
        filled = size
        hits = [request(rng.randrange(size)) for _ in range(samples)]
        misses = [request(misses_from + rng.randrange(10**9)) for _ in range(samples)]
        key = timings(lambda r: r.key(), hits)
        get_hit = timings(cache.get, hits)
        get_miss = timings(cache.get, misses)
        fetch_hit = timings(llm.fetch, hits)
        assert all(cache.get(r) is not None for r in hits[:100])
        assert all(cache.get(r) is None for r in misses[:100])
        rows.append(
            f"| {size:,} | {disk_size(directory) / 2**20:.1f} MiB | {writes / seconds:,.0f}"
            f" | {percentiles(key)} | {percentiles(get_hit)} | {percentiles(get_miss)}"
            f" | {percentiles(fetch_hit)} |"
        )
        print(f"  {size:,} entries measured", file=sys.stderr)
    llm.close()
    cache.close()
    assert "litellm" not in sys.modules, "a cached lookup imported litellm"
    return rows


def rss_phase(directory: Path, lookups: int, checkpoints: list[int]) -> None:
    """In a fresh process: *lookups* cached fetches, RSS printed as JSON at *checkpoints*."""
    before = rss_now_kib()
    llm = CachedLLM(MODEL, cache_dir=directory)
    out = {"before": before, "points": []}
    began = time.perf_counter()
    for n in range(1, lookups + 1):
        llm.fetch(request(n - 1))
        if n in checkpoints:
            out["points"].append(
                {
                    "lookups": n,
                    "peak": peak_rss_kib(),
                    "now": rss_now_kib(),
                    "seconds": time.perf_counter() - began,
                    "hits": llm.stats.hits,
                    "calls": llm.stats.calls,
                }
            )
    out["litellm_imported"] = "litellm" in sys.modules
    llm.close()
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="entries in the end")
    parser.add_argument("--samples", type=int, default=5000, help="timed lookups per size")
    parser.add_argument("--rss-phase", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    entries = args.entries
    checkpoints = [entries // 10, entries // 2, entries]

    if args.rss_phase:
        rss_phase(args.rss_phase, entries, checkpoints)
        return

    sizes = [s for s in (1_000, 10_000, 100_000) if s < entries] + [entries]
    with tempfile.TemporaryDirectory(prefix="promptpert-bench-cache-") as tmp:
        directory = Path(tmp) / "cache"
        latency_rows = bench_latency(directory, sizes, args.samples)
        child = subprocess.run(
            [sys.executable, __file__, "--entries", str(entries), "--rss-phase", str(directory)],
            capture_output=True,
            text=True,
            check=True,
        )
        rss = json.loads(child.stdout)

    print(f"\n### Lookup latency, µs p50 / p99 ({args.samples:,} timed lookups per cell)\n")
    print(
        "| entries | on disk | fill (sets/s) | `Request.key()` | `ResponseCache.get` hit"
        " | `ResponseCache.get` miss | `CachedLLM.fetch` hit |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(latency_rows))

    print(f"\n### Memory: {entries:,} cached lookups through `CachedLLM.fetch`, fresh process\n")
    print(f"RSS before the client was made: {mib(rss['before'])} MiB.\n")
    print("| lookups | peak RSS (MiB) | RSS now (MiB) | hits | model calls | elapsed |")
    print("|---:|---:|---:|---:|---:|---:|")
    for point in rss["points"]:
        print(
            f"| {point['lookups']:,} | {mib(point['peak'])} | {mib(point['now'])}"
            f" | {point['hits']:,} | {point['calls']} | {point['seconds']:.1f} s |"
        )
    print(f"\nlitellm imported during the cached lookups: {rss['litellm_imported']}")


if __name__ == "__main__":
    main()
