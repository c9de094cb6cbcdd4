"""Which cached answers each run used: one small tally per process, written at close.

A cached run must stay fast, so a hit costs a dict insertion in memory; nothing is written to
the cache's database. When the cache closes, the process writes one JSON file under
``<cache_dir>/promptpert-usage/``: its run id, when it closed, the keys it read (with the
tokens and estimated cost each hit saved) and the keys it wrote. ``promptpert cache stats``
adds them up; ``promptpert cache prune --unused-since-run`` keeps what the newest run used.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

USAGE_DIR = "promptpert-usage"
USAGE_VERSION = 1


class UsageTally:
    """This process's hits and writes, each key once (as the run's statistics count them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits: dict[str, tuple[int, float]] = {}  # key -> (tokens, USD) the hit saved
        self.writes: set[str] = set()

    def hit(self, key: str, tokens: int, cost: float) -> None:
        with self._lock:
            self.hits.setdefault(key, (tokens, cost))

    def wrote(self, key: str) -> None:
        with self._lock:
            self.writes.add(key)

    def flush(self, directory: Path, run_id: str) -> Path | None:
        """Write the tally next to the cache (atomically) and start a new one."""
        with self._lock:
            hits, writes = self.hits, self.writes
            self.hits, self.writes = {}, set()
        if not hits and not writes:
            return None
        data = {
            "version": USAGE_VERSION,
            "run": run_id,
            "closed": time.time(),
            "hits": {key: list(value) for key, value in sorted(hits.items())},
            "writes": sorted(writes),
        }
        folder = directory / USAGE_DIR
        name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temporary = folder / f".{name}.tmp"
            temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
            os.replace(temporary, folder / name)
        except OSError:
            return None  # a read-only cache still serves hits; statistics are a bonus
        return folder / name


@dataclass
class Usage:
    """Every tally of a cache directory, added up."""

    #: key -> number of runs that had it as a hit
    hits: dict[str, int] = field(default_factory=dict)
    #: key -> when it was last read or written (a tally's close time)
    last_used: dict[str, float] = field(default_factory=dict)
    tokens_saved: int = 0
    cost_saved: float = 0.0
    hit_count: int = 0
    runs: dict[str, float] = field(default_factory=dict)  # run id -> last close time
    #: the keys the newest run read or wrote
    last_run_keys: set[str] = field(default_factory=set)

    @property
    def last_run(self) -> str | None:
        return max(self.runs, key=lambda run: self.runs[run]) if self.runs else None


def _tallies(directory: Path) -> Iterator[dict[str, object]]:
    folder = directory / USAGE_DIR
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == USAGE_VERSION:
                yield data


def load_usage(directory: Path) -> Usage:
    usage = Usage()
    used_by_run: dict[str, set[str]] = {}
    for tally in _tallies(directory):
        run = str(tally.get("run", ""))
        closed = float(tally.get("closed", 0.0))  # type: ignore[arg-type]
        hits = tally.get("hits", {})
        writes = tally.get("writes", [])
        if not isinstance(hits, dict) or not isinstance(writes, list):
            continue
        usage.runs[run] = max(closed, usage.runs.get(run, 0.0))
        keys = used_by_run.setdefault(run, set())
        for key, saved in hits.items():
            usage.hits[key] = usage.hits.get(key, 0) + 1
            usage.hit_count += 1
            if isinstance(saved, list) and len(saved) == 2:
                usage.tokens_saved += int(saved[0])
                usage.cost_saved += float(saved[1])
        keys.update(hits)
        keys.update(str(key) for key in writes)
        for key in (*hits, *writes):
            if closed > usage.last_used.get(key, 0.0):
                usage.last_used[key] = closed
    last = usage.last_run
    if last is not None:
        usage.last_run_keys = used_by_run[last]
    return usage
