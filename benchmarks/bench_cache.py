"""How the response cache behaves as a suite grows: lookup latency, disk size, memory.

Run from the repository root (no model, no network; a few minutes at most)::

    .venv/bin/python benchmarks/bench_cache.py
    .venv/bin/python benchmarks/bench_cache.py --entries 100000 --samples 5000

Fills a ``ResponseCache`` in a temporary directory with synthetic requests and completions
(one ``set`` each, as calls would), and at 1k, 10k and 100k entries times lookups (hits and
misses, p50/p99 in microseconds) through ``ResponseCache.get`` and ``CachedLLM.fetch``. Then,
in another fresh process, makes ``--entries`` cached lookups through ``CachedLLM.fetch`` and
reports peak RSS (getrusage), RSS split into anonymous and file-backed memory, and Python's
allocated blocks as it goes. Both phases run in children of a small parent: on Linux a
child's ru_maxrss starts at its parent's RSS. Prints Markdown tables.
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
from typing import Any

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


def memory_kib() -> dict[str, int]:
    """This process's RSS now, its split, and its peak (``VmHWM``), from /proc, in KiB."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields


def peak_rss_kib() -> int:
    # Linux keeps the larger of this image's peak and the parent's RSS when it forked, so the
    # parent that starts this process must stay small (see main).
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


def rss_phase(directory: Path, lookups: int, checkpoints: list[int]) -> dict[str, Any]:
    """*lookups* cached fetches, with memory figures at *checkpoints*."""
    out: dict[str, Any] = {"before": {**memory_kib(), "peak": peak_rss_kib()}, "points": []}
    llm = CachedLLM(MODEL, cache_dir=directory)
    began = time.perf_counter()
    for n in range(1, lookups + 1):
        llm.fetch(request(n - 1))
        if n in checkpoints:
            out["points"].append(
                {
                    "lookups": n,
                    "peak": peak_rss_kib(),
                    **memory_kib(),
                    "blocks": sys.getallocatedblocks(),
                    "seconds": time.perf_counter() - began,
                    "hits": llm.stats.hits,
                    "calls": llm.stats.calls,
                }
            )
    out["litellm_imported"] = "litellm" in sys.modules
    llm.close()
    return out


def child(phase: str, directory: Path, args: argparse.Namespace) -> Any:
    """Run *phase* in a fresh interpreter started by this small one; its JSON result."""
    command = [sys.executable, __file__, "--phase", phase, "--directory", str(directory)]
    command += ["--entries", str(args.entries), "--samples", str(args.samples)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="entries in the end")
    parser.add_argument("--samples", type=int, default=5000, help="timed lookups per size")
    parser.add_argument("--phase", choices=("latency", "rss"), help=argparse.SUPPRESS)
    parser.add_argument("--directory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    entries = args.entries
    sizes = [s for s in (1_000, 10_000, 100_000) if s < entries] + [entries]
    checkpoints = [entries // 10, entries // 2, entries]

    if args.phase == "latency":
        print(json.dumps(bench_latency(args.directory, sizes, args.samples)))
        return
    if args.phase == "rss":
        print(json.dumps(rss_phase(args.directory, entries, checkpoints)))
        return

    # Both phases run in children of this process, which stays small: a child's ru_maxrss
    # starts at its parent's RSS, and the fill leaves sqlite's page cache and mmap resident.
    with tempfile.TemporaryDirectory(prefix="promptpert-bench-cache-") as tmp:
        directory = Path(tmp) / "cache"
        latency_rows = child("latency", directory, args)
        rss = child("rss", directory, args)

    print(f"\n### Lookup latency, µs p50 / p99 ({args.samples:,} timed lookups per cell)\n")
    print(
        "| entries | on disk | fill (sets/s) | `Request.key()` | `ResponseCache.get` hit"
        " | `ResponseCache.get` miss | `CachedLLM.fetch` hit |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(latency_rows))

    before = rss["before"]
    print(f"\n### Memory: {entries:,} cached lookups through `CachedLLM.fetch`, fresh process\n")
    print(
        f"Before the client was made: RSS {mib(before['VmRSS'])} MiB,"
        f" peak (getrusage) {mib(before['peak'])} MiB.\n"
    )
    print(
        "| lookups | peak RSS, getrusage (MiB) | RSS now (MiB) | of which anonymous"
        " | of which file-backed (sqlite mmap) | Python heap blocks | hits | model calls"
        " | elapsed |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for point in rss["points"]:
        print(
            f"| {point['lookups']:,} | {mib(point['peak'])} | {mib(point['VmRSS'])}"
            f" | {mib(point['RssAnon'])} | {mib(point['RssFile'])} | {point['blocks']:,}"
            f" | {point['hits']:,} | {point['calls']} | {point['seconds']:.1f} s |"
        )
    print(f"\nlitellm imported during the cached lookups: {rss['litellm_imported']}")


if __name__ == "__main__":
    main()
