"""The shared cache: the same keys and JSON values in Redis, behind the local directory.

``RedisStore`` implements the storage protocol of ``store.py`` on Redis: entries under
``promptpert:v1:<key>``, and a per-key lock ``promptpert:lock:<key>`` taken with ``SET NX PX``
(a lease its holder renews while it waits on the model, so a dead holder blocks others for a
few seconds at most). ``SharedTier`` puts it behind the local cache and fails soft: when Redis
goes away, the run warns once and goes on with the local directory alone.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import CancelledError
from typing import Any

from .redact import redact_url
from .store import Store, is_entry_key

ENTRY_PREFIX = "promptpert:v1:"
LOCK_PREFIX = "promptpert:lock:"
#: Seconds a lock lasts unless its holder renews it.
LOCK_LEASE = 10.0

# Renew or release a lock only while it is still ours (another may hold it after expiry).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class SharedCacheError(RuntimeError):
    """The shared cache cannot be used at all (the ``redis`` package is missing)."""


class RedisStore:
    """Entries and locks in one Redis database (``redis://host:port/db``)."""

    def __init__(self, url: str, *, lease: float = LOCK_LEASE, timeout: float = 2.0) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise SharedCacheError(
                f"cache_url {redact_url(url)} needs the redis package:"
                " pip install 'pytest-promptpert[redis]'"
            ) from None
        self.location = redact_url(url)
        self.lease = lease
        #: what a lost connection raises: the caller falls back to the local tier
        self.errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._redis: Any = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # one failure is enough to fall back, not a minute
            decode_responses=True,
        )
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    def get_text(self, key: str) -> str | None:
        value = self._redis.get(ENTRY_PREFIX + key)
        return value if isinstance(value, str) else None

    def set_text(self, key: str, text: str) -> None:
        self._redis.set(ENTRY_PREFIX + key, text)

    def delete_key(self, key: str) -> bool:
        return bool(self._redis.delete(ENTRY_PREFIX + key))

    def entry_keys(self) -> Iterator[str]:
        for name in self._redis.scan_iter(match=ENTRY_PREFIX + "*", count=1000):
            key = str(name)[len(ENTRY_PREFIX) :]
            if is_entry_key(key):
                yield key

    def entry_texts(self, *, by_key: bool = False) -> Iterator[tuple[str, str | None]]:
        keys = list(self.entry_keys())
        if by_key:
            keys.sort()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            values = self._redis.mget([ENTRY_PREFIX + key for key in chunk])
            for key, value in zip(chunk, values, strict=True):
                yield key, value if isinstance(value, str) else None

    def batch(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def lock_key(self, key: str, cancelled: threading.Event | None = None) -> Iterator[None]:
        """Hold *key*'s lock across every machine on this Redis."""
        name, token = LOCK_PREFIX + key, uuid.uuid4().hex
        lease_ms = int(self.lease * 1000)
        waiting = cancelled or threading.Event()
        while not self._redis.set(name, token, nx=True, px=lease_ms):
            if waiting.wait(0.02):
                raise CancelledError("cancelled while waiting for another machine's lock")
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease / 3):
                try:
                    self._renew(keys=[name], args=[token, lease_ms])
                except self.errors:
                    return

        renewer = threading.Thread(target=renew, name="promptpert-redis-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            with contextlib.suppress(*self.errors):
                self._release(keys=[name], args=[token])

    def close(self) -> None:
        with contextlib.suppress(*self.errors):
            self._redis.close()


class SharedTier:
    """A shared store behind the local cache: the first error warns once, then it is off."""

    def __init__(self, store: Store, errors: tuple[type[BaseException], ...]) -> None:
        self.store = store
        self.errors = errors
        self.down = False
        self._lock = threading.Lock()

    def _lost(self, exc: BaseException) -> None:
        from .cache import CacheWarning

        with self._lock:
            if self.down:
                return
            self.down = True
        warnings.warn(
            CacheWarning(
                f"the shared cache {self.store.location} stopped answering"
                f" ({type(exc).__name__}: {exc}); this run goes on with the local cache only"
            ),
            stacklevel=4,
        )

    def read(self, key: str) -> str | None:
        if self.down:
            return None
        try:
            return self.store.get_text(key)
        except self.errors as exc:
            self._lost(exc)
            return None

    def write(self, key: str, text: str) -> None:
        if self.down:
            return
        try:
            self.store.set_text(key, text)
        except self.errors as exc:
            self._lost(exc)

    @contextlib.contextmanager
    def lock(self, key: str, cancelled: threading.Event | None = None) -> Iterator[None]:
        held: contextlib.AbstractContextManager[None] | None = None
        if not self.down:
            try:
                held = self.store.lock_key(key, cancelled)
                held.__enter__()
            except self.errors as exc:
                self._lost(exc)
                held = None
        try:
            yield
        finally:
            if held is not None:
                held.__exit__(None, None, None)

    def close(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            with contextlib.suppress(*self.errors):
                close()


def open_shared(url: str) -> SharedTier:
    """The shared tier for a ``cache_url`` (``redis://``, ``rediss://`` or ``unix://``)."""
    store = RedisStore(url)
    return SharedTier(store, store.errors)
