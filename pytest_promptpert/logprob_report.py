"""Log-prob sensitivity as the reports show it: text for the terminal and the HTML report, and
the early warnings, from the ``"logprobs"`` of each item's record (see :mod:`logprobs`).

Nothing here imports pytest or calls a model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: A passing variant whose shift is at or below this (natural log: the original's first answer
#: tokens became e = 2.7 times less likely, or more) is an early warning.
WARNING_SHIFT = -1.0


def _percent(logprob: float) -> str:
    p = math.exp(logprob)
    return "<0.1%" if p < 0.001 else f"{p:.1%}" if p < 0.1 else f"{p:.0%}"


def shift_text(logprobs: Mapping[str, Any]) -> str:
    """``-2.31 over 3 tokens (first token ' Paris' 87% -> 12%; margin 2.10 -> 0.31)``."""
    s = logprobs.get("shift")
    if not s:
        return f"no shift: {logprobs.get('note') or 'no log-probabilities'}"
    tokens = f"{s['tokens']} token{'s' * (s['tokens'] != 1)}"
    sign = "<= " if s["bound"] else ""
    first_sign = "<=" if s["first_token_bound"] else ""
    text = (
        f"{sign}{s['delta']:+.2f} over {tokens} (first token {s['token']!r}"
        f" {_percent(s['original_logprob'])} -> {first_sign}{_percent(s['variant_logprob'])}"
    )
    margins = [(logprobs.get(side) or {}).get("margin") for side in ("original", "variant")]
    if all(m is not None for m in margins):
        text += f"; margin {margins[0]:.2f} -> {margins[1]:.2f}"
    text += ")"
    if s["bound"]:
        text += " bound: the token fell out of the variant's top alternatives"
    return text


def first_token_text(first: Mapping[str, Any]) -> str:
    """``' Paris' 87% (margin 2.10; then ' London' 9%, ' The' 1%)``."""
    parts = [] if first.get("margin") is None else [f"margin {first['margin']:.2f}"]
    others = [f"{t!r} {_percent(lp)}" for t, lp in first.get("top", []) if t != first["token"]]
    if others:
        parts.append("then " + ", ".join(others[:3]))
    inner = f" ({'; '.join(parts)})" if parts else ""
    return f"{first['token']!r} {_percent(first['logprob'])}{inner}"


def detail_lines(result: Mapping[str, Any]) -> list[str]:
    """What an item's record says about log-probabilities, for its detail (HTML report)."""
    logprobs = result.get("logprobs")
    if not logprobs:
        return []
    lines = []
    if result.get("variant") != "original":
        lines.append(
            f"log-prob shift of the original's first answer tokens: {shift_text(logprobs)}"
        )
    elif logprobs.get("note"):
        lines.append(f"log-probs: {logprobs['note']}")
    for side in ("original", "variant"):
        first = logprobs.get(side)
        if first:
            lines.append(f"{side} first token: {first_token_text(first)}")
    return lines


def _shift_of(result: Mapping[str, Any]) -> float | None:
    s = (result.get("logprobs") or {}).get("shift")
    return float(s["delta"]) if s else None


def early_warnings(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Passing variant items that answered with the original's first token, but made the
    original's first answer tokens WARNING_SHIFT or more less likely (an exact shift)."""
    found = []
    for r in results:
        logprobs = r.get("logprobs") or {}
        s, original, variant = (logprobs.get(k) for k in ("shift", "original", "variant"))
        if (
            r.get("outcome") == "passed"
            and s
            and not s["bound"]
            and s["delta"] <= WARNING_SHIFT
            and original
            and variant
            and original["token"] == variant["token"]
        ):
            found.append(
                {
                    "nodeid": r["nodeid"],
                    "test": r["test"],
                    "variant": r["variant"],
                    "shift": s["delta"],
                }
            )
    return sorted(found, key=lambda w: (w["shift"], str(w["nodeid"])))


def terminal_lines(
    results: Sequence[Mapping[str, Any]], verbosity: int, limit: int = 5
) -> list[str]:
    """Early warnings; with -v every variant item's shift, smallest first."""
    by_id = {str(r["nodeid"]): r for r in results}
    lines: list[str] = []
    warnings = early_warnings(results)
    if warnings:
        lines.append(
            f"log-prob early warnings: {len(warnings)} passing variant"
            f"{'s' * (len(warnings) != 1)} kept the original's first token but made the"
            f" original's first answer tokens at least {math.exp(-WARNING_SHIFT):.1f} times"
            " less likely:"
        )
        shown = warnings if verbosity >= 1 else warnings[:limit]
        for w in shown:
            lines.append(f"  {w['nodeid']}  {shift_text(by_id[str(w['nodeid'])]['logprobs'])}")
        if len(warnings) > len(shown):
            lines.append(f"  ... and {len(warnings) - len(shown)} more (-v shows all)")
    if verbosity >= 1:
        measured = [r for r in results if r.get("variant") != "original" and r.get("logprobs")]
        if measured:
            lines.append(
                "log-prob shift of the original's first answer tokens under each variant"
                " (0: unchanged; negative: the variant pulled the model away):"
            )
            measured.sort(
                key=lambda r: (
                    _shift_of(r) if _shift_of(r) is not None else math.inf,
                    str(r["nodeid"]),
                )
            )
            width = max(len(str(r["nodeid"])) for r in measured)
            for r in measured:
                lines.append(f"  {str(r['nodeid']).ljust(width)}  {shift_text(r['logprobs'])}")
    return lines
