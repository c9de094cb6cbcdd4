"""The response cache: diskcache on disk, JSON text values, opened only when first used.

Nothing read from the directory is ever unpickled (see :mod:`pytest_promptpert.disk`): a cache
written by someone else can hold wrong answers, never code. A shared tier (Redis,
``redis_store.py``) may sit behind the directory: read through, written to, locked.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .lease import (
    LOCK_LEASE,
    WRITE_ERRORS,
    Renewer,
    acquire,
    diskcache_timeout,
    holder_name,
    writer_lock,
)
from .request import Completion, Request
from .store import is_entry_key
from .usage import UsageTally
from .warning_types import CacheWarning, warn

if TYPE_CHECKING:
    from .redis_store import SharedTier

CACHE_MODES = ("auto", "replay", "refresh", "off")
PROBE_KEY = "__probe__"

GITIGNORE = "# Created by pytest-promptpert automatically.\n*\n"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-promptpert.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/spec.html\n"
)

#: SQLite's words for "the entries may be fine, but nothing can be written here"
_CANNOT_WRITE = ("readonly", "disk is full", "disk I/O error")


class CacheDirError(OSError):
    """The cache directory cannot be created or opened."""


class ResponseCache:
    """Completions by request key, stored as JSON text; a lock per key across processes."""

    def __init__(
        self,
        directory: Path,
        mode: str = "auto",
        *,
        run_id: str = "",
        shared: SharedTier | None = None,
        lease: float = LOCK_LEASE,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode {mode!r} is not one of {', '.join(CACHE_MODES)}")
        self.directory = Path(directory)
        self.mode = mode
        self.run_id = run_id
        self.lease = lease
        #: what this process read and wrote, written next to the cache at close (usage.py)
        self.usage = UsageTally()
        #: a shared cache (Redis) behind this directory: read through, written to, locked
        self.shared = shared
        self._cache: Any = None  # diskcache.Cache, or disk.ReadOnlyCache on a read-only mount
        self._open_lock = threading.Lock()
        #: the directory cannot be written (a read-only mount): reads only
        self.read_only = False
        self._read_only_reason = "the directory is read-only"
        #: how many writes failed this run (a full disk, a read-only mount)
        self.write_failures = 0
        self._warned: set[str] = set()
        #: the locks this cache holds: key -> holder; :meth:`set` releases the writer's own
        self._held: dict[str, str] = {}
        self._renewer: Renewer | None = None
        #: this process's writers to the directory take turns here, not in SQLite's busy wait
        self._writes = writer_lock(str(self.directory.absolute()))

    @property
    def reads(self) -> bool:
        return self.mode in ("auto", "replay")

    @property
    def writes(self) -> bool:
        return self.mode in ("auto", "refresh")

    @property
    def writes_locally(self) -> bool:
        return self.mode != "off"

    def _warn_once(self, kind: str, message: str) -> None:
        with self._open_lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        warn(CacheWarning(message), stacklevel=3)

    # --- opening --------------------------------------------------------------------------

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
        warn(
            CacheWarning(
                f"cache directory {self.directory} was unreadable ({exc}); moved it to {aside}"
                " and started a fresh cache"
            ),
            stacklevel=4,
        )
        cache = diskcache.Cache(str(self.directory), eviction_policy="none", disk=TextOnlyDisk)
        self._write_markers()
        return cache

    def _writer(self) -> Any:
        """The open cache, for a write: an error naming the reason when it is read-only."""
        cache = self._open()
        if self.read_only:
            raise CacheDirError(
                f"cannot write to the cache {self.directory}: {self._read_only_reason}"
            )
        return cache

    # --- completions, for the client ------------------------------------------------------

    def get(self, request: Request) -> Completion | None:
        """The cached completion, if this mode reads the cache."""
        found = self.read(request) if self.reads else None
        if found is not None and (found.run != self.run_id or not found.run):
            # an answer this run paid for itself saved nothing
            self.usage.hit(request.key(), found.tokens, found.cost)
        return found

    def read(self, request: Request) -> Completion | None:
        """The cached completion whatever the mode (``refresh`` rereads what it wrote).

        Local first, then the shared tier (a shared hit is kept in the directory). An entry
        that is not a readable completion is a miss, reported once per run, never unpickled.
        """
        if self.mode == "off":
            return None
        from .disk import Damaged

        key = request.key()
        value = self._open().get(key)
        where = str(self.directory)
        shared = False
        if value is None and self.shared is not None:
            value, shared = self.shared.read(key), True
            where = self.shared.store.location
        if value is None:
            return None
        why = value.why if isinstance(value, Damaged) else None
        if why is None and not isinstance(value, str):
            why = f"a {type(value).__name__}, not text"
        if why is None:
            try:
                found = Completion.from_json(value)
            except (ValueError, KeyError, TypeError) as exc:
                why = f"not a readable completion: {exc}"
            else:
                if shared:
                    self._keep_shared(key, value)
                return found
        self._warn_once(
            "damaged",
            f"cache entry {key[:16]}… in {where} is damaged ({why}); it was treated"
            " as a miss and never unpickled or run (later damaged entries are not reported)",
        )
        return None

    def _keep_shared(self, key: str, text: str) -> None:
        """A shared hit, kept in this directory for the next read (when it can be written)."""
        if self.writes_locally and not self.read_only:
            with contextlib.suppress(*WRITE_ERRORS, diskcache_timeout()):
                self._open().set(key, text)

    def set(self, request: Request, completion: Completion) -> bool:
        """Store *completion*; False when this mode does not write or the local write failed.

        A lock on the key that this thread holds (:meth:`lock`) is released in the same
        transaction: one write, and no moment when the lock is gone and the answer not there.
        """
        if not self.writes:
            return False
        key = request.key()
        text = completion.to_json(request)
        if self.shared is not None:
            self.shared.write(key, text)
        me = holder_name()
        with self._open_lock:
            mine = self._held.get(key) == me
        try:
            cache = self._writer()
            with self._writes, cache.transact(retry=True):
                cache.set(key, text)
                if mine and cache.get(f"lock:{key}") == me:
                    cache.delete(f"lock:{key}")
        except (*WRITE_ERRORS, diskcache_timeout()) as exc:
            self._write_failed(exc)
            return False
        if mine:
            self._forget(key, me)  # released: the lock's own exit has nothing to delete
        self.usage.wrote(key)
        return True

    def _write_failed(self, exc: BaseException) -> None:
        with self._open_lock:
            self.write_failures += 1
        self._warn_once(
            "write",
            f"cannot write to the cache {self.directory} ({exc}): this run keeps its answers in"
            " memory; a later run will have to ask for them again",
        )

    # --- locks --------------------------------------------------------------------------

    def lock(
        self, request: Request, *, cancelled: threading.Event | None = None
    ) -> AbstractContextManager[None]:
        """Hold a lock on *request*'s key (see :meth:`lock_key`)."""
        about = f"{request.model!r} and prompt {request.prompt!r:.80}"
        return self._lock(request.key(), cancelled, about)

    def lock_key(
        self, key: str, cancelled: threading.Event | None = None
    ) -> AbstractContextManager[None]:
        """Hold a lock on *key* across processes sharing this directory (and the shared tier).

        The lock names its holder (host, pid, thread) and is a lease of :attr:`lease` seconds
        that the holder renews while it waits on the model: a waiter breaks the lock of a holder
        that died on this host at once, and any other dead holder's lock expires in seconds.
        On a full disk or a read-only mount the call goes on without the local lock.
        """
        return self._lock(key, cancelled, f"the entry {key[:16]}…")

    @contextlib.contextmanager
    def _lock(self, key: str, cancelled: threading.Event | None, about: str) -> Iterator[None]:
        if self.mode in ("off", "replay"):
            yield
            return
        cache = self._open()
        name, me = f"lock:{key}", holder_name()
        held = False
        if not self.read_only:
            try:
                acquire(
                    cache,
                    name,
                    me,
                    self.lease,
                    cancelled,
                    self._waiting(name, about),
                    self._writes,
                )
                held = True
            except (*WRITE_ERRORS, diskcache_timeout()) as exc:
                self._write_failed(exc)  # a full disk: call without the lock, keep the answer
        if held:
            with self._open_lock:
                self._held[key] = me
                if self._renewer is None:
                    self._renewer = Renewer(cache, self.lease, self._writes)
            self._renewer.hold(name, me)
        try:
            # one call per key across machines: the shared tier's lock inside the local one
            with self.shared.lock(key, cancelled) if self.shared else contextlib.nullcontext():
                yield
        finally:
            if held:
                assert self._renewer is not None
                self._renewer.release(name, me)
                # Still held unless set() released it with its write. A failed delete (a full
                # disk) leaves the lease to expire in seconds.
                if self._forget(key, me):
                    with (
                        contextlib.suppress(*WRITE_ERRORS, diskcache_timeout()),
                        self._writes,
                        cache.transact(retry=True),
                    ):
                        if cache.get(name) == me:
                            cache.delete(name)

    def _forget(self, key: str, me: str) -> bool:
        """Forget that *me* holds *key*'s lock; False when it did not (any longer)."""
        with self._open_lock:
            if self._held.get(key) != me:
                return False
            del self._held[key]
            return True

    def _waiting(self, name: str, about: str) -> Any:
        def waiting(holder: str) -> None:
            self._warn_once(
                f"wait:{name}",
                f"waiting for another run ({holder}) that is asking the model for {about};"
                f" its lock expires {self.lease:g} s after its holder stops renewing it",
            )

        return waiting

    # --- entries by key, for ``promptpert cache`` (cache_admin.py) -------------------------

    def entry_keys(self) -> Iterator[str]:
        """The key of every entry (lock and other bookkeeping keys left out)."""
        for key, _ in self._scan(with_values=False):
            yield key

    def entry_texts(self, *, by_key: bool = False) -> Iterator[tuple[str, str | None]]:
        """Every entry's key and stored text (None where the value is not text: damaged)."""
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
        # Values go through TextOnlyDisk.fetch: text, or a Damaged marker (yielded as None);
        # nothing is unpickled and no file outside the database is read.
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
        """An entry's stored JSON text, whatever the mode (None when missing or damaged)."""
        text = self._open().get(key, retry=True)
        return text if isinstance(text, str) else None

    def set_text(self, key: str, text: str) -> None:
        self._writer().set(key, text, retry=True)

    def delete_key(self, key: str) -> bool:
        return bool(self._writer().delete(key, retry=True))

    def batch(self) -> AbstractContextManager[object]:
        """One transaction for many writes (an import): far faster than one per write."""
        return self._writer().transact(retry=True)  # type: ignore[no-any-return]

    @property
    def location(self) -> str:
        return str(self.directory)

    def __len__(self) -> int:
        return len(self._open()) if self.directory.exists() else 0

    def close(self) -> None:
        if self._renewer is not None:
            self._renewer.stop()
            self._renewer = None
        if self.shared is not None:
            self.shared.close()
        if self._cache is not None:
            if not self.read_only:
                self.usage.flush(self.directory, self.run_id)
            self._cache.close()
            self._cache = None
