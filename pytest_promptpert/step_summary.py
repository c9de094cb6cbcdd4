"""The Markdown summary a run appends to ``$GITHUB_STEP_SUMMARY``; no pytest here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .report import (
    calls_line,
    format_score,
    outcome_label,
    robustness_line,
    sort_key,
    variant_sensitivity,
)
from .scoring import ERROR_OUTCOMES, FAILED_OUTCOMES, GateVerdict, Result

MAX_MARKDOWN_ROWS = 50


def _md_code(text: str) -> str:
    """*text* as an inline code span that is safe inside a Markdown table cell."""
    text = " ".join(text.split()).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def markdown_summary(
    results: Sequence[Result], stats: Mapping[str, Any], gate: GateVerdict | None = None
) -> str:
    """A Markdown summary for ``$GITHUB_STEP_SUMMARY``: headline, gate, sensitivity, failures."""
    lines = [f"### promptpert: {robustness_line(results)}", ""]
    if gate is not None:
        lines += [f"**{gate.line.removeprefix('promptpert: ')}**", ""]
    lines.append(calls_line(stats).capitalize())
    sensitivity = variant_sensitivity(results)
    if sensitivity:
        lines += ["", "| variant | changed behaviour in | share |", "|---|---:|---:|"]
        ranked = sorted(sensitivity.items(), key=lambda kv: (-kv[1]["share"], kv[0]))
        for name, s in ranked:
            lines.append(f"| {_md_code(name)} | {s['failed']} of {s['tests']} | {s['share']:.0%} |")
    lines += _markdown_failures(results)
    return "\n".join(lines) + "\n"


def _markdown_failures(results: Sequence[Result]) -> list[str]:
    bad = sorted(
        (r for r in results if r.get("outcome") in FAILED_OUTCOMES | ERROR_OUTCOMES),
        key=sort_key,
    )
    if not bad:
        return []
    lines = ["", "| failed item | score | threshold | outcome |", "|---|---:|---:|---|"]
    for r in bad[:MAX_MARKDOWN_ROWS]:
        lines.append(
            f"| {_md_code(str(r['nodeid']))} | {format_score(r.get('score'))}"
            f" | {float(r['threshold']):.3f} | {outcome_label(r)} |"
        )
    if len(bad) > MAX_MARKDOWN_ROWS:
        lines += ["", f"… and {len(bad) - MAX_MARKDOWN_ROWS} more."]
    return lines
