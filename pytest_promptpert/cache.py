"""The response cache: diskcache on disk, JSON values, opened only when first used."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .request import Completion, Request
from .warning_types import CacheWarning, warn

if TYPE_CHECKING:
    import diskcache

CACHE_MODES = ("auto", "replay", "refresh", "off")


def _dead_here(holder: str) -> bool:
    """True when *holder* (host:pid:thread) is a process of this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class CacheDirError(OSError):
    """The cache directory cannot be created or opened."""


class ResponseCache:
    """Completions by request key. Values are JSON text, so a cache is safe to share."""

    def __init__(self, directory: Path, mode: str = "auto") -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode {mode!r} is not one of {', '.join(CACHE_MODES)}")
        self.directory = Path(directory)
        self.mode = mode
        self._cache: diskcache.Cache | None = None

    @property
    def reads(self) -> bool:
        return self.mode in ("auto", "replay")

    @property
    def writes(self) -> bool:
        return self.mode in ("auto", "refresh")

    def _open(self) -> diskcache.Cache:
        if self._cache is None:
            import diskcache

            try:
                self._cache = diskcache.Cache(str(self.directory), eviction_policy="none")
                self._cache.get("__probe__")
            except (sqlite3.DatabaseError, diskcache.Timeout) as exc:
                self._cache = self._move_aside(exc)
            except OSError as exc:
                raise CacheDirError(
                    f"cannot use cache directory {self.directory}: {exc.strerror or exc}"
                ) from None
        return self._cache

    def _move_aside(self, exc: BaseException) -> diskcache.Cache:
        import diskcache

        aside = self.directory.with_name(f"{self.directory.name}.damaged-{int(time.time())}")
        shutil.move(str(self.directory), str(aside))
        warn(
            CacheWarning(
                f"cache directory {self.directory} was unreadable ({exc}); moved it to {aside}"
                " and started a fresh cache"
            ),
            stacklevel=3,
        )
        return diskcache.Cache(str(self.directory), eviction_policy="none")

    def get(self, request: Request) -> Completion | None:
        """The cached completion, if this mode reads the cache."""
        return self.read(request) if self.reads else None

    def read(self, request: Request) -> Completion | None:
        """The cached completion whatever the mode (``refresh`` rereads what it wrote)."""
        if self.mode == "off":
            return None
        text = self._open().get(request.key())
        if not isinstance(text, str):
            return None
        try:
            return Completion.from_json(text)
        except (ValueError, KeyError, TypeError):
            return None  # an entry we cannot read is a miss, and will be overwritten

    def set(self, request: Request, completion: Completion) -> None:
        if self.writes:
            self._open().set(request.key(), completion.to_json(request))

    @contextlib.contextmanager
    def lock(self, request: Request, *, expire: float = 600.0) -> Iterator[None]:
        """Hold a lock on *request*'s key across processes sharing this directory.

        The lock names its holder (host and pid): a waiter breaks the lock of a holder that
        died on this host (a SIGKILLed run) instead of waiting for it to expire.
        """
        if self.mode in ("off", "replay"):
            yield
            return
        cache = self._open()
        name = f"lock:{request.key()}"
        me = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        while not cache.add(name, me, expire=expire, retry=True):
            holder = cache.get(name, retry=True)
            if isinstance(holder, str) and _dead_here(holder):
                cache.delete(name, retry=True)
                continue
            time.sleep(0.02)
        try:
            yield
        finally:
            cache.delete(name, retry=True)

    def __len__(self) -> int:
        return len(self._open()) if self.directory.exists() else 0

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
