"""Where entries live: the protocol that the local directory and Redis both implement.

An entry is a cache key (``Request.key()``, 64 hex digits) and the JSON text of a completion.
``ResponseCache`` (cache.py) is the local directory; ``RedisStore`` (redis_store.py) is the
shared one; ``promptpert cache`` works on either through this protocol.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol

_ENTRY_KEY = re.compile(r"[0-9a-f]{64}")


def is_entry_key(key: str) -> bool:
    """Entries are keyed by a SHA-256 hex digest (``Request.key``); locks and the rest are not."""
    return _ENTRY_KEY.fullmatch(key) is not None


class Store(Protocol):
    """Text values by key, a lock per key across processes, and iteration over entries."""

    @property
    def location(self) -> str: ...  # for messages: a directory, or a URL without its password

    def get_text(self, key: str) -> str | None: ...

    def set_text(self, key: str, text: str) -> None: ...

    def delete_key(self, key: str) -> bool: ...

    def entry_keys(self) -> Iterator[str]: ...

    def entry_texts(self, *, by_key: bool = False) -> Iterator[tuple[str, str | None]]: ...

    def batch(self) -> AbstractContextManager[object]: ...  # many writes at once

    def lock_key(
        self, key: str, cancelled: threading.Event | None = None
    ) -> AbstractContextManager[None]: ...
