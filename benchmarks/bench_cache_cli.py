"""The cache as a product, measured: ``promptpert cache`` on a large cache, and hit latency of
the local tier against the Redis tier.

Run from the repository root (no model, no network; a few minutes)::

    .venv/bin/python benchmarks/bench_cache_cli.py
    .venv/bin/python benchmarks/bench_cache_cli.py --entries 10000   # quicker

1. Writes ``--entries`` synthetic entries (real keys, completions of a realistic size) as an
   export file, and times ``promptpert cache import`` of it into an empty directory.
2. Times ``promptpert cache stats`` and ``promptpert cache export`` on that cache; reports the
   sizes of the export file and of the cache directory. Each command runs as a subprocess
   through ``python -m pytest_promptpert``, so the times include start-up (~0.3 s); CPU time
   is shown beside wall time, which on a busy shared machine says more.
3. Hit latency (p50/p99, microseconds) of ``ResponseCache.get``: from the local directory, and
   from Redis through an empty local directory (a ``redis-server`` on loopback is started when
   the binary is installed; that row is left out otherwise).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_promptpert.cache import ResponseCache
from pytest_promptpert.request import Completion, Request

ANSWER = (
    "The capital of France is Paris. It has been the capital since the tenth century, sits on"
    " the Seine, and is home to about two million people in the city proper. "
)


def request(i: int) -> Request:
    return Request(
        model="openai/gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer in one short paragraph."},
            {"role": "user", "content": f"Question {i}: what is the capital of country {i}?"},
        ],
        params={"temperature": 0.0, "max_tokens": 128},
    )


def completion(i: int) -> Completion:
    return Completion(
        output=ANSWER + str(i),
        model="gpt-4o-mini",
        prompt_tokens=24,
        completion_tokens=41,
        latency=0.8,
        cost=0.0000282,
        created=1_790_000_000.0 + i,
        run="bench",
    )


def write_export(path: Path, entries: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(entries):
            r = request(i)
            data = json.loads(completion(i).to_json(r))
            out.write(json.dumps({"key": r.key(), **data}) + "\n")


def timed(*args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``promptpert`` command in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest_promptpert", *args], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"promptpert {' '.join(args)} failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99) - 1] * 1e6


def hit_latency(cache: ResponseCache, count: int) -> tuple[float, float]:
    samples = []
    for i in range(count):
        r = request(i)
        started = time.perf_counter()
        found = cache.get(r)
        samples.append(time.perf_counter() - started)
        assert found is not None, i
    return percentiles(samples)


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            return process, url
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    process.terminate()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=2_000, help="hits timed per tier")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "source.jsonl"
        write_export(source, args.entries)
        cache_dir = tmp / "cache"
        rows = [
            ("import", timed("cache", "import", str(source), "--cache-dir", str(cache_dir))),
            ("stats", timed("cache", "stats", "--cache-dir", str(cache_dir))),
        ]
        exported = tmp / "export.jsonl"
        rows.append(
            ("export", timed("cache", "export", str(exported), "--cache-dir", str(cache_dir)))
        )
        print(f"### promptpert cache, {args.entries} entries\n")
        print("| command | wall s | CPU s |\n|---|---:|---:|")
        for name, (wall, cpu) in rows:
            print(f"| `promptpert cache {name}` | {wall:.1f} | {cpu:.1f} |")
        print(
            f"\nexport file {exported.stat().st_size / 1e6:.1f} MB;"
            f" cache directory {dir_size(cache_dir) / 1e6:.1f} MB\n"
        )

        count = min(args.samples, args.entries)
        local = ResponseCache(cache_dir, "auto")
        results = [("local directory", *hit_latency(local, count))]
        local.close()
        started = start_redis(tmp)
        if started is not None:
            process, url = started
            try:
                from pytest_promptpert.redis_store import open_shared

                shared = open_shared(url)
                for i in range(count):
                    r = request(i)
                    shared.write(r.key(), completion(i).to_json(r))
                tier = ResponseCache(tmp / "empty", "auto", shared=open_shared(url))
                results.append(
                    ("Redis, through an empty local directory", *hit_latency(tier, count))
                )
                results.append(("local directory, after the Redis read", *hit_latency(tier, count)))
                tier.close()
                shared.close()
            finally:
                process.terminate()
                process.wait()
        print(f"### hit latency, {count} hits (ResponseCache.get)\n")
        print("| tier | p50 µs | p99 µs |\n|---|---:|---:|")
        for name, p50, p99 in results:
            print(f"| {name} | {p50:.0f} | {p99:.0f} |")


if __name__ == "__main__":
    main()
