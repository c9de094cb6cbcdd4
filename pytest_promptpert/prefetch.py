"""Cross-test prefetch: start the calls a run is known to need before the tests ask for them.

The requests come from the manifest (``manifest.py``), rebuilt with this run's settings. Only
misses are started (a plain read of the cache first: no statistics counted for answers no test
may ask for), at most ``window`` at a time, so a test's own call never waits behind a long queue,
from a background thread, in the tests' order. Processes that share the directory (xdist
workers) each take a share; the cache's per-key lock makes any overlap one call.

No pytest here: the plugin starts a :class:`Prefetcher` and prints :func:`summary_lines`.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .report import format_cost

if TYPE_CHECKING:
    from .client import CachedLLM
    from .request import Completion, Request


class Prefetcher:
    """Fetches *requests* through *client* in the background, *window* calls at a time."""

    def __init__(self, client: CachedLLM, requests: Sequence[Request], window: int) -> None:
        self.client = client
        self.requests = list(requests)
        self._slots = threading.Semaphore(max(1, window))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._started: list[tuple[Request, Future[Completion]]] = []
        self._thread: threading.Thread | None = None
        #: why prefetching stopped before the end (the first failed call), if it did
        self.stopped_by: BaseException | None = None

    def _cached(self, request: Request) -> bool:
        """Whether the cache answers *request* for this run (``refresh``: refreshed already)."""
        cache = self.client.cache
        found = cache.read(request)
        return found is not None and (cache.mode != "refresh" or found.run == self.client.run_id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="promptpert-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for request in self.requests:
            while not self._slots.acquire(timeout=0.05):
                if self._stop.is_set():
                    return
            if self._stop.is_set():
                self._slots.release()
                return
            try:
                if self._cached(request):
                    self._slots.release()
                    continue
                started = self.client.prefetch([request])
            except Exception as exc:  # an unreadable cache: the tests will meet it themselves
                self.stopped_by = exc
                self._slots.release()
                return
            if not started:  # a mode that makes no calls
                self._slots.release()
                return
            with self._lock:
                self._started.append((request, started[0]))
            started[0].add_done_callback(self._landed)

    def _landed(self, future: Future[Completion]) -> None:
        self._slots.release()
        error = future.exception()
        if error is not None and self.stopped_by is None:
            # The first failure stops the prefetch: the tests then ask, and say why, themselves,
            # instead of every queued call meeting the same rate limit or outage first.
            self.stopped_by = error
            self._stop.set()

    def plan(self) -> int:
        """Plan mode: list each uncached request with the client (no call); how many."""
        listed = 0
        for request in self.requests:
            if not self._cached(request):
                self.client.prefetch([request])  # the client lists it and makes no call
                listed += 1
        return listed

    def join(self, timeout: float | None = None) -> None:
        """Wait until every request has been started (or the prefetch stopped)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def finish(self) -> dict[str, tuple[int, float]]:
        """Start nothing more, let what started land; the key, tokens and cost of each call made.

        Answers found in the cache (another process fetched them) are not calls of this one.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            started = list(self._started)
        concurrent.futures.wait([future for _, future in started])
        called: dict[str, tuple[int, float]] = {}
        for request, future in started:
            if future.exception() is None:
                completion = future.result()
                if not completion.cached:
                    called[request.key()] = (completion.tokens, completion.cost)
        return called


@dataclass
class Outcome:
    """What the prefetch of a run (all its processes) did, and what no test asked for."""

    #: processes that prefetched
    ran: int = 0
    #: key -> (tokens, USD) of every call a prefetch made
    called: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: keys of every request an item asked for
    asked: set[str] = field(default_factory=set)
    #: plan mode: uncached calls listed from the manifest
    planned: int = 0

    def add(self, part: Mapping[str, Any]) -> None:
        """One process's share, as :meth:`part` gave it (JSON-safe, for xdist)."""
        self.ran += int(part.get("ran", 0))
        self.planned += int(part.get("planned", 0))
        for key, (tokens, cost) in part.get("called", {}).items():
            self.called[str(key)] = (int(tokens), float(cost))
        self.asked.update(str(key) for key in part.get("asked", ()))

    @staticmethod
    def part(
        ran: bool, called: Mapping[str, tuple[int, float]], asked: Iterable[str], planned: int
    ) -> dict[str, Any]:
        return {
            "ran": int(ran),
            "called": {key: [tokens, cost] for key, (tokens, cost) in called.items()},
            "asked": sorted(asked),
            "planned": planned,
        }

    @property
    def unused(self) -> dict[str, tuple[int, float]]:
        return {key: done for key, done in self.called.items() if key not in self.asked}

    def as_json(self) -> dict[str, Any]:
        unused = self.unused
        return {
            "calls": len(self.called),
            "unused": len(unused),
            "unused_tokens": sum(tokens for tokens, _ in unused.values()),
            "unused_cost": round(sum(cost for _, cost in unused.values()), 6),
        }


def summary_lines(outcome: Outcome, manifest: str) -> list[str]:
    """The terminal summary's lines about the prefetch (none when nothing was prefetched)."""
    lines = []
    if outcome.planned:
        lines.append(
            f"promptpert plan: {outcome.planned} of these calls are from the last run's manifest"
            f" ({manifest}), which lists every call of the selected tests"
        )
    if outcome.called:
        lines.append(
            f"promptpert prefetch: {len(outcome.called)} calls started before their tests, from"
            f" the last run's manifest ({manifest})"
        )
    unused = outcome.unused
    if unused:
        tokens = sum(t for t, _ in unused.values())
        cost = sum(c for _, c in unused.values())
        lines.append(
            f"promptpert prefetch: {len(unused)} prefetched calls no test asked for (prompts"
            f" changed since the manifest, or tests not reached), ~{tokens} tokens, est."
            f" {format_cost(cost)}; their answers are cached"
        )
    return lines
