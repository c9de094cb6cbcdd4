"""Waiting for the client's threads from async code, whichever async library runs it.

asyncio has its own bridge (``asyncio.wrap_future``, ``asyncio.to_thread``); trio has no asyncio
loop, so there the wait goes through anyio's worker threads. anyio is imported only then; it is
always installed, as a dependency of litellm, httpx and the openai SDK. asyncio itself is not
imported here: code running on an asyncio loop has imported it already.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


def running_asyncio() -> Any:
    """The asyncio module when an asyncio loop runs this thread, else None.

    Looked up, not imported: no loop can run without asyncio imported, and importing it costs
    the plugin's import tens of milliseconds.
    """
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return asyncio


async def _anyio_thread(func: Callable[[], T]) -> T:
    from anyio import to_thread

    if "abandon_on_cancel" in inspect.signature(to_thread.run_sync).parameters:  # anyio >= 4.1
        # As asyncio does: a cancelled wait returns at once; the call finishes in the background.
        return await to_thread.run_sync(func, abandon_on_cancel=True)
    return await to_thread.run_sync(func)


async def wait_for(future: Future[T]) -> T:
    """The result of *future*, awaited without blocking the event loop."""
    asyncio = running_asyncio()
    if asyncio is not None:
        return await asyncio.wrap_future(future)  # type: ignore[no-any-return]
    return await _anyio_thread(future.result)


async def run_sync(func: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``func(*args, **kwargs)`` run in a worker thread, awaited without blocking the loop."""
    asyncio = running_asyncio()
    if asyncio is not None:
        return await asyncio.to_thread(func, *args, **kwargs)  # type: ignore[no-any-return]
    return await _anyio_thread(functools.partial(func, *args, **kwargs))
