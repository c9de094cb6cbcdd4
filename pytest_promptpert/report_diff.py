"""What changed between two JSON reports: which variants got worse or better, per test.

Pure functions over two reports as ``report.build_json`` writes them; ``promptpert diff``
prints the result as text, Markdown (for a pull-request comment) or JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .report import format_score
from .scoring import (
    ERROR_OUTCOMES,
    EXPECTED_OUTCOMES,
    FAILED_OUTCOMES,
    ORIGINAL,
    PASSED_OUTCOMES,
    robustness_score,
)

Report = Mapping[str, Any]
KINDS = ("worse", "better", "new", "removed", "same")


@dataclass(frozen=True)
class Change:
    test: str
    variant: str
    kind: str  # one of KINDS
    old_score: float | None
    new_score: float | None
    old_outcome: str | None
    new_outcome: str | None


@dataclass(frozen=True)
class ReportDiff:
    changes: tuple[Change, ...]
    old_robustness: float | None
    new_robustness: float | None
    tolerance: float

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    def counts(self) -> dict[str, int]:
        return {kind: len(self.of_kind(kind)) for kind in KINDS}

    def as_dict(self) -> dict[str, Any]:
        return {
            "old_robustness": self.old_robustness,
            "new_robustness": self.new_robustness,
            "tolerance": self.tolerance,
            "counts": self.counts(),
            "changes": [asdict(c) for c in self.changes if c.kind != "same"],
        }


def _verdict(outcome: str | None) -> str:
    if outcome in PASSED_OUTCOMES:
        return "pass"
    if outcome in FAILED_OUTCOMES | EXPECTED_OUTCOMES | ERROR_OUTCOMES:
        return "fail"  # an expected divergence (xfailed) still diverged
    return "none"  # skipped, or missing: nothing was compared


def _kind(old: Mapping[str, Any], new: Mapping[str, Any], tolerance: float) -> str:
    before, after = _verdict(old.get("outcome")), _verdict(new.get("outcome"))
    if before == "pass" and after == "fail":
        return "worse"
    if before == "fail" and after == "pass":
        return "better"
    old_score, new_score = old.get("score"), new.get("score")
    if isinstance(old_score, (int, float)) and isinstance(new_score, (int, float)):
        if new_score < old_score - tolerance:
            return "worse"
        if new_score > old_score + tolerance:
            return "better"
    return "same"


def _variant_items(report: Report) -> dict[tuple[str, str], Mapping[str, Any]]:
    results: Sequence[Mapping[str, Any]] = report.get("results", [])
    return {(str(r["test"]), str(r["variant"])): r for r in results if r.get("variant") != ORIGINAL}


def diff_reports(old: Report, new: Report, tolerance: float = 0.05) -> ReportDiff:
    """Every (test, variant) of either report, classified; *tolerance* is the score change
    that counts (0.05 by default, as ``baseline_tolerance``)."""
    before, after = _variant_items(old), _variant_items(new)
    changes = []
    for test, variant in sorted(before.keys() | after.keys()):
        o, n = before.get((test, variant)), after.get((test, variant))
        kind = "new" if o is None else "removed" if n is None else _kind(o, n, tolerance)
        changes.append(
            Change(
                test,
                variant,
                kind,
                o.get("score") if o else None,
                n.get("score") if n else None,
                o.get("outcome") if o else None,
                n.get("outcome") if n else None,
            )
        )
    return ReportDiff(
        tuple(changes),
        robustness_score(old.get("results", [])),
        robustness_score(new.get("results", [])),
        tolerance,
    )


def _robustness(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def headline(diff: ReportDiff) -> str:
    counts = diff.counts()
    old, new = diff.old_robustness, diff.new_robustness
    delta = f" ({new - old:+.3f})" if old is not None and new is not None else ""
    parts = [f"{counts[k]} {k}" for k in ("worse", "better", "new", "removed") if counts[k]]
    return (
        f"robustness {_robustness(old)} -> {_robustness(new)}{delta}; "
        + (", ".join(parts) if parts else "no variant changed")
        + f" (score tolerance {diff.tolerance:g})"
    )


def _cells(change: Change) -> list[str]:
    return [
        change.test,
        change.variant,
        f"{format_score(change.old_score)} {change.old_outcome or '-'}",
        f"{format_score(change.new_score)} {change.new_outcome or '-'}",
    ]


def text_lines(diff: ReportDiff) -> list[str]:
    lines = [headline(diff)]
    for kind in ("worse", "better", "new", "removed"):
        changes = diff.of_kind(kind)
        if not changes:
            continue
        rows = [["test", "variant", "old", "new"], *(_cells(c) for c in changes)]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines += ["", f"{kind}:"]
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
    return lines


def _md(text: str) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def markdown(diff: ReportDiff, limit: int = 50) -> str:
    """A pull-request comment: the headline, then what got worse and what got better."""
    lines = [f"### promptpert: {headline(diff)}"]
    titles = {"worse": "Worse", "better": "Better", "new": "New", "removed": "Removed"}
    for kind, title in titles.items():
        changes = diff.of_kind(kind)
        if not changes:
            continue
        lines += ["", f"**{title}** ({len(changes)})", ""]
        lines += ["| test | variant | old | new |", "|---|---|---:|---:|"]
        for change in changes[:limit]:
            test, variant, old, new = _cells(change)
            lines.append(f"| {_md(test)} | {_md(variant)} | {old} | {new} |")
        if len(changes) > limit:
            lines.append(f"| … and {len(changes) - limit} more | | | |")
    return "\n".join(lines) + "\n"
