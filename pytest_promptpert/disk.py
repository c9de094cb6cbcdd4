"""How cache entries are stored: text only, never pickles, never files outside the directory.

diskcache's own ``Disk`` unpickles any value stored in its pickle mode, so a cache directory
written by someone else (a CI cache restored from another branch, a shared volume) could run
code in the reading process. :class:`TextOnlyDisk` stores keys and values as text in the
database and gives back, for anything else it finds, a :class:`Damaged` marker instead of the
value: the cache treats it as a miss.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT

_MODE_NAMES = {
    MODE_RAW: "raw",
    MODE_BINARY: "binary file",
    MODE_TEXT: "text file",
    MODE_PICKLE: "pickle",
}
#: The only file names diskcache itself gives values: ``ab/cd/<28 hex>.val``.
_VALUE_FILE = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val")


class Damaged:
    """What a cache read returns for an entry stored in a form this plugin never writes."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"<damaged cache entry: {self.why}>"


class TextOnlyDisk(diskcache.Disk):  # type: ignore[misc]
    """Keys and values are ``str``, kept in the database; nothing is ever unpickled."""

    def __init__(self, directory: str, **_ignored: Any) -> None:
        # Settings such as pickle_protocol or min_file_size come from the database (that is,
        # from whoever wrote it) and mean nothing here.
        super().__init__(directory)

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError(f"cache keys are str, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        if raw and type(key) is str:
            return key
        return Damaged("a key that is not text")

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> tuple[Any, ...]:
        if read or type(value) is not str:
            raise TypeError(f"cache values are str, not {type(value).__name__}")
        return 0, MODE_RAW, None, value

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_RAW and type(value) is str and not read:
            return value
        kind = _MODE_NAMES.get(mode, f"mode {mode!r}")
        if mode == MODE_RAW:
            kind = f"raw {type(value).__name__}"
        return Damaged(f"stored as {kind}, not text")

    def remove(self, file_path: str) -> None:
        # Called with the file name of an entry being replaced. We never write files; remove
        # one only if diskcache could have made it, so a planted row cannot delete elsewhere.
        if not isinstance(file_path, str) or not _VALUE_FILE.fullmatch(file_path):
            return
        super().remove(file_path)


def open_read_only(directory: Path, timeout: float) -> ReadOnlyCache:
    """A view of the cache in *directory* that never writes (a read-only mount)."""
    return ReadOnlyCache(directory, timeout)


class ReadOnlyCache:
    """The reads :class:`~pytest_promptpert.cache.ResponseCache` needs, on a read-only copy.

    diskcache writes its settings table whenever it opens a cache, so it cannot open one on a
    read-only mount. Here SQLite opens the file read-only and immutable (nothing can change a
    read-only mount under us); values still go through :class:`TextOnlyDisk`.
    """

    def __init__(self, directory: Path, timeout: float) -> None:
        path = Path(directory) / diskcache.core.DBNAME
        if not path.is_file():
            raise sqlite3.OperationalError(f"no cache database in read-only directory {directory}")
        self._db = _connect_read_only(path, timeout)
        self._disk = TextOnlyDisk(str(directory))

    def get(self, key: str, default: Any = None, *, expire_time: bool = False, **_: Any) -> Any:
        import time

        row = self._db.execute(
            "SELECT mode, filename, value, expire_time FROM Cache"
            " WHERE key = ? AND raw = 1 AND (expire_time IS NULL OR expire_time > ?)",
            (key, time.time()),
        ).fetchone()
        if row is None:
            return (default, None) if expire_time else default
        mode, filename, value, expires = row
        found = self._disk.fetch(mode, filename, value, False)
        return (found, expires) if expire_time else found

    def _sql(self, query: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """A query on the database, as diskcache's own ``_sql`` (for one-scan listings)."""
        return self._db.execute(query, params)

    def __len__(self) -> int:
        ((count,),) = self._db.execute("SELECT COUNT(*) FROM Cache").fetchall()
        return int(count)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


def _connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """Read-only, seeing what a writer left in the WAL; immutable when SQLite cannot map its
    shared-memory file on a read-only mount (then the WAL, if any, is not seen)."""
    uri = path.resolve().as_uri()
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        db = sqlite3.connect(uri + query, uri=True, timeout=timeout, check_same_thread=False)
        try:
            db.execute("SELECT COUNT(*) FROM Cache").fetchall()
        except sqlite3.OperationalError:
            db.close()
            if query.endswith("immutable=1"):
                raise
            continue
        return db
    raise AssertionError("unreachable")


def writable(directory: Path) -> bool:
    """Whether files can be created in *directory* (False on a read-only mount, even as root)."""
    return os.access(directory, os.W_OK | os.X_OK)
