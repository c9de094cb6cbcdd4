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
from typing import Any

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
            if sum(1 for _ in folder.glob("[!_]*.json")) > COMPACT_AT:
                compact(directory)
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


SUMMARY = "_summary.json"
#: More tally files than this and the closing process folds older runs' into the summary.
COMPACT_AT = 64


def _tallies(folder: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("[!_]*.json")):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == USAGE_VERSION:
                yield path, data


def _summary(folder: Path) -> Usage:
    usage = Usage()
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        data = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
        usage.hits = {str(k): int(v) for k, v in data["hits"].items()}
        usage.last_used = {str(k): float(v) for k, v in data["last_used"].items()}
        usage.runs = {str(k): float(v) for k, v in data["runs"].items()}
        usage.tokens_saved = int(data["tokens_saved"])
        usage.cost_saved = float(data["cost_saved"])
        usage.hit_count = int(data["hit_count"])
    return usage


def _add(usage: Usage, used_by_run: dict[str, set[str]], tally: dict[str, Any]) -> None:
    run = str(tally.get("run", ""))
    closed = float(tally.get("closed", 0.0))
    hits, writes = tally.get("hits", {}), tally.get("writes", [])
    if not isinstance(hits, dict) or not isinstance(writes, list):
        return
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


def load_usage(directory: Path) -> Usage:
    folder = directory / USAGE_DIR
    usage = _summary(folder)
    used_by_run: dict[str, set[str]] = {}
    for _, tally in _tallies(folder):
        _add(usage, used_by_run, tally)
    last = usage.last_run
    if last is not None:
        usage.last_run_keys = used_by_run.get(last, set())
    return usage


def compact(directory: Path) -> int:
    """Fold every tally but the newest run's into the summary; how many files were folded.

    One process at a time (an advisory lock; skipped where there is none, or when another
    process holds it).
    """
    folder = directory / USAGE_DIR
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return 0
    with open(folder / ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0
        tallies = list(_tallies(folder))
        if not tallies:
            return 0
        newest = max(tallies, key=lambda t: float(t[1].get("closed", 0.0)))[1].get("run")
        folded = [(path, tally) for path, tally in tallies if tally.get("run") != newest]
        usage = _summary(folder)
        for _, tally in folded:
            _add(usage, {}, tally)
        data = {
            "version": USAGE_VERSION,
            "hits": usage.hits,
            "last_used": usage.last_used,
            "runs": usage.runs,
            "tokens_saved": usage.tokens_saved,
            "cost_saved": usage.cost_saved,
            "hit_count": usage.hit_count,
        }
        temporary = folder / f".{SUMMARY}.tmp"
        temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(temporary, folder / SUMMARY)
        for path, _ in folded:
            path.unlink(missing_ok=True)
        return len(folded)
