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
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from .request import Completion, Request
from .store import is_entry_key
from .usage import UsageTally
from .warning_types import CacheWarning, warn

if TYPE_CHECKING:
    import diskcache

    from .redis_store import SharedTier

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

    def __init__(
        self,
        directory: Path,
        mode: str = "auto",
        *,
        run_id: str = "",
        shared: SharedTier | None = None,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode {mode!r} is not one of {', '.join(CACHE_MODES)}")
        self.directory = Path(directory)
        self.mode = mode
        self.run_id = run_id
        #: what this process read and wrote, written next to the cache at close (usage.py)
        self.usage = UsageTally()
        #: a shared cache (Redis) behind this directory: read through, written to, locked
        self.shared = shared
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
        found = self.read(request) if self.reads else None
        if found is not None and (found.run != self.run_id or not found.run):
            # an answer this run paid for itself saved nothing
            self.usage.hit(request.key(), found.tokens, found.cost)
        return found

    def read(self, request: Request) -> Completion | None:
        """The cached completion whatever the mode (``refresh`` rereads what it wrote)."""
        if self.mode == "off":
            return None
        key = request.key()
        text = self._open().get(key)
        if text is None and self.shared is not None:
            text = self._read_shared(key)
        if not isinstance(text, str):
            return None
        try:
            return Completion.from_json(text)
        except (ValueError, KeyError, TypeError):
            return None  # an entry we cannot read is a miss, and will be overwritten

    def _read_shared(self, key: str) -> str | None:
        """An entry from the shared tier, kept in this directory for the next read."""
        assert self.shared is not None
        text = self.shared.read(key)
        if text is not None and self.writes_locally:
            with contextlib.suppress(OSError, sqlite3.Error):
                self._open().set(key, text)
        return text

    @property
    def writes_locally(self) -> bool:
        return self.mode != "off"

    def set(self, request: Request, completion: Completion) -> None:
        if self.writes:
            key = request.key()
            text = completion.to_json(request)
            if self.shared is not None:
                self.shared.write(key, text)
            self._open().set(key, text)
            self.usage.wrote(key)

    def lock(self, request: Request, *, expire: float = 600.0) -> AbstractContextManager[None]:
        """Hold a lock on *request*'s key (see :meth:`lock_key`)."""
        return self.lock_key(request.key(), expire=expire)

    @contextlib.contextmanager
    def lock_key(
        self, key: str, cancelled: threading.Event | None = None, *, expire: float = 600.0
    ) -> Iterator[None]:
        """Hold a lock on *key* across processes sharing this directory (and the shared tier).

        The lock names its holder (host and pid): a waiter breaks the lock of a holder that
        died on this host (a SIGKILLed run) instead of waiting for it to expire.
        """
        if self.mode in ("off", "replay"):
            yield
            return
        cache = self._open()
        name = f"lock:{key}"
        me = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        while not cache.add(name, me, expire=expire, retry=True):
            holder = cache.get(name, retry=True)
            if isinstance(holder, str) and _dead_here(holder):
                cache.delete(name, retry=True)
                continue
            time.sleep(0.02)
        try:
            # one call per key across machines: the shared tier's lock inside the local one
            with self.shared.lock(key, cancelled) if self.shared else contextlib.nullcontext():
                yield
        finally:
            cache.delete(name, retry=True)

    # --- entries by key, for ``promptpert cache`` (cache_admin.py) -------------------------

    def entry_keys(self) -> Iterator[str]:
        """The key of every entry (lock and other bookkeeping keys left out)."""
        for key, _ in self._scan(with_values=False):
            yield key

    def entry_texts(self, *, by_key: bool = False) -> Iterator[tuple[str, str | None]]:
        """Every entry's key and stored text (None where the value is not text)."""
        return self._scan(with_values=True, by_key=by_key)

    def _scan(self, *, with_values: bool, by_key: bool = False) -> Iterator[tuple[str, str | None]]:
        if not self.directory.exists():
            return
        cache = self._open()
        sql, disk = getattr(cache, "_sql", None), getattr(cache, "_disk", None)
        if sql is None or disk is None:  # not the diskcache we know: key by key, slower
            for key in cache.iterkeys():  # in key order
                if isinstance(key, str) and is_entry_key(key):
                    yield key, self.get_text(key) if with_values else None
            return
        # One table scan: diskcache's own iterkeys() pages with a query that grows slow on
        # large caches (100k entries: seconds of CPU), a scan reads them all in a fraction.
        columns = "key, mode, filename, value" if with_values else "key, 0, NULL, NULL"
        order = " ORDER BY key" if by_key else ""
        for key, mode, filename, value in sql(f"SELECT {columns} FROM Cache WHERE raw = 1{order}"):
            if not (isinstance(key, str) and is_entry_key(key)):
                continue
            if not with_values:
                yield key, None
                continue
            try:
                text = disk.fetch(mode, filename, value, False)
            except Exception:  # a damaged or foreign value: unreadable, never fatal
                text = None
            yield key, text if isinstance(text, str) else None

    def get_text(self, key: str) -> str | None:
        """An entry's stored JSON text, whatever the mode."""
        text = self._open().get(key, retry=True)
        return text if isinstance(text, str) else None

    def set_text(self, key: str, text: str) -> None:
        self._open().set(key, text, retry=True)

    def delete_key(self, key: str) -> bool:
        return bool(self._open().delete(key, retry=True))

    def batch(self) -> contextlib.AbstractContextManager[object]:
        """One transaction for many writes (an import): far faster than one per write."""
        return self._open().transact(retry=True)  # type: ignore[no-any-return]

    @property
    def location(self) -> str:
        return str(self.directory)

    def __len__(self) -> int:
        return len(self._open()) if self.directory.exists() else 0

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()
        if self._cache is not None:
            self.usage.flush(self.directory, self.run_id)
            self._cache.close()
            self._cache = None
