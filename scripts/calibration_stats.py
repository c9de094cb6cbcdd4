"""Pure statistics of the calibration: the held-out split, threshold choice, accuracy, Wilson.

No model, no I/O: ``calibrate.py`` feeds it stored outputs and labels.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SAME, DIFFERENT = "same", "different"


@dataclass(frozen=True)
class Pair:
    """One labelled (original output, variant output) pair."""

    id: str  # kind/prompt/variant
    kind: str
    label: str  # "same" or "different"
    original: str
    output: str
    extract: str | None = None  # the extractor of its kind
    model_scores: Mapping[str, Any] = field(default_factory=dict)


def held_out_ids(pairs: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The held-out third of (pair id, kind): per kind, ids ranked by SHA-256, every third.

    Depends only on the ids, so it is fixed before any score or threshold is looked at, and a
    pair added later moves no other pair of another kind.
    """
    by_kind: dict[str, list[str]] = {}
    for pair_id, kind in pairs:
        by_kind.setdefault(kind, []).append(pair_id)
    held: set[str] = set()
    for ids in by_kind.values():
        ranked = sorted(ids, key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())
        held.update(ranked[::3])
    return frozenset(held)


Z95 = 1.959963984540054
#: Thresholds tried on the tuning part (every 0.05 from 0.05 to 1.0).
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 21))


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion *correct*/*n* (95 % by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy(scored: Sequence[tuple[float, bool]], threshold: float) -> int:
    """How many (score, is_same) pairs a threshold classifies right (same iff score >= t)."""
    return sum((score >= threshold) == same for score, same in scored)


def choose_threshold(scored: Sequence[tuple[float, bool]]) -> float:
    """The threshold of :data:`THRESHOLDS` right on most pairs; of tied ones, the middle one."""
    counts = [accuracy(scored, t) for t in THRESHOLDS]
    best = max(counts)
    tied = [t for t, c in zip(THRESHOLDS, counts, strict=True) if c == best]
    return tied[(len(tied) - 1) // 2]


@dataclass(frozen=True)
class Result:
    """One metric's threshold (chosen on the tuning part) and its held-out accuracy."""

    threshold: float
    tuned: bool  # False: a fixed threshold (the metric is a verdict, or no tuning data)
    correct: int
    n: int
    tuning_correct: int = 0
    tuning_n: int = 0

    @property
    def tuning_accuracy(self) -> float:
        return self.tuning_correct / self.tuning_n if self.tuning_n else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.correct, self.n)


def evaluate(
    pairs: Sequence[Pair],
    score: Callable[[Pair], float | None],
    held: frozenset[str],
    *,
    threshold: float | None = None,
) -> Result:
    """Choose a threshold on the pairs not in *held* (unless given), count right ones in *held*.

    *score* gives None for a pair it has no score for (the judge is asked on held-out pairs
    only); such pairs are left out of both parts.
    """
    tuning: list[tuple[float, bool]] = []
    testing: list[tuple[float, bool]] = []
    for pair in pairs:
        value = score(pair)
        if value is None:
            continue
        (testing if pair.id in held else tuning).append((value, pair.label == SAME))
    tuned = threshold is None and bool(tuning)
    chosen = choose_threshold(tuning) if tuned else (threshold if threshold is not None else 0.5)
    return Result(
        chosen,
        tuned,
        accuracy(testing, chosen),
        len(testing),
        accuracy(tuning, chosen),
        len(tuning),
    )


# --- scoring a pair with a metric, with or without its kind's extractor ---------------------

STRING_METRICS = (
    "levenshtein",
    "ratio",
    "token_set_ratio",
    "token_sort_ratio",
    "partial_ratio",
    "jaro_winkler",
    "exact",
)
#: The built-in default that the table is measured against.
DEFAULT = ("levenshtein", False)


def string_score(metric: str, extract: bool) -> Callable[[Pair], float | None]:
    """A built-in string metric on the whole outputs, or on what the kind's extractor found.

    With the extractor, a pair is scored as a marked test scores it: an original with nothing
    to extract errors the item (counted as "different", 0.0), a variant with nothing to extract
    scores 0.0.
    """
    from pytest_promptpert.compare import NothingToCompare, compare
    from pytest_promptpert.extract import parse_extract
    from pytest_promptpert.metrics import builtin_metrics

    func = builtin_metrics()[metric]

    def score(pair: Pair) -> float | None:
        extractor = parse_extract(pair.extract) if extract and pair.extract else None
        try:
            found = compare(
                func, metric, 0.5, "", "", [pair.original], [pair.output], extract=extractor
            )
        except NothingToCompare:
            return 0.0
        return found.score

    return score


def stored_score(metric: str, extract: bool) -> Callable[[Pair], float | None]:
    """A score stored by ``collect`` (``embedding``, ``judge``); None where none was stored."""

    def score(pair: Pair) -> float | None:
        scores = pair.model_scores
        if not (extract and pair.extract):
            if metric not in scores:
                return None
            value = scores[metric]
            return 0.0 if value is None else float(value)  # no verdict: the item errors
        from pytest_promptpert.extract import parse_extract

        extractor = parse_extract(pair.extract)
        assert extractor is not None
        if extractor(pair.original).value is None:
            return 0.0
        if extractor(pair.output).value is None:
            return 0.0
        value = scores.get(f"{metric}+extract")
        return None if value is None else float(value)

    return score


@dataclass(frozen=True)
class Row:
    metric: str
    extract: bool
    result: Result


@dataclass(frozen=True)
class Report:
    pairs: Sequence[Pair]
    held: frozenset[str]
    rows: Sequence[Row]
    #: per kind: (rows evaluated on that kind alone, thresholds chosen on its tuning part)
    by_kind: Mapping[str, Sequence[Row]]


def _configs(pairs: Sequence[Pair]) -> list[tuple[str, bool, Callable[[Pair], float | None]]]:
    configs: list[tuple[str, bool, Callable[[Pair], float | None]]] = []
    for name in STRING_METRICS:
        configs.append((name, False, string_score(name, False)))
        configs.append((name, True, string_score(name, True)))
    if any("embedding" in p.model_scores for p in pairs):
        configs.append(("embedding", False, stored_score("embedding", False)))
        configs.append(("embedding", True, stored_score("embedding", True)))
    if any("judge" in p.model_scores for p in pairs):
        configs.append(("judge", False, stored_score("judge", False)))
    return configs


def build_report(pairs: Sequence[Pair]) -> Report:
    """Every metric, with and without extractors: threshold from tuning, accuracy held out."""
    bad = sorted({p.label for p in pairs} - {SAME, DIFFERENT})
    if bad:
        raise ValueError(f"labels must be {SAME!r} or {DIFFERENT!r}, not {bad}")
    held = held_out_ids([(p.id, p.kind) for p in pairs])
    configs = _configs(pairs)
    fixed = {"judge": 0.5}  # a verdict: 1.0 same, 0.0 different

    def rows(subset: Sequence[Pair]) -> list[Row]:
        return [
            Row(name, extract, evaluate(subset, score, held, threshold=fixed.get(name)))
            for name, extract, score in configs
        ]

    kinds = sorted({p.kind for p in pairs}, key=[p.kind for p in pairs].index)
    by_kind = {k: rows([p for p in pairs if p.kind == k]) for k in kinds}
    return Report(pairs, held, rows(pairs), by_kind)


# --- the Markdown table ---------------------------------------------------------------------


def _name(metric: str, extract: bool, kind_extract: str | None = None) -> str:
    if not extract:
        return f"`{metric}`"
    return f"`{metric}` + `{kind_extract}`" if kind_extract else f"`{metric}` + extractor"


def _acc(result: Result) -> str:
    lo, hi = result.interval
    return f"{result.accuracy:.2f} | {lo:.2f} to {hi:.2f}"


def _best_on_tuning(rows: Sequence[Row]) -> Row:
    """The row right on most tuning pairs (ties: the simpler one, listed first)."""
    usable = [r for r in rows if r.result.tuning_n]
    return max(usable, key=lambda r: r.result.tuning_accuracy)


def render_markdown(report: Report, *, date: str) -> str:
    pairs, held = report.pairs, report.held
    n_same = sum(p.label == SAME for p in pairs)
    lines = [
        f"{len(pairs)} labelled pairs ({n_same} same, {len(pairs) - n_same} different);"
        f" thresholds chosen on {len(pairs) - len(held)} tuning pairs, accuracy measured on the"
        f" {len(held)} held-out pairs (a third of each kind, by SHA-256 of the pair id)."
        f" Outputs collected {date}.",
        "",
        "Pairs per kind (same / different): "
        + ", ".join(
            f"{kind} {len(ms)} ({sum(p.label == SAME for p in ms)} / "
            f"{sum(p.label != SAME for p in ms)})"
            for kind in report.by_kind
            for ms in [[p for p in pairs if p.kind == kind]]
        )
        + ".",
        "",
        "| metric | threshold | held-out accuracy | 95 % interval |",
        "|---|---:|---:|---|",
    ]
    held_pairs = [p for p in pairs if p.id in held]
    best = max(report.rows, key=lambda r: r.result.accuracy)
    for row in report.rows:
        shown = _name(row.metric, row.extract)
        if row is best:
            shown = f"**{shown}**"
        t = f"{row.result.threshold:.2f}" if row.result.tuned else "(verdict)"
        n = "" if row.result.n == len(held_pairs) else f" (n={row.result.n})"
        lines.append(f"| {shown}{n} | {t} | {_acc(row.result)} |")
    default = evaluate(pairs, string_score(*DEFAULT), held, threshold=0.5)
    lines.append(f"| `levenshtein` at today's default 0.5 | 0.50 | {_acc(default)} |")
    lines += [
        "",
        "Per kind of prompt: the metric right on most of that kind's tuning pairs (threshold"
        " chosen there too), its held-out accuracy, and today's default on the same pairs.",
        "",
        "| kind | extractor | held-out pairs (same / different) | use | threshold |"
        " held-out accuracy | 95 % interval | `levenshtein` @ 0.5 |",
        "|---|---|---|---|---:|---:|---|---:|",
    ]
    for kind, rows in report.by_kind.items():
        members = [p for p in pairs if p.kind == kind]
        kind_extract = members[0].extract
        h = [p for p in members if p.id in held]
        hs = sum(p.label == SAME for p in h)
        pick = _best_on_tuning(rows)
        base = evaluate(members, string_score(*DEFAULT), held, threshold=0.5)
        lines.append(
            f"| {kind} | {f'`{kind_extract}`' if kind_extract else 'none'}"
            f" | {len(h)} ({hs} / {len(h) - hs})"
            f" | {_name(pick.metric, pick.extract, kind_extract)} | {pick.result.threshold:.2f}"
            f" | {_acc(pick.result)} | {base.accuracy:.2f} |"
        )
    lines += [
        "",
        "<details><summary>Every metric on each kind (thresholds chosen on that kind's tuning"
        " pairs; held-out accuracy @ threshold)</summary>",
        "",
        "| metric | " + " | ".join(report.by_kind) + " |",
        "|---|" + "---:|" * len(report.by_kind),
    ]
    extracts = {k: next(p.extract for p in pairs if p.kind == k) for k in report.by_kind}
    for i, row in enumerate(report.rows):
        cells = []
        for kind, rows in report.by_kind.items():
            result = rows[i].result
            if row.extract and not extracts[kind]:
                cells.append("—")  # no extractor for this kind: the same as without
            else:
                shown = "verdict" if not result.tuned else f"{result.threshold:.2f}"
                cells.append(f"{result.accuracy:.2f} @ {shown}")
        lines.append(f"| {_name(row.metric, row.extract)} | " + " | ".join(cells) + " |")
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
