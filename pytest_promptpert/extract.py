"""Answer extraction: what the metric compares instead of the whole output.

An ``extract`` spec is one of

- a built-in extractor name: ``first_line``, ``first_word``, ``number``, ``choice``, ``yes_no``;
- ``json:<dotted.path>`` (``json:label``, ``json:items.0.name``; ``json:`` alone is the whole
  document), for outputs that are JSON (code fences and text around the value are tolerated);
- a regular expression: its first group where it has one and it took part, else the whole match;
- a callable ``(output) -> str`` (``None`` meaning "nothing to extract").

An output from which nothing can be extracted is not an error: it is a behaviour of its own
("no match"), which the comparison reports as such.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


class ExtractSpecError(ValueError):
    """An ``extract`` value that is not a known extractor, a valid regex or a JSON path."""


class ExtractCallableError(RuntimeError):
    """A user's extract callable raised or returned something other than a str or None."""


@dataclass(frozen=True)
class Extracted:
    """What one output gave: ``value``, or None and ``why`` (e.g. "is not JSON")."""

    value: str | None
    why: str = ""


@dataclass(frozen=True)
class Extractor:
    """A parsed ``extract`` spec; calling it on an output gives an :class:`Extracted`."""

    spec: str  # how it is shown: the spec as written, or the callable's name
    func: Callable[[str], Extracted]

    def __call__(self, output: str) -> Extracted:
        return self.func(output)


# --- built-ins ----------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_](?:[\w'\u2019-]*[^\W_])?")
_NUMBER = re.compile(
    r"(?<![\w.])[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])"
    r"|(?<![\w.])[-+\u2212]?\.\d+(?![\w])"
)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
# A choice letter A-H (not I: the pronoun), in the forms answers take, most explicit first.
_CUE = r"\b(?i:answer|option|choice)\s*(?i:is|:|=|-)?\s*"
_CHOICE_PATTERNS = (
    # "Answer: B", "the answer is (C)", "Option D"; a lower-case letter only when delimited
    # ("answer: b)", "answer is (c)"), since "the answer is a ..." is an article.
    re.compile(_CUE + r"[(\[]?([A-H])\b(?![\u2019'\w])"),
    re.compile(_CUE + r"(?:[(\[]([a-h])[)\]]|([a-h])(?:[).:]|\s*$))"),
    # "B", "B)", "(B) Paris", "B. Paris", "B: Paris" at the start of the output
    re.compile(r"^\s*[(\[]?([A-H])(?:[)\].:]|\s*$)"),
    re.compile(r"^\s*[(\[]?([a-h])[)\]]"),
    # "(B)" or "[B]" anywhere
    re.compile(r"[(\[]([A-H])[)\]]"),
)


def _first_line(output: str) -> Extracted:
    for line in output.splitlines():
        if line.strip():
            return Extracted(line.strip())
    return Extracted(None, "has no non-empty line")


def _first_word(output: str) -> Extracted:
    match = _WORD.search(output)
    return Extracted(match.group(0)) if match else Extracted(None, "has no word")


def _number(output: str) -> Extracted:
    match = _NUMBER.search(output)
    if not match:
        return Extracted(None, "has no number")
    text = match.group(0).replace(",", "").replace("\u2212", "-").lstrip("+")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern only matches decimals
        return Extracted(text)
    # 3.50 and 3.5, 1,000 and 1000, 1e3 and 1000 are the same answer.
    normal = format(value.normalize(), "f")
    return Extracted("0" if normal in ("-0", "+0") else normal)


def _choice(output: str) -> Extracted:
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(output)
        if match:
            letter = next(group for group in match.groups() if group)
            return Extracted(letter.upper())
    return Extracted(None, "has no choice letter (A-H)")


def _yes_no(output: str) -> Extracted:
    match = _YES_NO.search(output)
    return Extracted(match.group(1).lower()) if match else Extracted(None, "has no yes or no")


BUILTIN_EXTRACTORS: dict[str, Callable[[str], Extracted]] = {
    "first_line": _first_line,
    "first_word": _first_word,
    "number": _number,
    "choice": _choice,
    "yes_no": _yes_no,
}


# --- JSON paths ---------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def parse_json_output(output: str) -> tuple[bool, Any]:
    """(True, value) for an output that is JSON, else (False, None).

    Tolerates what models wrap JSON in: a Markdown code fence, or text before the first
    ``{`` / ``[`` and after the value's end.
    """
    text = output.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return True, json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char in "{[":
            try:
                value, _ = decoder.raw_decode(text, start)
            except ValueError:
                continue
            return True, value
    return False, None


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: keys sorted, no spaces, Unicode kept."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _json_path(spec: str) -> Callable[[str], Extracted]:
    path = spec[len("json:") :].strip()
    if path.startswith("$"):
        path = path[1:].lstrip(".")
    steps = path.split(".") if path else []
    if any(not step.strip() for step in steps):
        raise ExtractSpecError(f"{spec!r} has an empty step in its JSON path")

    def extract(output: str) -> Extracted:
        ok, value = parse_json_output(output)
        if not ok:
            return Extracted(None, "is not JSON")
        where = "$"
        for step in steps:
            if isinstance(value, dict) and step in value:
                value = value[step]
            elif isinstance(value, list) and re.fullmatch(r"-?\d+", step):
                index = int(step)
                if not -len(value) <= index < len(value):
                    return Extracted(None, f"has no item {index} in {where} (length {len(value)})")
                value = value[index]
            else:
                kind = type(value).__name__ if not isinstance(value, dict) else "object"
                return Extracted(None, f"has no {step!r} in {where} ({kind})")
            where += f".{step}"
        return Extracted(value if isinstance(value, str) else canonical_json(value))

    return extract


# --- regular expressions and callables ----------------------------------------------------


def _regex(spec: str) -> Callable[[str], Extracted]:
    try:
        pattern = re.compile(spec)
    except re.error as exc:
        raise ExtractSpecError(f"{spec!r} is not a valid regular expression: {exc}") from None

    def extract(output: str) -> Extracted:
        match = pattern.search(output)
        if match is None:
            return Extracted(None, f"has no match for {spec!r}")
        if pattern.groups and match.group(1) is not None:
            return Extracted(match.group(1))
        return Extracted(match.group(0))

    return extract


def _from_callable(func: Callable[[str], Any], name: str) -> Callable[[str], Extracted]:
    def extract(output: str) -> Extracted:
        try:
            value = func(output)
        except Exception as exc:
            raise ExtractCallableError(
                f"extract callable {name} raised {type(exc).__name__}: {exc}"
                f" on the output {output!r:.200}"
            ) from exc
        if value is None:
            return Extracted(None, "gave nothing (None)")
        if not isinstance(value, str):
            raise ExtractCallableError(
                f"extract callable {name} returned {value!r:.80} ({type(value).__name__}),"
                " not a str (or None for nothing to extract)"
            )
        return Extracted(value)

    return extract


def _naming(spec: str, func: Callable[[str], Extracted]) -> Callable[[str], Extracted]:
    """*func* whose reasons for extracting nothing name the extractor."""

    def extract(output: str) -> Extracted:
        got = func(output)
        return got if got.value is not None else Extracted(None, f"{got.why} (extract {spec!r})")

    return extract


def parse_extract(spec: object) -> Extractor | None:
    """An :class:`Extractor` for *spec* (None for None); :class:`ExtractSpecError` if bad."""
    if spec is None:
        return None
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or getattr(spec, "__name__", None)
        shown = name if isinstance(name, str) else repr(spec)
        return Extractor(shown, _naming(shown, _from_callable(spec, shown)))
    if not isinstance(spec, str) or not spec.strip():
        raise ExtractSpecError(
            f"{spec!r} is not an extractor: give a regular expression, json:<path>,"
            f" one of {', '.join(BUILTIN_EXTRACTORS)}, or a callable"
        )
    if spec in BUILTIN_EXTRACTORS:
        return Extractor(spec, _naming(spec, BUILTIN_EXTRACTORS[spec]))
    if spec.startswith("json:"):
        return Extractor(spec, _naming(spec, _json_path(spec)))
    if re.fullmatch(r"[A-Za-z_]\w*", spec):
        # A bare name is almost surely a mistyped extractor; as a regex it would only ever
        # extract itself.
        raise ExtractSpecError(
            f"{spec!r} is not a known extractor (built-in: {', '.join(BUILTIN_EXTRACTORS)});"
            f" to match it literally as a regular expression, write '({spec})'"
        )
    return Extractor(spec, _regex(spec))
