"""The calibration table's statistics (scripts/calibration_stats.py): pure, no model."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "calibration_stats", SCRIPTS / "calibration_stats.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["calibration_stats"] = module
    spec.loader.exec_module(module)
    return module


stats = _load()


def test_wilson_interval_matches_the_textbook_values() -> None:
    # 8 of 10: the Wilson 95 % interval is 0.490 to 0.943 (Newcombe 1998, table I style check).
    lo, hi = stats.wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    # All right still leaves room below 1; none right leaves room above 0.
    assert stats.wilson(20, 20)[0] == pytest.approx(0.8389, abs=1e-4)
    assert stats.wilson(0, 20)[1] == pytest.approx(0.1611, abs=1e-4)
    assert stats.wilson(0, 0) == (0.0, 1.0)


def test_threshold_choice_takes_the_middle_of_the_best_run() -> None:
    # same iff score >= t: only 0.30 separates these perfectly.
    scored = [(0.9, True), (0.6, True), (0.31, True), (0.28, False), (0.1, False)]
    assert stats.accuracy(scored, 0.3) == 5
    assert stats.accuracy(scored, 0.35) == 4
    assert stats.choose_threshold(scored) == 0.3
    # Perfectly separated anywhere from 0.45 to 0.85 (a score equal to t is same): the middle.
    wide = [(0.85, True), (0.4, False)]
    best = [t for t in stats.THRESHOLDS if stats.accuracy(wide, t) == 2]
    assert best == [0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85]
    assert stats.choose_threshold(wide) == 0.65


def _pairs(kind: str, n: int) -> list[object]:
    return [
        stats.Pair(f"{kind}/p/v{i}", kind, "same" if i % 2 else "different", "a", "b")
        for i in range(n)
    ]


def test_split_is_a_deterministic_third_of_each_kind() -> None:
    pairs = _pairs("x", 30) + _pairs("y", 9)
    ids = [(p.id, p.kind) for p in pairs]
    held = stats.held_out_ids(ids)
    assert held == stats.held_out_ids(list(reversed(ids)))  # order of listing does not matter
    assert sum(i.startswith("x/") for i in held) == 10
    assert sum(i.startswith("y/") for i in held) == 3
    # Adding pairs of another kind moves no pair of this one.
    more = stats.held_out_ids([*ids, *((p.id, p.kind) for p in _pairs("z", 12))])
    assert {i for i in more if not i.startswith("z/")} == held


def test_held_out_pairs_never_choose_the_threshold() -> None:
    pairs = _pairs("x", 30)
    held = stats.held_out_ids([(p.id, p.kind) for p in pairs])
    # Tuning pairs separate at 0.65 to 0.8; held-out pairs, if they were used, would pull it to 0.2.
    scores = {}
    for p in pairs:
        same = p.label == "same"
        if p.id in held:
            scores[p.id] = 0.25 if same else 0.1
        else:
            scores[p.id] = 0.8 if same else 0.62
    result = stats.evaluate(pairs, lambda p: scores[p.id], held)
    assert result.threshold == 0.7  # the (lower) middle of 0.65, 0.7, 0.75, 0.8
    assert (result.tuning_correct, result.tuning_n) == (20, 20)
    # On held-out pairs that threshold calls every pair different: right on the different ones.
    n_diff = sum(p.label == "different" for p in pairs if p.id in held)
    assert (result.correct, result.n) == (n_diff, 10)
    # A fixed threshold is used as given; pairs without a score are left out of both parts.
    fixed = stats.evaluate(
        pairs, lambda p: scores[p.id] if p.id in held else None, held, threshold=0.2
    )
    assert (fixed.threshold, fixed.tuned, fixed.correct, fixed.n) == (0.2, False, 10, 10)


def test_report_scores_extracted_answers_and_renders_the_table() -> None:
    def pair(i: int, original: str, output: str, label: str) -> object:
        return stats.Pair(f"classify/p/v{i}", "classify", label, original, output, "first_word")

    pairs = [
        pair(i, "positive\n\nReview: x", f"positive\n\nReview: {'y' * i}", "same") for i in range(6)
    ] + [pair(10 + i, "positive\nmore", "negative\nmore", "different") for i in range(6)]
    report = stats.build_report(pairs)
    rows = {(r.metric, r.extract): r.result for r in report.rows}
    # exact on the first word is right on every held-out pair; on whole outputs it calls the
    # two held-out rewordings different.
    assert sorted(report.held) == [
        "classify/p/v1",
        "classify/p/v14",
        "classify/p/v15",
        "classify/p/v5",
    ]
    assert (rows[("exact", True)].correct, rows[("exact", True)].n) == (4, 4)
    assert (rows[("exact", False)].correct, rows[("exact", False)].n) == (2, 4)
    table = stats.render_markdown(report, date="2026-11-27")
    assert "12 labelled pairs (6 same, 6 different)" in table
    assert "| `exact` + extractor | 0.50 | 1.00 | 0.51 to 1.00 |" in table
    assert "| `exact` | 0.50 | 0.50 | 0.15 to 0.85 |" in table
    assert "| classify | `first_word` | 4 (2 / 2) |" in table
    with pytest.raises(ValueError, match="'maybe'"):
        stats.build_report([stats.Pair("a/b/c", "a", "maybe", "x", "y")])


def test_readme_table_is_the_one_the_stored_outputs_and_labels_give() -> None:
    # Every figure in the README comes from a command: this one needs no model, so check it.
    sys.path.insert(0, str(SCRIPTS))
    try:
        import calibrate
    finally:
        sys.path.remove(str(SCRIPTS))
    data = json.loads(calibrate.OUTPUTS.read_text(encoding="utf-8"))
    labels = json.loads(calibrate.LABELS.read_text(encoding="utf-8"))
    assert len(data["pairs"]) >= 300
    assert sorted(labels) == sorted(p["id"] for p in data["pairs"])
    assert set(labels.values()) == {"same", "different"}
    readme = calibrate.README.read_text(encoding="utf-8")
    block = readme.split(calibrate.BEGIN)[1].split(calibrate.END)[0]
    assert block.strip() == calibrate.table().strip(), (
        "README's calibration table is stale: python scripts/calibrate.py table --write-readme"
    )
