"""Waiting for the client's threads from async code, whichever async library runs it.

asyncio has its own bridge (``asyncio.wrap_future``, ``asyncio.to_thread``); trio has no asyncio
loop, so there the wait goes through anyio's worker threads. anyio is imported only then; it is
always installed, as a dependency of litellm, httpx and the openai SDK.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


def _in_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _anyio_thread(func: Callable[[], T]) -> T:
    from anyio import to_thread

    if "abandon_on_cancel" in inspect.signature(to_thread.run_sync).parameters:  # anyio >= 4.1
        # As asyncio does: a cancelled wait returns at once; the call finishes in the background.
        return await to_thread.run_sync(func, abandon_on_cancel=True)
    return await to_thread.run_sync(func)


async def wait_for(future: Future[T]) -> T:
    """The result of *future*, awaited without blocking the event loop."""
    if _in_asyncio():
        return await asyncio.wrap_future(future)
    return await _anyio_thread(future.result)


async def run_sync(func: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``func(*args, **kwargs)`` run in a worker thread, awaited without blocking the loop."""
    if _in_asyncio():
        return await asyncio.to_thread(func, *args, **kwargs)
    return await _anyio_thread(functools.partial(func, *args, **kwargs))
