"""The pure report-building core: scores, summary, JSON, terminal and Markdown text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic import STATS, result, suite

from pytest_promptpert.report import build_json, summary, terminal_summary, variant_sensitivity
from pytest_promptpert.scoring import below_fail_under, robustness_score
from pytest_promptpert.settings import Settings
from pytest_promptpert.step_summary import markdown_summary

T = "tests/test_p.py::test_a"


# --- robustness score -----------------------------------------------------------------------


def test_robustness_counts_every_variant_item_not_skipped_or_expected() -> None:
    # suite(): passed 0.98, 0.75, 1.0, 0.9; failed 0.21, 0.45; an error -> 4 of 7
    # (its skip and its expected divergence, xfailed 0.3, are left out)
    assert robustness_score(suite()) == pytest.approx(4 / 7)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (["passed", "failed"], 0.5),
        (["passed", "skipped"], 1.0),  # skipped: not in the score
        (["passed", "error"], 0.5),  # an error is not a pass (the contract: not skipped)
        (["xpassed", "failed"], 0.5),  # an xfail that passed held
        (["passed", "xfailed"], 1.0),  # an expected divergence is not news: not in the score
        (["xfailed"], None),
        (["skipped", "error"], 0.0),
        (["skipped"], None),  # nothing decided
        ([], None),
    ],
)
def test_robustness_outcomes(outcomes: list[str], expected: float | None) -> None:
    results = [result(T, "original", "failed")]  # originals never count
    results += [result(T, f"v{i}", outcome) for i, outcome in enumerate(outcomes)]
    assert robustness_score(results) == expected


def test_fail_under_gate() -> None:
    assert below_fail_under(0.5, 0.8)
    assert not below_fail_under(0.8, 0.8)
    assert not below_fail_under(0.5, None)
    assert not below_fail_under(None, 0.8)  # nothing compared is not a regression


# --- summary and JSON -----------------------------------------------------------------------


def test_summary_counts() -> None:
    s = summary(suite(), STATS)
    assert s["robustness"] == round(4 / 7, 6)
    assert (s["tests"], s["variant_items"]) == (3, 9)
    assert (s["passed"], s["failed"], s["skipped"], s["errors"], s["xfailed"]) == (4, 2, 1, 1, 1)
    assert (s["excused"], s["gate"]) == (0, None)
    assert s["original_failures"] == 0
    assert (s["calls"], s["cache_hits"], s["cache_misses"], s["call_errors"]) == (10, 30, 10, 1)
    assert (s["prompt_tokens"], s["completion_tokens"], s["tokens"]) == (900, 334, 1234)
    assert s["cost"] == 0.00123


def test_summary_counts_failed_originals() -> None:
    results = [result(T, "original", "failed"), result("t::b", "original", "error")]
    assert summary(results, {})["original_failures"] == 2


def test_variant_sensitivity_shares() -> None:
    # Wilson 95 % intervals; with fewer than 5 tests the rate is flagged as insufficient data.
    one_of_three = {"low": 0.061492, "high": 0.79234, "insufficient_data": True}
    assert variant_sensitivity(suite()) == {
        "add_period": {"tests": 3, "failed": 1, "share": 0.333333, **one_of_three},
        "lowercase": {  # skipped and error not counted
            "tests": 1,
            "failed": 1,
            "share": 1.0,
            "low": 0.206549,
            "high": 1.0,
            "insufficient_data": True,
        },
        "trailing_space": {  # nor the expected divergence (xfailed)
            "tests": 2,
            "failed": 0,
            "share": 0.0,
            "low": 0.0,
            "high": 0.65762,
            "insufficient_data": True,
        },
    }


def test_build_json_schema(tmp_path: Path) -> None:
    settings = Settings(
        model="openai/fake",
        metric="token_set_ratio",
        threshold=0.6,
        fail_under=0.8,
        baseline=tmp_path / "b.json",
    )
    shuffled = list(reversed(suite()))
    data = build_json(shuffled, STATS, settings)
    assert data["version"] == 1
    assert (data["model"], data["metric"], data["threshold"]) == (
        "openai/fake",
        "token_set_ratio",
        0.6,
    )
    assert data["fail_under"] == 0.8
    assert data["summary"] == summary(suite(), STATS)
    nodeids = [r["nodeid"] for r in data["results"]]
    assert nodeids == sorted(nodeids) and len(nodeids) == 12
    required = {"nodeid", "test", "variant", "metric", "threshold", "score", "outcome"}
    assert all(required <= set(r) for r in data["results"])
    assert json.loads(json.dumps(data)) == data  # JSON-safe as it is


def test_build_json_does_not_mutate_or_alias_results() -> None:
    results = suite()
    data = build_json(results, STATS, Settings())
    data["results"][0]["outcome"] = "changed"
    assert "changed" not in {r["outcome"] for r in results}


def test_build_json_with_a_callable_metric_names_it() -> None:
    def my_metric(original: str, variant: str) -> float:
        return 1.0

    assert build_json([], {}, Settings(metric=my_metric))["metric"].endswith(".my_metric")


# --- terminal -------------------------------------------------------------------------------


def test_terminal_table_puts_failures_first() -> None:
    lines = terminal_summary(suite(), STATS, 0)
    assert lines[0].split() == ["test", "passed", "worst", "variant", "score", "failed", "variants"]
    rows = lines[1:4]
    assert rows[0].split() == [
        "tests/test_prompts.py::test_sign",
        "1/3",
        "add_period",
        "0.210",
        "add_period,",
        "lowercase",
    ]
    assert rows[1].startswith("tests/test_other.py::test_ok ")
    assert rows[1].split()[1] == "1/1"  # the expected divergence is not counted as a failure
    assert rows[1].rstrip().endswith("lowercase (error), trailing_space (xfail)")
    assert rows[2].split()[:4] == [
        "tests/test_prompts.py::test_city[paris]",
        "2/2",
        "add_period",
        "0.750",
    ]


def test_terminal_summary_lines() -> None:
    lines = terminal_summary(suite(), STATS, 0)
    few = "insufficient data (fewer than 5 tests)"
    lowercase = f"  lowercase       changed behaviour in 1 of 1 test (100%; {few})"
    add_period = f"  add_period      changed behaviour in 1 of 3 tests (33%; {few})"
    assert lines.index(lowercase) < lines.index(add_period)
    assert (
        "worst: tests/test_prompts.py::test_sign[add_period] token_set_ratio 0.210 < 0.600" in lines
    )
    assert "  original output: 'Yes, the sky is blue.'" in lines
    assert lines[-2] == (
        "robustness 0.571 (4 of 7 variant items passed, 1 skipped, 1 error,"
        " 1 expected divergence (xfail))"
    )
    assert lines[-1] == "model calls 10, cache hits 30, misses 10, tokens 1234, est. cost $0.0012"


def test_terminal_verbose_has_one_line_per_item() -> None:
    lines = terminal_summary(suite(), STATS, 1)
    table = lines[: lines.index("")]
    assert len(table) == 1 + 12
    assert table[1].split() == [
        "tests/test_prompts.py::test_sign[add_period]",
        "0.210",
        "0.600",
        "FAILED",
    ]
    assert table[2].split()[-1] == "FAILED"
    assert table[3].split() == ["tests/test_other.py::test_ok[lowercase]", "-", "0.600", "ERROR"]
    xfailed = next(row for row in table if "test_ok[trailing_space]" in row)
    assert xfailed.split()[-1] == "xfail"


def test_terminal_quiet_is_one_line() -> None:
    assert terminal_summary(suite(), STATS, -1) == [
        "promptpert: robustness 0.571 (4 of 7 variant items passed, 1 skipped, 1 error,"
        " 1 expected divergence (xfail));"
        " model calls 10, cache hits 30, misses 10, tokens 1234, est. cost $0.0012"
    ]


def test_terminal_without_marked_tests() -> None:
    assert terminal_summary([], {}, 0) == []
    assert terminal_summary([], {"calls": 2, "misses": 2}, 0) == [
        "promptpert: model calls 2, cache hits 0, misses 2, tokens 0, est. cost $0.00"
    ]


def test_terminal_shows_control_characters_escaped() -> None:
    results = [result(T, "add_period", "failed", 0.1, variant_output="\x1b[2Jgone\n")]
    assert "  variant output:  '\\x1b[2Jgone\\n'" in terminal_summary(results, {}, 0)


@pytest.mark.parametrize(
    ("cost", "text"), [(0.0, "$0.00"), (0.00123, "$0.0012"), (0.5, "$0.5000"), (12.345, "$12.35")]
)
def test_cost_format(cost: float, text: str) -> None:
    assert terminal_summary([], {"calls": 1, "cost": cost}, 0)[0].endswith(f"est. cost {text}")


# --- Markdown -------------------------------------------------------------------------------


def test_markdown_summary() -> None:
    text = markdown_summary(suite(), STATS)
    assert text.startswith("### promptpert: robustness 0.571 (4 of 7 variant items passed")
    assert "| `lowercase` | 1 of 1 | 100% |" in text
    assert "| `tests/test_prompts.py::test_sign[add_period]` | 0.210 | 0.600 | FAILED |" in text
    assert "| `tests/test_other.py::test_ok[lowercase]` | - | 0.600 | ERROR |" in text
    assert "test_city" not in text  # nothing failed there
    assert text.endswith("\n")


def test_markdown_escapes_table_breakers() -> None:
    results = [result("t.py::test[a|b`c]", "add_period", "failed", 0.1)]
    text = markdown_summary(results, {})
    assert "| `` t.py::test[a\\|b`c-add_period] `` | 0.100 |" in text


def test_markdown_caps_the_failure_table() -> None:
    results = [result(f"t.py::test_{i:03}", "add_period", "failed", 0.1) for i in range(60)]
    text = markdown_summary(results, {})
    assert text.count("| FAILED |") == 50
    assert "… and 10 more." in text
