"""Comparing structured answers — tool calls and JSON values — and saying what differs.

Everything here works on plain JSON values (dicts, lists, str, numbers, bool, None) and plain
tool-call dicts ``{"name": ..., "arguments": ...}`` (arguments a JSON string or already parsed),
so that any caller — the ``llm`` fixture, intercepted SDK calls — can use it. Key order never
matters; list order does.

Two questions, two functions per shape:

- :func:`diff_structured` / :func:`diff_tool_calls`: what differs, exactly, as readable lines
  (``$.priority: "high" vs "low"``, ``tool 'refund' vs 'escalate'``);
- :func:`structured_similarity` / :func:`tool_calls_similarity`: a similarity in [0, 1] — the
  least similar leaf, where numbers, bools, null and strings must be equal unless both strings
  are free text (have whitespace inside), which the text metric scores — with the differences
  that lowered it.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: (original text, variant text) -> similarity in [0, 1], for free-text leaves
TextScore = Callable[[str, str], float]

_MISSING = object()
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class StructuredResult:
    score: float
    differences: tuple[str, ...]


def show(value: Any, limit: int = 60) -> str:
    """A value as it is written in a difference line: JSON, trimmed."""
    if value is _MISSING:
        return "(missing)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _child(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    name = str(key)
    return f"{path}.{name}" if _IDENTIFIER.fullmatch(name) else f"{path}[{json.dumps(name)}]"


def _leaves(a: Any, b: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(path, original, variant) for every place the two differ in shape or hold leaves."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            yield from _leaves(a.get(key, _MISSING), b.get(key, _MISSING), _child(path, key))
        if not a and not b:
            yield path, a, b
    elif _is_list(a) and _is_list(b):
        for i in range(max(len(a), len(b))):
            yield from _leaves(
                a[i] if i < len(a) else _MISSING, b[i] if i < len(b) else _MISSING, _child(path, i)
            )
        if not a and not b:
            yield path, a, b
    else:
        yield path, a, b


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _equal(a: Any, b: Any) -> bool:
    # True == 1 in Python; in JSON a bool and a number are different answers.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0) or a == b
    return bool(a == b) if a is not _MISSING and b is not _MISSING else a is b


def diff_structured(original: Any, variant: Any, path: str = "$") -> list[str]:
    """Every difference between two JSON values, one line each: ``$.a[0].b: 1 vs 2``."""
    return [
        f"{p}: {show(a)} vs {show(b)}"
        for p, a, b in _leaves(original, variant, path)
        if not _equal(a, b)
    ]


def _free_text(a: Any, b: Any) -> bool:
    # Both sides sentences: "positive" vs "not positive" is a changed label, not a rewording.
    return all(isinstance(x, str) and any(c.isspace() for c in x.strip()) for x in (a, b))


def structured_similarity(
    original: Any, variant: Any, text_score: TextScore, path: str = "$"
) -> StructuredResult:
    """The least similar leaf's similarity, and the differences (see the module docstring)."""
    score = 1.0
    differences: list[str] = []
    for p, a, b in _leaves(original, variant, path):
        if _equal(a, b):
            continue
        if _free_text(a, b):
            leaf = text_score(a, b)
            differences.append(f"{p}: {show(a)} vs {show(b)} (similarity {leaf:.2f})")
        else:
            leaf = 0.0
            differences.append(f"{p}: {show(a)} vs {show(b)}")
        score = min(score, leaf)
    return StructuredResult(score, tuple(differences))


# --- tool calls ---------------------------------------------------------------------------


def normalise_tool_call(call: Mapping[str, Any]) -> tuple[str, Any]:
    """(name, arguments) of an OpenAI-shaped or flat tool call, arguments parsed if JSON."""
    function = call.get("function")
    source = function if isinstance(function, Mapping) else call
    name = str(source.get("name", ""))
    arguments = source.get("arguments", source.get("input", {}))
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # else compared as the raw string it is
            arguments = json.loads(arguments) if arguments.strip() else {}
    return name, arguments


def tool_calls_similarity(
    original: Sequence[Mapping[str, Any]],
    variant: Sequence[Mapping[str, Any]],
    text_score: TextScore,
) -> StructuredResult:
    """0.0 when the tools chosen differ (or their number); else the arguments' similarity."""
    a = [normalise_tool_call(c) for c in original]
    b = [normalise_tool_call(c) for c in variant]
    names_a, names_b = [n for n, _ in a], [n for n, _ in b]
    if names_a != names_b:
        if len(a) == len(b) == 1:
            return StructuredResult(0.0, (f"tool {names_a[0]!r} vs {names_b[0]!r}",))
        return StructuredResult(
            0.0, (f"tools {names_a} vs {names_b}" if a or b else "no tool calls",)
        )
    score = 1.0
    differences: list[str] = []
    for i, ((name, args_a), (_, args_b)) in enumerate(zip(a, b, strict=True)):
        label = name if len(a) == 1 else f"{name} (call {i + 1})"
        result = structured_similarity(args_a, args_b, text_score)
        score = min(score, result.score)
        differences += [f"{label}: {line}" for line in result.differences]
    return StructuredResult(score, tuple(differences))


def diff_tool_calls(
    original: Sequence[Mapping[str, Any]], variant: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Every difference in the tools chosen and their arguments, exactly."""
    result = tool_calls_similarity(original, variant, lambda x, y: 0.0)
    return [line.removesuffix(" (similarity 0.00)") for line in result.differences]
