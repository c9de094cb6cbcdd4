"""The response cache: diskcache on disk, JSON text values, opened only when first used.

Nothing read from the directory is ever unpickled (see :mod:`pytest_promptpert.disk`): a cache
written by someone else can hold wrong answers, never code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import CancelledError
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .request import Completion, Request

if TYPE_CHECKING:
    import diskcache

CACHE_MODES = ("auto", "replay", "refresh", "off")
#: Seconds a per-key lock lasts unless its holder renews it (it does, while it waits on the
#: model): a holder killed on another host or in another container blocks the key this long.
LOCK_LEASE = 10.0
#: Seconds a run waits on another's lock before it says so.
LOCK_PATIENCE = 2.0
PROBE_KEY = "__probe__"

GITIGNORE = "# Created by pytest-promptpert automatically.\n*\n"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-promptpert.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/spec.html\n"
)

_WRITE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)
#: SQLite's words for "the entries may be fine, but nothing can be written here"
_CANNOT_WRITE = ("readonly", "disk is full", "disk I/O error")


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


class CacheWarning(UserWarning):
    """Something was wrong with the cache directory and was dealt with."""


class CacheDirError(OSError):
    """The cache directory cannot be created or opened."""


class ResponseCache:
    """Completions by request key, stored as JSON text; a lock per key across processes."""

    def __init__(self, directory: Path, mode: str = "auto", *, lease: float = LOCK_LEASE) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode {mode!r} is not one of {', '.join(CACHE_MODES)}")
        self.directory = Path(directory)
        self.mode = mode
        self.lease = lease
        self._cache: Any = None  # diskcache.Cache, or disk.ReadOnlyCache on a read-only mount
        self._open_lock = threading.Lock()
        #: the directory cannot be written (a read-only mount): reads only
        self.read_only = False
        self._read_only_reason = "the directory is read-only"
        #: how many writes failed this run (a full disk, a read-only mount)
        self.write_failures = 0
        self._warned: set[str] = set()

    @property
    def reads(self) -> bool:
        return self.mode in ("auto", "replay")

    @property
    def writes(self) -> bool:
        return self.mode in ("auto", "refresh")

    def _warn_once(self, kind: str, message: str) -> None:
        with self._open_lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        warnings.warn(CacheWarning(message), stacklevel=3)

    def _open(self) -> Any:
        if self._cache is None:
            with self._open_lock:
                if self._cache is None:
                    self._cache = self._connect()
        return self._cache

    def _connect(self) -> Any:
        import diskcache

        from .disk import TextOnlyDisk, open_read_only, writable

        if self.directory.is_dir() and not writable(self.directory):
            self.read_only = True
            try:
                return open_read_only(self.directory, timeout=60)
            except sqlite3.Error as exc:
                raise CacheDirError(
                    f"cannot read the read-only cache directory {self.directory}: {exc}"
                ) from None
        created = not self.directory.exists()
        try:
            cache = diskcache.Cache(str(self.directory), eviction_policy="none", disk=TextOnlyDisk)
            cache.get(PROBE_KEY)  # a damaged database fails here; a planted value is just data
        except sqlite3.OperationalError as exc:
            if not any(sign in str(exc) for sign in _CANNOT_WRITE):
                return self._move_aside(exc)
            # Opening writes (settings, the WAL): a full disk or a read-only database file.
            # The entries are fine, so read them; writes fail, once, with this reason.
            try:
                reader = open_read_only(self.directory, timeout=60)
            except sqlite3.Error:
                raise CacheDirError(f"cannot use cache directory {self.directory}: {exc}") from None
            self.read_only = True
            self._read_only_reason = str(exc)
            return reader
        except (sqlite3.DatabaseError, diskcache.Timeout) as exc:
            return self._move_aside(exc)
        except OSError as exc:
            raise CacheDirError(
                f"cannot use cache directory {self.directory}: {exc.strerror or exc}"
            ) from None
        if created:
            self._write_markers()
        return cache

    def _write_markers(self) -> None:
        """A ``.gitignore`` and a ``CACHEDIR.TAG``, as pytest's own cache directory has.

        Written only when this plugin creates the directory: delete the ``.gitignore`` of a
        cache you mean to commit, and it is not written again.
        """
        for name, text in ((".gitignore", GITIGNORE), ("CACHEDIR.TAG", CACHEDIR_TAG)):
            with contextlib.suppress(OSError):
                (self.directory / name).write_text(text, encoding="ascii")

    def _move_aside(self, exc: BaseException) -> Any:
        import diskcache

        from .disk import TextOnlyDisk

        aside = self.directory.with_name(f"{self.directory.name}.damaged-{int(time.time())}")
        shutil.move(str(self.directory), str(aside))
        warnings.warn(
            CacheWarning(
                f"cache directory {self.directory} was unreadable ({exc}); moved it to {aside}"
                " and started a fresh cache"
            ),
            stacklevel=4,
        )
        cache = diskcache.Cache(str(self.directory), eviction_policy="none", disk=TextOnlyDisk)
        self._write_markers()
        return cache

    def get(self, request: Request) -> Completion | None:
        """The cached completion, if this mode reads the cache."""
        return self.read(request) if self.reads else None

    def read(self, request: Request) -> Completion | None:
        """The cached completion whatever the mode (``refresh`` rereads what it wrote)."""
        if self.mode == "off":
            return None
        from .disk import Damaged

        key = request.key()
        value = self._open().get(key)
        if value is None:
            return None
        why = value.why if isinstance(value, Damaged) else None
        if why is None and not isinstance(value, str):
            why = f"a {type(value).__name__}, not text"
        if why is None:
            try:
                return Completion.from_json(value)
            except (ValueError, KeyError, TypeError) as exc:
                why = f"not a readable completion: {exc}"
        self._warn_once(
            "damaged",
            f"cache entry {key[:16]}… in {self.directory} is damaged ({why}); it was treated"
            " as a miss and never unpickled or run (later damaged entries are not reported)",
        )
        return None

    def set(self, request: Request, completion: Completion) -> bool:
        """Store *completion*; False when this mode does not write or the write failed."""
        if not self.writes:
            return False
        try:
            cache = self._open()
            if self.read_only:
                raise OSError(self._read_only_reason)
            cache.set(request.key(), completion.to_json(request))
        except (*_WRITE_ERRORS, _timeout()) as exc:
            self._write_failed(exc)
            return False
        return True

    def _write_failed(self, exc: BaseException) -> None:
        with self._open_lock:
            self.write_failures += 1
        self._warn_once(
            "write",
            f"cannot write to the cache {self.directory} ({exc}): this run keeps its answers in"
            " memory; a later run will have to ask for them again",
        )

    @contextlib.contextmanager
    def lock(self, request: Request, *, cancelled: threading.Event | None = None) -> Iterator[None]:
        """Hold a lock on *request*'s key across processes sharing this directory.

        The lock names its holder (host, pid, thread) and is a lease of :attr:`lease` seconds
        that the holder renews while it waits on the model: a waiter breaks the lock of a holder
        that died on this host at once, and any other dead holder's lock expires in seconds.
        """
        if self.mode in ("off", "replay"):
            yield
            return
        cache = self._open()
        name = f"lock:{request.key()}"
        me = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        held = False
        if not self.read_only:
            try:
                held = self._acquire(cache, name, me, request, cancelled)
            except (*_WRITE_ERRORS, _timeout()) as exc:
                self._write_failed(exc)  # a full disk: call without the lock, keep the answer
        if not held:
            yield
            return
        lease = _Lease(cache, name, me, self.lease)
        lease.start()
        try:
            yield
        finally:
            lease.stop()
            # A failed delete (a full disk) leaves the lease to expire in seconds.
            with contextlib.suppress(*_WRITE_ERRORS, _timeout()), cache.transact(retry=True):
                if cache.get(name) == me:
                    cache.delete(name)

    def _acquire(
        self,
        cache: diskcache.Cache,
        name: str,
        me: str,
        request: Request,
        cancelled: threading.Event | None,
    ) -> bool:
        started = time.monotonic()
        while not cache.add(name, me, expire=self.lease, retry=True):
            holder, expires = cache.get(name, expire_time=True, retry=True)
            if not isinstance(holder, str):
                holder = "unknown"  # damaged or planted: not ours, not to be trusted
            # A lock that claims to outlive any lease we give was not taken by this version.
            foreign = expires is None or expires > time.time() + self.lease + 1.0
            if foreign or holder == "unknown" or _dead_here(holder):
                cache.delete(name, retry=True)
                continue
            if time.monotonic() - started >= LOCK_PATIENCE:
                self._warn_once(
                    f"wait:{name}",
                    f"waiting for another run ({holder}) that is asking the model for"
                    f" {request.model!r} and prompt {request.prompt!r:.80}; its lock expires"
                    f" {self.lease:g} s after its holder stops renewing it",
                )
            if (cancelled or threading.Event()).wait(0.02):
                raise CancelledError("cancelled while waiting for another run's lock")
        return True

    def __len__(self) -> int:
        return len(self._open()) if self.directory.exists() else 0

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


def _timeout() -> type[BaseException]:
    import diskcache

    return diskcache.Timeout  # type: ignore[no-any-return]


class _Lease(threading.Thread):
    """Renews a held lock every quarter lease until stopped; gives up if another took it."""

    def __init__(self, cache: Any, name: str, holder: str, lease: float) -> None:
        super().__init__(name="promptpert-lease", daemon=True)
        self.cache = cache
        self.lock_name = name
        self.holder = holder
        self.lease = lease
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.lease / 4):
            try:
                with self.cache.transact(retry=True):
                    if self.cache.get(self.lock_name) != self.holder:
                        return
                    self.cache.touch(self.lock_name, expire=self.lease)
            except (*_WRITE_ERRORS, _timeout()):
                pass  # a full disk: the lease runs out, as it would for a dead holder

    def stop(self) -> None:
        self._stopped.set()
