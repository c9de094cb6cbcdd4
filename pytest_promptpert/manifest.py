"""The manifest: each test's model calls in the last run, so the next run can start them early.

``<cache_dir>/manifest.json`` holds, for each test (node id without the variant) and each of its
items (variants), the calls the item made through ``llm``, as the test asked for them: the
messages sent, the test's own parameters and the sample index. Never the parameters the run
added (model, ``api_base``, temperature, ...): a later run rebuilds each call with its own
settings, so a model upgrade maps request for request. A call whose parameters or text hold a
credential is not recorded at all.

No pytest here: the plugin feeds in what the items asked for and says what went wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .redact import Secrets, public_params
from .request import PromptError, Request

MANIFEST_NAME = "manifest.json"
FORMAT = "pytest-promptpert manifest"
VERSION = 1

#: one call as the test asked for it: ``{"messages": [...], "params": {...}, "sample": 0}``
CallSpec = dict[str, Any]
#: test id -> variant -> the calls that item made, in the order it made them
Entries = dict[str, dict[str, list[CallSpec]]]


class CallLog:
    """The calls this process's items made (for the manifest) and every key they asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: off when no manifest is kept (prefetch off, a cache mode that writes nothing)
        self.enabled = True
        self.entries: Entries = {}
        #: the key of every request an item fetched, recordable or not
        self.asked: set[str] = set()

    def add(
        self,
        test: str,
        variant: str,
        requests: Sequence[Request],
        params: Mapping[str, Any],
        secrets: Secrets,
    ) -> None:
        """Record *requests*, made by the item *variant* of *test* with the test's *params*."""
        if not self.enabled:
            return
        specs = [spec for r in requests if (spec := _spec(r, params, secrets)) is not None]
        keys = [r.key() for r in requests]
        with self._lock:
            self.asked.update(keys)
            calls = self.entries.setdefault(test, {}).setdefault(variant, [])
            calls += [spec for spec in specs if spec not in calls]


def _spec(request: Request, params: Mapping[str, Any], secrets: Secrets) -> CallSpec | None:
    """*request* as a JSON-safe call spec, or None when it cannot be stored or rebuilt.

    Parameters holding a credential (``api_key``, a URL with ``user:pass@``) are not stored,
    and a call rebuilt without them would not be the same call: such a call is left out.
    """
    if public_params(params) != dict(params):
        return None
    spec = {"messages": request.messages, "params": dict(params), "sample": request.sample}
    try:
        text = json.dumps(spec, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return None  # a parameter that is not JSON (a pydantic class, a callable)
    if secrets.found_in(text):
        return None
    copy: CallSpec = json.loads(text)
    return copy if copy == spec else None  # tuples would come back as lists: another call


def merge(old: Entries, new: Entries, *, complete: bool) -> Entries:
    """The manifest after a run that recorded *new*.

    A *complete* run (nothing deselected, not stopped early) ran every test there is: its
    entries replace the old ones, so tests that were removed or renamed drop out. Otherwise
    each item that ran replaces its own entry and everything else is kept.
    """
    merged: Entries = {} if complete else {test: dict(items) for test, items in old.items()}
    for test, items in new.items():
        merged.setdefault(test, {}).update(items)
    return merged


def dumps(entries: Entries) -> str:
    """The manifest's text: each test's distinct calls once, each item as indexes into them."""
    tests: dict[str, Any] = {}
    for test in sorted(entries):
        calls: list[CallSpec] = []
        index: dict[str, int] = {}
        items: dict[str, list[int]] = {}
        for variant in sorted(entries[test]):
            ids = []
            for spec in entries[test][variant]:
                canonical = json.dumps(spec, sort_keys=True, ensure_ascii=False)
                if canonical not in index:
                    index[canonical] = len(calls)
                    calls.append(spec)
                ids.append(index[canonical])
            items[variant] = ids
        tests[test] = {"calls": calls, "items": items}
    data = {"format": FORMAT, "version": VERSION, "tests": tests}
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def loads(text: str) -> Entries:
    """The entries of a manifest's text; ValueError saying what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("is not a pytest-promptpert manifest")
    if data.get("version") != VERSION:
        raise ValueError(f"has version {data.get('version')!r}, which this version cannot read")
    tests = data.get("tests")
    if not isinstance(tests, dict):
        raise ValueError("is damaged (no 'tests' table)")
    entries: Entries = {}
    for test, entry in tests.items():
        try:
            entries[str(test)] = _entry(entry)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"is damaged (the entry of {test!r}: {exc!r:.200})") from None
    return entries


def _entry(entry: Any) -> dict[str, list[CallSpec]]:
    calls = entry["calls"]
    if not isinstance(calls, list):
        raise TypeError("'calls' is not a list")
    for spec in calls:
        if not isinstance(spec["messages"], list) or not all(
            isinstance(m, dict) for m in spec["messages"]
        ):
            raise TypeError("'messages' is not a list of messages")
        if not isinstance(spec["params"], dict):
            raise TypeError("'params' is not a table")
        sample = spec["sample"]
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
            raise ValueError(f"sample {sample!r} is not a whole number >= 0")
    items: dict[str, list[CallSpec]] = {}
    for variant, ids in entry["items"].items():
        if not isinstance(ids, list) or not all(type(i) is int and i >= 0 for i in ids):
            raise TypeError(f"the calls of item {variant!r} are not indexes")
        items[str(variant)] = [calls[i] for i in ids]
    return items


def load(path: Path) -> tuple[Entries, str | None]:
    """The manifest at *path*, or none and why (None: there is no manifest yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        return {}, f"cannot be read ({exc})"
    try:
        return loads(text), None
    except ValueError as exc:
        return {}, str(exc)


def write(path: Path, entries: Entries) -> bool:
    """Write the manifest atomically (a reader sees the old file or the new one, never half).

    False when there was nothing new to write. OSError when it cannot be written.
    """
    text = dumps(entries)
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if path.read_text(encoding="utf-8") == text:
            return False
    fd, temporary = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True


def requests_for(
    entries: Entries,
    items: Iterable[tuple[str, str]],
    build: Callable[[CallSpec], Request],
) -> list[Request]:
    """The distinct requests the *items* (test, variant) made last time, rebuilt by *build*.

    In the items' order, so that the first tests' answers come first. A call that no longer
    builds (a message this version rejects) is left out: its test will say why.
    """
    requests: list[Request] = []
    seen: set[str] = set()
    for test, variant in items:
        for spec in entries.get(test, {}).get(variant, ()):
            try:
                request = build(spec)
            except (PromptError, TypeError, ValueError):
                continue
            key = request.key()
            if key not in seen:
                seen.add(key)
                requests.append(request)
    return requests
