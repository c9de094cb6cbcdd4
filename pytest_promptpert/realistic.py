"""The variants people really type: copy-paste Unicode, one typo, answer-cue formatting.

Pure ``str -> str`` functions like those in :mod:`variants`; each never raises and returns its
input unchanged where it has nothing to change. The typo variants pick their position from a
SHA-256 of the text (never Python's salted ``hash``), so a prompt always gets the same typo and
the variant's cache key is stable across runs and machines.
"""

# The look-alike characters are the point of this module.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import hashlib
import re
import unicodedata

# --- unicode: what copy-paste from documents and phones does -------------------------------

_OPENING_CONTEXT = frozenset("([{<«‹“‘—–-/")


def _opens(text: str, i: int) -> bool:
    """Whether a quote at *i* opens (start, after whitespace or an opening bracket)."""
    return i == 0 or text[i - 1].isspace() or text[i - 1] in _OPENING_CONTEXT


def curly_quotes(text: str) -> str:
    """Straight quotes become typographic ones: "x" -> “x”, 'x' -> ‘x’, don't -> don’t."""
    out = []
    for i, ch in enumerate(text):
        if ch == '"':
            out.append("“" if _opens(text, i) else "”")
        elif ch == "'":
            out.append("‘" if _opens(text, i) else "’")
        else:
            out.append(ch)
    return "".join(out)


_INNER_SPACE = re.compile(r"(?<=\S) (?=\S)")


def nbsp(text: str) -> str:
    """Every space between two words becomes a no-break space (U+00A0)."""
    return _INNER_SPACE.sub("\u00a0", text)


ZERO_WIDTH_SPACE = "\u200b"
_FIRST_WORD = re.compile(r"\S+")


def zero_width_space(text: str) -> str:
    """One zero-width space (U+200B) after the first word."""
    match = _FIRST_WORD.search(text)
    if match is None:
        return text
    return text[: match.end()] + ZERO_WIDTH_SPACE + text[match.end() :]


# ASCII sentence punctuation -> its full-width form (U+FF01..), as CJK input methods type it.
FULLWIDTH = {ch: chr(ord(ch) + 0xFEE0) for ch in "!(),.:;?"}
_FULLWIDTH_TABLE = str.maketrans(FULLWIDTH)


def fullwidth_punctuation(text: str) -> str:
    """``! ( ) , . : ; ?`` become ``！ （ ） ， ． ： ； ？``."""
    return text.translate(_FULLWIDTH_TABLE)


_THREE_DOTS = re.compile(r"(?<!\.)\.\.\.(?!\.)")


def ellipsis(text: str) -> str:
    """Each run of exactly three dots becomes one ellipsis character ``…``."""
    return _THREE_DOTS.sub("…", text)


# --- typo: one slip of the fingers, the same one every time --------------------------------

_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    out: dict[str, str] = {}
    for r, row in enumerate(_QWERTY_ROWS):
        for c, key in enumerate(row):
            near = [row[c - 1]] if c > 0 else []
            near += [row[c + 1]] if c + 1 < len(row) else []
            for other in (r - 1, r + 1):
                if 0 <= other < len(_QWERTY_ROWS):
                    near += [k for k in _QWERTY_ROWS[other][max(c - 1, 0) : c + 1]]
            out[key] = "".join(sorted(set(near)))
    return out


KEYBOARD_NEIGHBOURS = _neighbours()


def _seed(text: str, salt: str) -> int:
    digest = hashlib.sha256(f"{salt}\0{text}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _bare(text: str, i: int) -> bool:
    """No combining mark follows *i*: moving or deleting ``text[i]`` strands no accent."""
    return i + 1 >= len(text) or not unicodedata.category(text[i + 1]).startswith("M")


def _in_word(text: str, i: int) -> bool:
    """*i* is a letter with a letter on at least one side (so never a one-letter word)."""
    left = i > 0 and _is_letter(text[i - 1])
    right = i + 1 < len(text) and _is_letter(text[i + 1])
    return _is_letter(text[i]) and (left or right)


def keyboard_typo(text: str) -> str:
    """One ASCII letter inside a word replaced by a neighbouring key on a QWERTY keyboard."""
    spots = [
        i
        for i, ch in enumerate(text)
        if ch.isascii()
        and ch.lower() in KEYBOARD_NEIGHBOURS
        and _in_word(text, i)
        and _bare(text, i)
    ]
    if not spots:
        return text
    seed = _seed(text, "keyboard_typo")
    i = spots[seed % len(spots)]
    near = KEYBOARD_NEIGHBOURS[text[i].lower()]
    typo = near[(seed >> 32) % len(near)]
    return text[:i] + (typo.upper() if text[i].isupper() else typo) + text[i + 1 :]


def swap_letters(text: str) -> str:
    """Two different adjacent letters of one word swapped: ``the`` -> ``teh``."""
    spots = [
        i
        for i in range(len(text) - 1)
        if _is_letter(text[i])
        and _is_letter(text[i + 1])
        and text[i] != text[i + 1]
        and _bare(text, i + 1)
    ]
    if not spots:
        return text
    i = spots[_seed(text, "swap_letters") % len(spots)]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def drop_letter(text: str) -> str:
    """One letter of a word of two or more letters left out: ``answer`` -> ``answr``."""
    spots = [i for i in range(len(text)) if _in_word(text, i) and _bare(text, i)]
    if not spots:
        return text
    i = spots[_seed(text, "drop_letter") % len(spots)]
    return text[:i] + text[i + 1 :]


# --- format: FormatSpread-style changes around answer cues and field separators ------------

#: A field label ("Answer", "Question", "Q") that starts the text, a line or follows whitespace,
#: its colon, and the spaces or tabs after the colon. "10:30" and "http://" are not cues.
ANSWER_CUE = re.compile(
    r"(?:^|(?<=\s))(?P<label>[^\W\d_]+)(?P<before>[ \t]*):(?!//)(?P<after>[ \t]*)", re.MULTILINE
)


def space_before_colon(text: str) -> str:
    """``Answer:`` -> ``Answer :`` for every cue written without that space."""
    return ANSWER_CUE.sub(
        lambda m: m.group(0) if m["before"] else f"{m['label']} :{m['after']}", text
    )


def lower_cue(text: str) -> str:
    """``Answer:`` -> ``answer:``: every cue's label in lower case."""
    return ANSWER_CUE.sub(lambda m: m["label"].lower() + m.group(0)[len(m["label"]) :], text)


def newline_after_cue(text: str) -> str:
    """``Answer: 4`` -> ``Answer:\\n4`` and a final ``Answer:`` -> ``Answer:\\n``."""

    def sub(m: re.Match[str]) -> str:
        rest = text[m.end() :]
        if rest.startswith(("\n", "\r")):
            return m.group(0)
        return f"{m['label']}{m['before']}:\n"

    return ANSWER_CUE.sub(sub, text)


def no_space_after_colon(text: str) -> str:
    """``Answer: 4`` -> ``Answer:4``: the spaces after a cue's colon removed before its value."""

    def sub(m: re.Match[str]) -> str:
        rest = text[m.end() :]
        if not m["after"] or not rest or rest[0].isspace():
            return m.group(0)
        return f"{m['label']}{m['before']}:"

    return ANSWER_CUE.sub(sub, text)
