"""The original item's observed results, kept so that a variant item run alone can compare.

One small JSON file per test under ``<cache_dir>/observed/`` (written in cache modes that write,
kept in memory for the run in every mode): the values ``promptpert.observe()`` recorded and the
keys of the model calls the original item made. A variant item whose calls' twins are not among
those keys knows the record is from another version of the test, and does not use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Observed:
    values: list[Any]
    keys: frozenset[str]


class ObservedStore:
    def __init__(self, cache_dir: Path, mode: str) -> None:
        self.directory = Path(cache_dir) / "observed"
        self.mode = mode
        self._memory: dict[str, Observed] = {}
        self._lock = threading.Lock()

    def _path(self, test: str) -> Path:
        return self.directory / (hashlib.sha256(test.encode("utf-8")).hexdigest() + ".json")

    def save(self, test: str, values: list[Any], keys: list[str]) -> None:
        record = Observed(values, frozenset(keys))
        with self._lock:
            self._memory[test] = record
        if self.mode not in ("auto", "refresh"):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"test": test, "values": values, "keys": sorted(keys)}, default=repr)
        path = self._path(test)
        temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)  # readers never see half a file (xdist workers)

    def load(self, test: str) -> Observed | None:
        with self._lock:
            found = self._memory.get(test)
        if found is not None or self.mode not in ("auto", "replay"):
            return found
        try:
            data = json.loads(self._path(test).read_text(encoding="utf-8"))
            if data.get("test") != test or not isinstance(data.get("values"), list):
                return None
            return Observed(list(data["values"]), frozenset(map(str, data.get("keys", []))))
        except (OSError, ValueError, AttributeError):
            return None
