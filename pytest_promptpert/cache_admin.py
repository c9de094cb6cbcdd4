"""What ``promptpert cache`` does: read, select, prune, export and import cache entries.

Pure functions over a store (``store.Store``: the local ``Store`` or a ``RedisStore``)
and the usage tallies of ``usage.py``; the command line in ``cli.py`` only parses arguments
and prints what these return.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .redact import public_params
from .request import key_of, prompt_text
from .store import Store, is_entry_key
from .usage import USAGE_DIR, Usage

#: Called with (done, total or None) as a long operation goes.
Progress = Callable[[int, "int | None"], None]


def _no_progress(done: int, total: int | None) -> None:
    pass


class CacheAdminError(ValueError):
    """Bad input to a cache command: the message names the value and where it came from."""


@dataclass(frozen=True)
class Entry:
    """One cached answer: its key, the stored JSON object and the stored text's size."""

    key: str
    data: Mapping[str, Any]
    size: int

    @property
    def model(self) -> str:
        request = self.data.get("request")
        model = request.get("model") if isinstance(request, Mapping) else None
        return str(model or self.data.get("model", ""))

    @property
    def created(self) -> float:
        return float(self.data.get("created", 0.0))

    @property
    def prompt(self) -> str:
        request = self.data.get("request")
        messages = request.get("messages") if isinstance(request, Mapping) else None
        return prompt_text(messages) if isinstance(messages, list) and messages else ""

    @property
    def output(self) -> str:
        return str(self.data.get("output", ""))

    @property
    def tokens(self) -> int:
        return int(self.data.get("prompt_tokens", 0)) + int(self.data.get("completion_tokens", 0))

    @property
    def cost(self) -> float:
        return float(self.data.get("cost", 0.0))


def parse_entry(key: str, text: str) -> Entry | None:
    """The entry stored as *text*, or None when it is not an entry this version can read."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("output"), str):
        return None
    return Entry(key, data, len(text.encode("utf-8")))


def entries(
    cache: Store, unreadable: list[str] | None = None, *, by_key: bool = False
) -> Iterator[Entry]:
    """Every readable entry; the keys of unreadable ones go to *unreadable* when given."""
    for key, text in cache.entry_texts(by_key=by_key):
        entry = parse_entry(key, text) if text is not None else None
        if entry is not None:
            yield entry
        elif unreadable is not None:
            unreadable.append(key)


def find(cache: Store, prefix: str) -> Entry:
    """The entry whose key is or starts with *prefix* (at least 4 characters)."""
    prefix = prefix.strip().lower()
    if len(prefix) < 4 or not re.fullmatch(r"[0-9a-f]+", prefix):
        raise CacheAdminError(
            f"KEY {prefix!r} is not a cache key or a prefix of one (4 to 64 hex digits)"
        )
    if len(prefix) == 64:
        matches = [prefix] if cache.get_text(prefix) is not None else []
    else:
        matches = [key for key in cache.entry_keys() if key.startswith(prefix)]
    if not matches:
        raise CacheAdminError(f"KEY {prefix!r}: no entry in {cache.location} has that key")
    if len(matches) > 1:
        raise CacheAdminError(
            f"KEY {prefix!r} matches {len(matches)} entries ({', '.join(matches[:3])}, ...);"
            " give more of it"
        )
    text = cache.get_text(matches[0])
    entry = parse_entry(matches[0], text or "")
    if entry is None:
        raise CacheAdminError(f"KEY {matches[0]}: the entry is not readable JSON")
    return entry


# --- parsing the command line's dates and durations ------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, where: str) -> float:
    """Seconds in ``30d``, ``12h``, ``2w``, ``90m`` or ``45s``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise CacheAdminError(
            f"{where}: {text!r} is not a duration (a number and a unit: 30d, 12h, 2w, 90m, 45s)"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_since(text: str, where: str, now: float) -> float:
    """A timestamp from an ISO date or date-time (UTC unless it says), or a duration ago."""
    if _DURATION.fullmatch(text.strip().lower()):
        return now - parse_duration(text, where)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CacheAdminError(
            f"{where}: {text!r} is not a date (2026-11-01, 2026-11-01T12:00) or a duration (7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# --- selecting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which entries a command acts on; every given criterion must hold."""

    model: str | None = None
    grep: str | None = None
    since: float | None = None
    older_than: float | None = None  # created before this timestamp
    keep: frozenset[str] | None = None  # only entries whose key is NOT in here

    def __call__(self, entry: Entry) -> bool:
        if self.model is not None and entry.model != self.model:
            return False
        if self.since is not None and entry.created < self.since:
            return False
        if self.older_than is not None and entry.created >= self.older_than:
            return False
        if self.keep is not None and entry.key in self.keep:
            return False
        if self.grep is not None:
            needle = self.grep.lower()
            haystack = json.dumps(entry.data.get("request", ""), ensure_ascii=False).lower()
            if needle not in entry.output.lower() and needle not in haystack:
                return False
        return True


def select(cache: Store, selection: Selection) -> Iterator[Entry]:
    return (entry for entry in entries(cache) if selection(entry))


# --- statistics -------------------------------------------------------------------------------


def disk_size(directory: Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


@dataclass
class CacheStats:
    directory: str
    entries: int = 0
    unreadable: int = 0
    size_on_disk: int = 0
    models: dict[str, int] = field(default_factory=dict)
    oldest: float | None = None
    newest: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # what the cached answers cost when they were fetched
    hits: int = 0  # hits recorded by runs (each key once per process)
    tokens_saved: int = 0
    cost_saved: float = 0.0
    runs: int = 0
    last_run: str | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["tokens"] = self.tokens
        return data


def cache_stats(
    cache: Store, usage: Usage, directory: Path | None, progress: Progress = _no_progress
) -> CacheStats:
    """*directory*: the local cache's, for its size on disk (None for Redis)."""
    stats = CacheStats(directory=cache.location)
    unreadable: list[str] = []
    for entry in entries(cache, unreadable):
        stats.entries += 1
        stats.models[entry.model] = stats.models.get(entry.model, 0) + 1
        created = entry.created
        stats.oldest = created if stats.oldest is None else min(stats.oldest, created)
        stats.newest = created if stats.newest is None else max(stats.newest, created)
        stats.prompt_tokens += int(entry.data.get("prompt_tokens", 0))
        stats.completion_tokens += int(entry.data.get("completion_tokens", 0))
        stats.cost += entry.cost
        if stats.entries % 1000 == 0:
            progress(stats.entries, None)
    stats.unreadable = len(unreadable)
    stats.models = dict(sorted(stats.models.items(), key=lambda kv: (-kv[1], kv[0])))
    stats.size_on_disk = disk_size(directory) if directory and directory.exists() else 0
    stats.hits = usage.hit_count
    stats.tokens_saved = usage.tokens_saved
    stats.cost_saved = usage.cost_saved
    stats.runs = len(usage.runs)
    stats.last_run = usage.last_run
    return stats


# --- removing ---------------------------------------------------------------------------------


def prune(
    cache: Store,
    selection: Selection,
    *,
    dry_run: bool = False,
    progress: Progress = _no_progress,
) -> tuple[int, int]:
    """Delete the selected entries: (how many, bytes of stored text)."""
    doomed = [(entry.key, entry.size) for entry in select(cache, selection)]
    for done, (key, _) in enumerate(doomed, 1):
        if not dry_run:
            cache.delete_key(key)
        if done % 1000 == 0:
            progress(done, len(doomed))
    return len(doomed), sum(size for _, size in doomed)


def clear(cache: Store, directory: Path | None, progress: Progress = _no_progress) -> int:
    """Delete every entry and the usage tallies; locks held by a running process stay."""
    keys = list(cache.entry_keys())
    for done, key in enumerate(keys, 1):
        cache.delete_key(key)
        if done % 1000 == 0:
            progress(done, len(keys))
    if directory is not None:
        shutil.rmtree(directory / USAGE_DIR, ignore_errors=True)
    return len(keys)


# --- export and import ------------------------------------------------------------------------


def export_lines(cache: Store, progress: Progress = _no_progress) -> Iterator[str]:
    """One JSON object per entry, sorted by key (so two exports diff cleanly), ``key`` first."""
    for done, entry in enumerate(entries(cache, by_key=True), 1):
        yield json.dumps({"key": entry.key, **entry.data}, ensure_ascii=False)
        if done % 1000 == 0:
            progress(done, None)


def write_export(cache: Store, out: IO[str], progress: Progress = _no_progress) -> int:
    count = 0
    for line in export_lines(cache, progress):
        out.write(line + "\n")
        count += 1
    return count


def _validated(line: str, where: str) -> tuple[str, str]:
    """(key, stored text) of one export line; the key must be the request's own key."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise CacheAdminError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CacheAdminError(f"{where}: expected a JSON object, not {type(data).__name__}")
    key = data.pop("key", None)
    request = data.get("request")
    if not isinstance(key, str) or not is_entry_key(key):
        raise CacheAdminError(f"{where}: 'key' must be a 64-digit hex cache key, not {key!r:.80}")
    if not isinstance(data.get("output"), str):
        raise CacheAdminError(f"{where}: 'output' must be a string")
    if not isinstance(request, dict) or not {"model", "messages", "params"} <= set(request):
        raise CacheAdminError(f"{where}: 'request' must hold model, messages and params")
    params = request["params"]
    if not isinstance(params, dict) or public_params(params) != params:
        raise CacheAdminError(
            f"{where}: request params hold a credential or a URL with one; not importing it"
        )
    if key_of(request) != key:
        raise CacheAdminError(
            f"{where}: 'key' {key[:12]}… is not the key of its request (edited, or written by"
            " another key version); a wrong key would never be found"
        )
    return key, json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass
class ImportResult:
    added: int = 0
    same: int = 0  # already in the cache with the same output
    kept: int = 0  # in the cache with another output, which was kept
    replaced: int = 0  # in the cache with another output, which was replaced (--replace)


def read_import(path: Path) -> list[tuple[str, str]]:
    """Every (key, text) of an export file, all checked before any is returned."""
    try:
        with path.open(encoding="utf-8") as lines:
            return [
                _validated(line, f"{path}:{number}")
                for number, line in enumerate(lines, 1)
                if line.strip()
            ]
    except (OSError, UnicodeDecodeError) as exc:
        raise CacheAdminError(f"cannot read {path}: {exc}") from None


def import_entries(
    cache: Store,
    items: Iterable[tuple[str, str]],
    *,
    replace: bool = False,
    total: int | None = None,
    progress: Progress = _no_progress,
) -> ImportResult:
    """Merge *items* into *cache*: new keys are added; an existing key keeps its answer unless
    *replace*."""
    result = ImportResult()
    pending = iter(items)
    done = 0
    while True:
        chunk = list(itertools.islice(pending, 1000))
        if not chunk:
            return result
        with cache.batch():  # a transaction per thousand entries, not one per entry
            for key, text in chunk:
                _merge(cache, key, text, replace, result)
        done += len(chunk)
        progress(done, total)


def _merge(cache: Store, key: str, text: str, replace: bool, result: ImportResult) -> None:
    existing = cache.get_text(key)
    if existing is None:
        cache.set_text(key, text)
        result.added += 1
    elif _output(existing) == _output(text):
        result.same += 1
    elif replace:
        cache.set_text(key, text)
        result.replaced += 1
    else:
        result.kept += 1


def _output(text: str) -> object:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data.get("output") if isinstance(data, dict) else None


def tool_calls_of(entry: Entry) -> list[Any]:
    calls = entry.data.get("tool_calls")
    return list(calls) if isinstance(calls, list) else []
