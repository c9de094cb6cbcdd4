"""Per-key locks in the cache directory: leases their holder renews, broken when foreign or dead.

A lock is the entry ``lock:<key>`` whose value names its holder (host, pid, thread) and which
expires :data:`LOCK_LEASE` seconds after its holder last renewed it. A holder killed on
another host or in another container blocks the key that long; one that died on this host
not even that (its pid is gone). A lock that claims never to expire, or to outlive any lease
this version gives, was not taken by it, and is broken at once.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

#: Seconds a per-key lock lasts unless its holder renews it (it does, while it waits on the
#: model): a holder killed on another host or in another container blocks the key this long.
LOCK_LEASE = 10.0
#: Seconds a run waits on another's lock before it says so.
LOCK_PATIENCE = 2.0

WRITE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)


def diskcache_timeout() -> type[BaseException]:
    import diskcache

    return diskcache.Timeout  # type: ignore[no-any-return]


_writer_locks: dict[str, threading.Lock] = {}
_writer_locks_lock = threading.Lock()


def writer_lock(directory: str) -> threading.Lock:
    """The lock this process's threads take, in turn, to write to the cache in *directory*.

    SQLite lets one writer in at a time and makes the others sleep (1, 2, 5, 10 ms ...) before
    they try again; threads queued on a lock of this process wake as soon as it is free. Other
    processes still wait on SQLite's own lock.
    """
    with _writer_locks_lock:
        return _writer_locks.setdefault(directory, threading.Lock())


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def dead_here(holder: str) -> bool:
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


def acquire(
    cache: Any,
    name: str,
    me: str,
    lease: float,
    cancelled: threading.Event | None,
    waiting: Callable[[str], None],
    writes: threading.Lock | None = None,
) -> None:
    """Take lock *name* in the diskcache *cache*; *waiting(holder)* after LOCK_PATIENCE s.

    *writes*: held around each write (see :func:`writer_lock`). Raises
    :class:`CancelledError` when *cancelled* is set while it waits, and the cache's write
    errors (a full disk) as they come.
    """
    writes = writes or threading.Lock()
    started = time.monotonic()
    while True:
        with writes:
            if cache.add(name, me, expire=lease, retry=True):
                return
        holder, expires = cache.get(name, expire_time=True, retry=True)
        if not isinstance(holder, str):
            holder = "unknown"  # damaged or planted: not ours, not to be trusted
        # A lock that claims to outlive any lease we give was not taken by this version.
        foreign = expires is None or expires > time.time() + lease + 1.0
        if foreign or holder == "unknown" or dead_here(holder):
            with writes:
                cache.delete(name, retry=True)
            continue
        if time.monotonic() - started >= LOCK_PATIENCE:
            waiting(holder)
        if (cancelled or threading.Event()).wait(0.02):
            raise CancelledError("cancelled while waiting for another run's lock")


class Renewer:
    """Renews the locks one cache holds, every quarter lease, all from one thread.

    A thread per held lock would cost every call a thread start; this one starts with the first
    lock and runs until :meth:`stop`. A lock another process took over (after its lease ran out)
    is dropped, not renewed.
    """

    def __init__(self, cache: Any, lease: float, writes: threading.Lock) -> None:
        self.cache = cache
        self.lease = lease
        self._writes = writes
        self._held: dict[str, str] = {}  # lock name -> its holder (host:pid:thread)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, name: str, holder: str) -> None:
        with self._lock:
            self._held[name] = holder
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="promptpert-lease", daemon=True
                )
                self._thread.start()

    def release(self, name: str, holder: str) -> None:
        with self._lock:
            if self._held.get(name) == holder:
                del self._held[name]

    def _run(self) -> None:
        while not self._stopped.wait(self.lease / 4):
            with self._lock:
                held = list(self._held.items())
            for name, holder in held:
                try:
                    with self._writes, self.cache.transact(retry=True):
                        if self.cache.get(name) != holder:
                            self.release(name, holder)  # taken over: its lease had run out
                            continue
                        self.cache.touch(name, expire=self.lease)
                except (*WRITE_ERRORS, diskcache_timeout()):
                    pass  # a full disk: the lease runs out, as it would for a dead holder

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
