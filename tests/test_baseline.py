"""Baselines: the file's shape, loading errors, the regression check and new/removed tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic import result, suite

from pytest_promptpert.baseline import (
    BaselineError,
    baseline_data,
    changes,
    changes_lines,
    check,
    load_baseline,
    write_baseline,
)

SIGN = "tests/test_prompts.py::test_sign"


def test_baseline_data_records_every_compared_variant_sorted() -> None:
    data = baseline_data(reversed(suite()))
    assert data == {
        "version": 1,
        "scores": {
            "tests/test_other.py::test_ok": {"add_period": 0.9, "trailing_space": 0.3},
            "tests/test_prompts.py::test_city[paris]": {"add_period": 0.75, "trailing_space": 1.0},
            SIGN: {"add_period": 0.21, "lowercase": 0.45, "trailing_space": 0.98},
        },
    }
    assert list(data["scores"]) == sorted(data["scores"])


def test_scores_are_rounded() -> None:
    data = baseline_data([result(SIGN, "add_period", "passed", 0.123456789)])
    assert data["scores"][SIGN]["add_period"] == 0.1235


def test_written_file_is_stable_and_reviewable(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "promptpert-baseline.json"
    write_baseline(path, suite())
    first = path.read_text(encoding="utf-8")
    write_baseline(path, list(reversed(suite())))
    assert path.read_text(encoding="utf-8") == first
    assert first.endswith("}\n")
    assert '      "add_period": 0.21,\n' in first  # one score per line
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    written = write_baseline(path, suite())
    assert load_baseline(path) == written


def test_write_can_keep_tests_a_partial_run_did_not_see(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    old = write_baseline(path, suite())
    write_baseline(path, [result(SIGN, "add_period", "passed", 0.99)], keep=old)
    loaded = load_baseline(path)
    assert loaded is not None
    # The variant that ran is replaced; the test's other variants are kept.
    assert loaded["scores"][SIGN] == {**old["scores"][SIGN], "add_period": 0.99}
    assert loaded["scores"]["tests/test_other.py::test_ok"] == {
        "add_period": 0.9,
        "trailing_space": 0.3,
    }


def test_missing_file_is_no_baseline(tmp_path: Path) -> None:
    assert load_baseline(tmp_path / "nope.json") is None


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", 'has no "scores" object'),
        ('{"version": 2, "scores": {}}', "has version 2"),
        ('{"version": 1, "scores": {"t": [0.5]}}', "scores of 't' are not an object"),
        (
            '{"version": 1, "scores": {"t": {"v": "high"}}}',
            "'t' variant 'v' is 'high', not a number",
        ),
        ('{"version": 1, "scores": {"t": {"v": true}}}', "is True, not a number"),
    ],
)
def test_malformed_baseline_names_the_file(tmp_path: Path, content: str, complaint: str) -> None:
    path = tmp_path / "promptpert-baseline.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(path) in str(info.value)
    assert complaint in str(info.value)
    assert "--promptpert-update-baseline" in str(info.value) or "JSON" in str(info.value)


BASELINE = {"version": 1, "scores": {SIGN: {"add_period": 0.9}}}


def test_check_fails_a_drop_beyond_tolerance_naming_both_scores() -> None:
    message = check(result(SIGN, "add_period", "passed", 0.8), BASELINE, 0.05)
    assert message == (
        "variant 'add_period' regressed against the baseline: token_set_ratio score 0.800"
        " is 0.100 below the recorded 0.900 (tolerance 0.05)"
    )


@pytest.mark.parametrize("score", [0.85, 0.9, 1.0])
def test_check_passes_within_tolerance_or_better(score: float) -> None:
    assert check(result(SIGN, "add_period", "passed", score), BASELINE, 0.05) is None


def test_check_just_beyond_tolerance_fails() -> None:
    assert check(result(SIGN, "add_period", "passed", 0.849), BASELINE, 0.05) is not None


@pytest.mark.parametrize(
    "item",
    [
        result(SIGN, "lowercase", "passed", 0.1),  # no record for this variant
        result("t::new", "add_period", "passed", 0.1),  # nor for this test
        result(SIGN, "add_period", "skipped"),  # nothing compared
        result(SIGN, "original", "passed", 0.1),
    ],
)
def test_check_ignores_what_it_cannot_compare(item: dict[str, object]) -> None:
    assert check(item, BASELINE, 0.05) is None


def test_changes_reports_new_and_removed_tests() -> None:
    baseline = {
        "version": 1,
        "scores": {SIGN: {"add_period": 0.9}, "tests/test_gone.py::test_old": {"add_period": 1.0}},
    }
    new, removed = changes(suite(), baseline)
    assert new == ["tests/test_other.py::test_ok", "tests/test_prompts.py::test_city[paris]"]
    assert removed == ["tests/test_gone.py::test_old"]
    lines = changes_lines(new, removed, Path("/repo/promptpert-baseline.json"))
    assert lines[0].startswith("baseline: 2 test(s) not in promptpert-baseline.json yet")
    assert "  + tests/test_other.py::test_ok" in lines
    assert "  - tests/test_gone.py::test_old" in lines
    assert changes_lines([], [], Path("b.json")) == []


def test_baseline_file_is_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, suite())
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == 1
