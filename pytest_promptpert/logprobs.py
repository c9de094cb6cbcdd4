"""Log-probabilities: what a provider returned, and how far a variant moved the original's answer.

A variant can shift a model a long way without flipping its greedy answer. To see that, each
compared prompt is asked once more as a *probe*: the same call with ``max_tokens`` set to
:data:`ANSWER_TOKENS` and the provider's log-probabilities asked for (:data:`TOP_LOGPROBS`
alternatives per token). Probes are cached like any call; their log-probabilities are stored
with the completion. Where the provider returns none, there is nothing to report, and nothing
is made up.

The *shift* of a variant is ``log P(t | variant prompt) - log P(t | original prompt)`` for ``t``
the original's first answer tokens (up to :data:`ANSWER_TOKENS`, whitespace tokens included:
the later tokens' log-probabilities are conditional on them). A provider gives log-probabilities
only along the path it generated, so under the variant prompt the original's token at position
*i* is known only while the variant's own answer has followed the original's up to *i*, and
only if it is among the variant's top alternatives there. Where it is not, the lowest of those
alternatives is an upper bound of its log-probability, and the shift is a bound (``<=``).
Tokens are matched by their text.

Nothing here imports pytest or calls a model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The alternatives asked for per token. llama-cpp-python sorts the whole vocabulary (262k
#: tokens for Gemma 3) in Python for every token it returns log-probabilities for, so a probe
#: stays short.
TOP_LOGPROBS = 5
#: How many of the original's first answer tokens the shift covers.
ANSWER_TOKENS = 3


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, its log-probability, and the best alternatives there."""

    token: str
    logprob: float
    #: (token, log-probability) of the provider's best alternatives, best first
    top: tuple[tuple[str, float], ...] = ()

    def of(self, token: str) -> float | None:
        """*token*'s log-probability at this position, if the provider gave it."""
        if token == self.token:
            return self.logprob
        return next((lp for t, lp in self.top if t == token), None)

    def as_json(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob, "top": [list(t) for t in self.top]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenLogprob:
        top = tuple((str(t), float(lp)) for t, lp in data.get("top") or ())
        return cls(str(data["token"]), float(data["logprob"]), top)


Logprobs = tuple[TokenLogprob, ...]


def _get(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _ranked(pairs: Iterable[tuple[Any, Any]]) -> tuple[tuple[str, float], ...]:
    kept = [(str(t), n) for t, v in pairs if (n := _number(v)) is not None]
    return tuple(sorted(kept, key=lambda pair: -pair[1]))


def parse_choice(choice: Any) -> Logprobs | None:
    """The log-probabilities of a completion's choice, chat or legacy text form: None where
    the provider sent none, ``()`` for an answer with no tokens.

    Chat: ``logprobs.content[i] = {token, logprob, top_logprobs: [{token, logprob}]}``. Legacy
    text completions (llama.cpp): ``logprobs = {tokens, token_logprobs, top_logprobs: [{token:
    logprob}]}``.
    """
    logprobs = _get(choice, "logprobs")
    if logprobs is None:
        return None
    content = _get(logprobs, "content")
    positions: list[TokenLogprob] = []
    if isinstance(content, list):
        for entry in content:
            token, value = _get(entry, "token"), _number(_get(entry, "logprob"))
            if not isinstance(token, str) or value is None:
                return None
            top = _ranked(
                (_get(t, "token"), _get(t, "logprob")) for t in _get(entry, "top_logprobs") or ()
            )
            positions.append(TokenLogprob(token, value, top))
        return tuple(positions)
    tokens, values = _get(logprobs, "tokens"), _get(logprobs, "token_logprobs")
    tops = _get(logprobs, "top_logprobs") or []
    if not isinstance(tokens, list) or not isinstance(values, list):
        return None
    for i, (token, raw) in enumerate(zip(tokens, values, strict=False)):
        value = _number(raw)
        if not isinstance(token, str) or value is None:
            return None
        top = tops[i] if i < len(tops) and isinstance(tops[i], Mapping) else {}
        positions.append(TokenLogprob(token, value, _ranked(top.items())))
    return tuple(positions)


def logprobs_from_json(value: Any) -> Logprobs | None:
    """Stored log-probabilities (a cache entry's ``logprobs``); None for entries without."""
    if not isinstance(value, list):
        return None
    return tuple(TokenLogprob.from_json(v) for v in value if isinstance(v, Mapping))


def margin(position: TokenLogprob) -> float | None:
    """Best minus second-best log-probability at *position*; None with fewer than two."""
    ranked = [lp for _, lp in position.top]
    return ranked[0] - ranked[1] if len(ranked) > 1 else None


def _ceiling(position: TokenLogprob) -> float:
    """The most a token missing from *position*'s alternatives can have: the lowest of the
    best TOP_LOGPROBS (llama.cpp adds the chosen token to them, below the rest when sampled)."""
    ranked = [lp for _, lp in position.top][:TOP_LOGPROBS] or [position.logprob]
    return ranked[-1]


def first_token(positions: Logprobs) -> dict[str, Any]:
    """The first token of a probe: what it was, its alternatives and their margin."""
    first = positions[0]
    found = margin(first)
    return {
        "token": first.token,
        "logprob": round(first.logprob, 4),
        "margin": None if found is None else round(found, 4),
        "top": [[t, round(lp, 4)] for t, lp in first.top],
        "generated": [p.token for p in positions[:ANSWER_TOKENS]],
    }


@dataclass(frozen=True)
class Shift:
    """How the variant prompt moved the original's first answer tokens (see the module)."""

    delta: float
    #: how many of the original's first answer tokens it covers
    tokens: int
    #: ``delta`` is an upper bound: a token fell out of the variant's top alternatives
    bound: bool
    #: the original's first token, its log-probability under each prompt
    token: str
    original: float
    variant: float
    #: ``variant`` is an upper bound
    first_bound: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "delta": round(self.delta, 4),
            "tokens": self.tokens,
            "bound": self.bound,
            "token": self.token,
            "original_logprob": round(self.original, 4),
            "variant_logprob": round(self.variant, 4),
            "first_token_bound": self.first_bound,
        }


def shift(original: Logprobs, variant: Logprobs, answer_tokens: int = ANSWER_TOKENS) -> Shift:
    """The change in log-probability of *original*'s first tokens under the variant prompt.

    Both are probes' log-probabilities, each along its own generated path (non-empty).
    """
    total = 0.0
    covered = 0
    bound = False
    firsts: list[tuple[float, bool]] = []
    for mine, theirs in zip(original[:answer_tokens], variant, strict=False):
        value = theirs.of(mine.token)
        if value is None:
            value, bound = _ceiling(theirs), True
        total += value - mine.logprob
        covered += 1
        firsts.append((value, bound))
        if bound or theirs.token != mine.token:
            break  # the variant's path left the original's: no log-probabilities beyond
    return Shift(
        delta=total,
        tokens=covered,
        bound=bound,
        token=original[0].token,
        original=original[0].logprob,
        variant=firsts[0][0],
        first_bound=firsts[0][1],
    )


@dataclass(frozen=True)
class Sensitivity:
    """What the probes of one (original, variant) pair gave; ``note`` says what is missing."""

    original: Logprobs | None = None
    variant: Logprobs | None = None
    shift: Shift | None = None
    note: str = ""

    @property
    def margins(self) -> tuple[float | None, float | None]:
        """The first token's margin under each prompt, where known."""
        first = margin(self.original[0]) if self.original else None
        return first, margin(self.variant[0]) if self.variant else None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "original": first_token(self.original) if self.original else None,
            "variant": first_token(self.variant) if self.variant else None,
            "shift": self.shift.as_json() if self.shift else None,
        }
        if self.note:
            data["note"] = self.note
        return data


def answer_tokens(positions: Logprobs, answer: str) -> Logprobs:
    """The leading *positions* whose text is the start of *answer*: a probe may run on past the
    answer's end (into a stop sequence), and a provider may answer a probe differently."""
    joined = ""
    for n, position in enumerate(positions):
        joined += position.token
        if not answer.startswith(joined):
            return positions[:n]
    return positions


def sensitivity(original: Logprobs | None, variant: Logprobs | None, answer: str) -> Sensitivity:
    """The sensitivity of a pair of probes, for the original call's *answer*."""
    if original is None and variant is None:
        return Sensitivity(note="the provider returned no log-probabilities")
    for side, given in (("original", original), ("variant", variant)):
        if given is None:
            return Sensitivity(original, variant, note=f"no log-probabilities for the {side}")
    assert original is not None and variant is not None  # for mypy: both checked above
    if not answer:
        return Sensitivity(original, variant, note="the original's answer is empty: no token")
    if not variant:
        return Sensitivity(original, variant, note="the variant's answer is empty: no token")
    compared = answer_tokens(original, answer)
    if not compared:
        return Sensitivity(
            original,
            variant,
            note="the probe answered differently from the original call (a nondeterministic"
            " provider?): no shift",
        )
    return Sensitivity(original, variant, shift(compared, variant))
