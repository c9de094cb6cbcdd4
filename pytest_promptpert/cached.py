"""``cached()``: every model call a script makes through litellm, openai or anthropic, cached.

The same interception layer and cache as in tests (:mod:`.intercept`), with no pytest::

    from pytest_promptpert import cached

    with cached(cache_dir=".promptpert_cache"):
        openai.OpenAI().chat.completions.create(...)   # a real call the first time only

    @cached(mode="replay")                             # as a decorator, sync or async
    def pipeline(): ...
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .cache import CACHE_MODES
from .client import CachedLLM
from .intercept import CallCache, Interception, intercepting

F = TypeVar("F", bound=Callable[..., Any])


class cached:
    """Answer every model call inside from the cache (and write new answers to it).

    *mode* is a cache mode (``auto``, ``replay``, ``refresh``, ``off``); *cache_url* a shared
    cache behind the directory (``redis://...``). Calls go where the code sent them, with the
    code's own parameters; the key never holds a credential. ``with cached() as client:`` gives
    the :class:`CachedLLM` whose ``stats`` count calls, hits and misses.
    """

    def __init__(
        self,
        cache_dir: str | Path = ".promptpert_cache",
        mode: str = "auto",
        cache_url: str | None = None,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(
                f"cached(mode={mode!r}): not a cache mode (choose from {', '.join(CACHE_MODES)})"
            )
        self.cache_dir = Path(cache_dir)
        self.mode = mode
        self.cache_url = cache_url
        self._stack: list[contextlib.ExitStack] = []

    @contextlib.contextmanager
    def _session(self) -> Iterator[CachedLLM]:
        # The client's model is never used: intercepted calls go where the code sent them.
        with (
            CachedLLM(
                "intercepted", cache_dir=self.cache_dir, cache=self.mode, cache_url=self.cache_url
            ) as client,
            intercepting(Interception(CallCache(client))),
        ):
            yield client

    def __enter__(self) -> CachedLLM:
        stack = contextlib.ExitStack()
        client = stack.enter_context(self._session())
        self._stack.append(stack)
        return client

    def __exit__(self, *exc_info: object) -> None:
        self._stack.pop().close()

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self._session():
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._session():
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]
