"""Many prompts at once: ``CachedLLM.map`` / ``amap`` wait on futures and count progress."""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, as_completed
from typing import TypeVar

T = TypeVar("T")

#: ``(done, total)`` after each prompt is answered (or failed).
Progress = Callable[[int, int], None]


def stderr_count(label: str = "promptpert") -> Progress:
    """A live ``label: done/total`` count on stderr, finished with a newline."""

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\r{label}: {done}/{total}" + ("\n" if done == total else ""))
        sys.stderr.flush()

    return show


def resolve_progress(progress: bool | Progress | None) -> Progress | None:
    """``None``: a count only when stderr is a terminal; ``True``/``False``: always/never."""
    if callable(progress):
        return progress
    if progress is None:
        progress = sys.stderr.isatty()
    return stderr_count() if progress else None


def _results(futures: Sequence[Future[T]], return_exceptions: bool) -> list[T | BaseException]:
    out: list[T | BaseException] = []
    for future in futures:
        error = future.exception()
        if error is not None and not return_exceptions:
            raise error
        out.append(error if error is not None else future.result())
    return out


def gather(
    futures: Sequence[Future[T]],
    *,
    return_exceptions: bool = False,
    progress: Progress | None = None,
) -> list[T | BaseException]:
    """Every future's result in order, once all are done; the first error is raised (after
    all are done) unless *return_exceptions*."""
    repeats = Counter(futures)  # a prompt asked twice shares one future
    done = 0
    for future in as_completed(repeats):
        done += repeats[future]
        if progress is not None:
            progress(done, len(futures))
    return _results(futures, return_exceptions)


async def agather(
    futures: Sequence[Future[T]],
    *,
    return_exceptions: bool = False,
    progress: Progress | None = None,
) -> list[T | BaseException]:
    """:func:`gather` for a coroutine: the event loop runs while the calls are made."""
    import asyncio  # here, not at the top: the plugin's import stays without asyncio

    waiting = [asyncio.wrap_future(f) for f in futures]
    for done, next_done in enumerate(asyncio.as_completed(waiting), 1):
        with contextlib.suppress(Exception):  # errors are collected in order below
            await next_done
        if progress is not None:
            progress(done, len(futures))
    return _results(futures, return_exceptions)
