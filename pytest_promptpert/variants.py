"""Prompt variants: small, pure text transformations a person would not notice.

Every variant is a function ``str -> str`` that never raises. A variant that returns its input
unchanged is a *no-op* for that text; the plugin reports such items as skipped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from . import realistic

VariantFunc = Callable[[str], str]

ORIGINAL = "original"
#: The variant that changes nothing and asks again under another sample index: its failures are
#: the provider's own nondeterminism, not the prompt's fragility.
CONTROL = "control"

# A sentence's terminal punctuation, ASCII and the full-width/ideographic forms used in CJK text.
TERMINAL_PUNCTUATION = frozenset(".!?…。！？｡．")  # noqa: RUF001
_CASED_CATEGORIES = frozenset({"Lu", "Ll", "Lt"})


@dataclass(frozen=True)
class Variant:
    """A named transformation and the family it belongs to."""

    name: str
    func: VariantFunc
    family: str = "custom"
    description: str = ""

    def __call__(self, text: str) -> str:
        # Custom variants are the user's code: what goes wrong is an error of the item, named.
        try:
            out = self.func(text)
        except Exception as exc:
            raise VariantError(f"variant {self.name!r} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, str):
            raise VariantError(
                f"variant {self.name!r} returned {type(out).__name__}, not a str: {out!r:.80}"
            )
        return out


class VariantError(Exception):
    """A variant that raised or returned something other than text: an error of its item."""


def _split_trailing_ws(text: str) -> tuple[str, str]:
    core = text.rstrip()
    return core, text[len(core) :]


def _terminal_run_start(core: str) -> int:
    i = len(core)
    while i > 0 and core[i - 1] in TERMINAL_PUNCTUATION:
        i -= 1
    return i


def _replace_terminal(text: str, mark: str) -> str:
    core, tail = _split_trailing_ws(text)
    if not core:
        return text
    return core[: _terminal_run_start(core)] + mark + tail


def add_period(text: str) -> str:
    core, tail = _split_trailing_ws(text)
    if not core or core[-1] in TERMINAL_PUNCTUATION:
        return text
    return core + "." + tail


def strip_period(text: str) -> str:
    core, tail = _split_trailing_ws(text)
    # Whitespace before or inside the run goes with it ("Vraiment ?" -> "Vraiment"): left in
    # place it would become trailing whitespace, a different perturbation.
    end = len(core)
    while end > 0 and (core[end - 1] in TERMINAL_PUNCTUATION or core[end - 1].isspace()):
        end -= 1
    return core[:end] + tail


def question_mark(text: str) -> str:
    return _replace_terminal(text, "?")


def exclamation(text: str) -> str:
    return _replace_terminal(text, "!")


def strip_punctuation(text: str) -> str:
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))


def _is_cased(ch: str) -> bool:
    return unicodedata.category(ch) in _CASED_CATEGORIES


def _first_cased_index(text: str) -> int:
    for i, ch in enumerate(text):
        if _is_cased(ch):
            return i
    return -1


def _map_first_cased(text: str, convert: VariantFunc) -> str:
    i = _first_cased_index(text)
    if i < 0:
        return text
    return text[:i] + convert(text[i]) + text[i + 1 :]


def lower_first(text: str) -> str:
    return _map_first_cased(text, str.lower)


def upper_first(text: str) -> str:
    # Title case is the right "capital" for a single letter: "ß" -> "Ss", "ǆ" -> "ǅ".
    return _map_first_cased(text, lambda ch: ch if ch.isupper() else ch.title())


def lowercase(text: str) -> str:
    return text.lower()


def uppercase(text: str) -> str:
    return text.upper()


_WORD = re.compile(r"\S+")


def _title_word(match: re.Match[str]) -> str:
    word = match.group(0)
    i = _first_cased_index(word)
    if i < 0:
        return word
    return word[:i] + upper_first(word[i]) + word[i + 1 :].lower()


def title(text: str) -> str:
    # Unlike str.title(), a word starts only after whitespace: "don't" -> "Don't", not "Don'T".
    return _WORD.sub(_title_word, text)


def trailing_space(text: str) -> str:
    return text + " "


def trailing_newline(text: str) -> str:
    return text + "\n"


def leading_space(text: str) -> str:
    return " " + text


_SINGLE_SPACE = re.compile(r"(?<=\S) (?=\S)")


def double_space(text: str) -> str:
    return _SINGLE_SPACE.sub("  ", text)


def unchanged(text: str) -> str:
    # The control's text: the session asks again under another sample index instead.
    return text


BUILTIN_VARIANTS: tuple[Variant, ...] = (
    Variant("add_period", add_period, "punctuation", "append '.' unless already terminated"),
    Variant("strip_period", strip_period, "punctuation", "remove the terminal . ! ? … run"),
    Variant("question_mark", question_mark, "punctuation", "end with '?'"),
    Variant("exclamation", exclamation, "punctuation", "end with '!'"),
    Variant("strip_punctuation", strip_punctuation, "punctuation", "remove all punctuation"),
    Variant("lower_first", lower_first, "casing", "lower-case the first cased letter"),
    Variant("upper_first", upper_first, "casing", "capitalise the first cased letter"),
    Variant("lowercase", lowercase, "casing", "lower-case everything"),
    Variant("uppercase", uppercase, "casing", "ALL CAPS"),
    Variant("title", title, "casing", "Title Case Every Word"),
    Variant("trailing_space", trailing_space, "whitespace", "append a space"),
    Variant("trailing_newline", trailing_newline, "whitespace", "append a newline"),
    Variant("leading_space", leading_space, "whitespace", "prepend a space"),
    Variant("double_space", double_space, "whitespace", "double every single space"),
    Variant(
        CONTROL, unchanged, CONTROL, "the unchanged prompt asked again (provider nondeterminism)"
    ),
    Variant("curly_quotes", realistic.curly_quotes, "unicode", "straight quotes to “ ” ‘ ’"),  # noqa: RUF001
    Variant("nbsp", realistic.nbsp, "unicode", "spaces between words to no-break spaces"),
    Variant(
        "zero_width_space", realistic.zero_width_space, "unicode", "a U+200B after the 1st word"
    ),
    Variant(
        "fullwidth_punctuation",
        realistic.fullwidth_punctuation,
        "unicode",
        "! ( ) , . : ; ? to their full-width forms",
    ),
    Variant("ellipsis", realistic.ellipsis, "unicode", "'...' to '…'"),
    Variant("keyboard_typo", realistic.keyboard_typo, "typo", "one letter to a QWERTY neighbour"),
    Variant("swap_letters", realistic.swap_letters, "typo", "two adjacent letters swapped"),
    Variant("drop_letter", realistic.drop_letter, "typo", "one letter of a word left out"),
    Variant(
        "space_before_colon", realistic.space_before_colon, "format", "'Answer:' to 'Answer :'"
    ),
    Variant("lower_cue", realistic.lower_cue, "format", "'Answer:' to 'answer:'"),
    Variant(
        "newline_after_cue", realistic.newline_after_cue, "format", "'Answer: x' to 'Answer:\\nx'"
    ),
    Variant(
        "no_space_after_colon",
        realistic.no_space_after_colon,
        "format",
        "'Answer: x' to 'Answer:x'",
    ),
)


class UnknownVariantError(ValueError):
    """A variant or family name that the catalog does not know."""


@dataclass(frozen=True)
class Composed:
    """``a+b``: the variants applied left to right."""

    name: str
    parts: tuple[Variant, ...]

    def __call__(self, text: str) -> str:
        for part in self.parts:
            text = part(text)
        return text


class VariantCatalog:
    """Variants by name, grouped into families, with ``a+b`` composition."""

    def __init__(self, variants: Iterable[Variant] = BUILTIN_VARIANTS) -> None:
        self._variants: dict[str, Variant] = {}
        for variant in variants:
            self.add(variant)

    def add(self, variant: Variant) -> None:
        if not (variant.name.isidentifier() and variant.name.isascii()):
            # pytest escapes non-ASCII ids, which would break -k and the test/variant split.
            raise ValueError(f"variant name {variant.name!r} must be an ASCII identifier")
        if variant.name in self._variants or variant.name == ORIGINAL:
            raise ValueError(f"variant name {variant.name!r} is already defined")
        if variant.name in self.families():
            raise ValueError(f"variant name {variant.name!r} is already a family name")
        # A family named like another variant would shadow that variant in expand(); a family
        # of one named after its only member (``control``) expands to just that member.
        if variant.family in self._variants or variant.family == ORIGINAL:
            raise ValueError(
                f"variant {variant.name!r}: family {variant.family!r} is already a variant name"
            )
        if not callable(variant.func):
            raise ValueError(f"variant {variant.name!r} is not callable: {variant.func!r}")
        self._variants[variant.name] = variant

    def add_mapping(self, mapping: Mapping[str, VariantFunc | Variant]) -> None:
        for name, func in mapping.items():
            self.add(func if isinstance(func, Variant) else Variant(name, func))

    def families(self) -> dict[str, tuple[str, ...]]:
        fams: dict[str, list[str]] = {}
        for v in self._variants.values():
            fams.setdefault(v.family, []).append(v.name)
        return {k: tuple(v) for k, v in fams.items()}

    def names(self) -> tuple[str, ...]:
        return tuple(self._variants)

    def get(self, name: str) -> Variant | Composed:
        parts = name.split("+")
        unknown = [p for p in parts if p not in self._variants]
        if unknown:
            raise UnknownVariantError(
                f"unknown variant {unknown[0]!r}"
                + (f" in {name!r}" if len(parts) > 1 else "")
                + f" (known variants: {', '.join(self._variants)};"
                f" families: {', '.join(self.families())})"
            )
        if len(parts) == 1:
            return self._variants[name]
        if CONTROL in parts:
            raise UnknownVariantError(
                f"{name!r}: {CONTROL!r} asks the unchanged prompt again and cannot be composed"
            )
        return Composed(name, tuple(self._variants[p] for p in parts))

    def expand(self, names: Iterable[str]) -> tuple[str, ...]:
        """Family names become their members; duplicates go; every name is checked."""
        families = self.families()
        out: list[str] = []
        for name in names:
            members = families.get(name, (name,))
            for member in members:
                self.get(member)
                if member not in out:
                    out.append(member)
        return tuple(out)

    def apply(self, name: str, text: str) -> str:
        if name == ORIGINAL:
            return text
        return self.get(name)(text)
