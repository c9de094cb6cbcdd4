"""Findings: controls and provider noise, collapsed outputs, inputs ignored, the prompt lint,
and the statistics of variant sensitivity. Pure functions first, then pytester runs against the
fake provider on loopback."""

# Curly quotes are what the lint looks for.

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_promptpert.findings import annotate, collapse_reason, finding_lines, wilson
from pytest_promptpert.html_report import render_html
from pytest_promptpert.lint import check_prompt, effects
from pytest_promptpert.report import build_json, terminal_summary
from pytest_promptpert.scoring import robustness_score
from pytest_promptpert.settings import Settings

# --- collapsed outputs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "cut", "reason"),
    [
        ("", False, "empty output"),
        (" \n\t", False, "whitespace-only output"),
        ("<start_of_image>" * 40, False, "'<start_of_image>' repeated 40 times to the end"),
        (
            "Sure! " + "<start_of_image> " * 6,
            False,
            "'<start_of_image>' repeated 6 times to the end after 6 other chars",
        ),
        ("The answer is no no no", True, "cut at max_tokens while repeating 'no' (3 times)"),
    ],
)
def test_collapsed_outputs_are_flagged_with_a_reason(output: str, cut: bool, reason: str) -> None:
    assert collapse_reason(output, cut=cut) == reason


@pytest.mark.parametrize(
    "output",
    [
        "Paris",
        "The answer is no no no",  # not cut at max_tokens: a short repeat is language
        "- a\n- b\n- c\n- d\n- e",
        "1000000",
        "Here is a sign:\n- I am stuck in a data centre\n- please send help",
    ],
)
def test_ordinary_outputs_are_not_collapsed(output: str) -> None:
    assert collapse_reason(output) is None


@given(
    output=st.text(st.sampled_from("ab <>\n")) | st.text(),
    cut=st.booleans(),
)
def test_collapse_check_never_raises_and_a_flag_has_a_reason(output: str, cut: bool) -> None:
    reason = collapse_reason(output, cut=cut)
    assert reason is None or reason
    if output.strip() and len(set(output.strip())) > 1 and reason is not None:
        assert "repeat" in reason


# --- Wilson intervals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failed", "tests", "expected"),
    # Reference values: Wilson (1927) score interval, z = 1.96 (e.g. statsmodels
    # proportion_confint(method="wilson")).
    [(5, 10, (0.2366, 0.7634)), (0, 10, (0.0, 0.2775)), (1, 3, (0.0615, 0.7923))],
)
def test_wilson_interval_matches_reference_values(
    failed: int, tests: int, expected: tuple[float, float]
) -> None:
    assert wilson(failed, tests) == pytest.approx(expected, abs=1e-4)


# --- run-level findings over records -------------------------------------------------------


def record(test: str, variant: str, outcome: str, **extra: Any) -> dict[str, Any]:
    base = {
        "nodeid": f"{test}[{variant}]",
        "test": test,
        "variant": variant,
        "metric": "levenshtein",
        "threshold": 0.5,
        "score": None if variant == "original" else (0.9 if outcome == "passed" else 0.1),
        "outcome": outcome,
    }
    return {**base, **extra}


def noisy_run() -> list[dict[str, Any]]:
    return [
        record("t::noisy", "original", "passed"),
        record("t::noisy", "control", "failed"),
        record("t::noisy", "add_period", "failed"),
        record("t::noisy", "uppercase", "passed"),
        record("t::steady", "original", "passed"),
        record("t::steady", "control", "passed"),
        record("t::steady", "add_period", "failed"),
        record("t::steady", "uppercase", "passed"),
    ]


def test_failures_in_a_test_whose_control_failed_are_provider_noise() -> None:
    marked = annotate(noisy_run())
    noise = [(r["test"], r["variant"]) for r in marked if r.get("noise")]
    assert noise == [("t::noisy", "add_period")]
    # Counted: steady's add_period (failed) and both uppercase items; controls and noise not.
    assert robustness_score(marked) == pytest.approx(2 / 3)
    lines = terminal_summary(marked, {}, 0)
    assert lines[0].startswith("PROVIDER NOISE: control failed in 1 of 2 tests")
    assert "1 variant failure in those tests are within provider noise" in lines[0]
    assert lines[-2].endswith(
        "(2 of 3 variant items passed, 1 within provider noise, not"
        " counted, 2 controls not counted)"
    )


def test_annotate_is_idempotent_and_leaves_its_input_alone() -> None:
    run = noisy_run()
    once = annotate(run)
    assert annotate(once) == once
    assert not any("noise" in r for r in run)


def test_the_same_output_everywhere_is_flagged_as_input_ignored() -> None:
    same = {"original_output": "OK", "variant_output": "OK"}
    results = [
        record("t::a", "original", "passed", output="OK"),
        record("t::a", "add_period", "passed", **same),
        record("t::b", "original", "passed", output="OK"),
        record("t::b", "uppercase", "passed", **same),
        # Constant within itself, but no other test shares its output: not flagged.
        record("t::c", "original", "passed", output="Paris"),
        record("t::c", "uppercase", "passed", original_output="Paris", variant_output="Paris"),
    ]
    marked = annotate(results)
    assert sorted({r["test"] for r in marked if r.get("ignores_input")}) == ["t::a", "t::b"]
    assert any(line.startswith("INPUT IGNORED? 2 tests") for line in finding_lines(marked))


def test_collapsed_original_comes_first_in_summary_json_and_html() -> None:
    results = annotate(
        [
            record(
                "t::sign",
                "original",
                "passed",
                collapsed={"original": True},
                collapse_reasons={"original": "'<start_of_image>' repeated 8 times to the end"},
            ),
            record(
                "t::sign",
                "add_period",
                "failed",
                collapsed={"original": True, "variant": False},
                collapse_reasons={"original": "'<start_of_image>' repeated 8 times to the end"},
            ),
        ]
    )
    lines = terminal_summary(results, {}, 0)
    assert lines[:2] == [
        "COLLAPSED OUTPUTS: 1 original, 0 variant (empty, blank or a unit repeated to the end):",
        "  t::sign [original]: '<start_of_image>' repeated 8 times to the end",
    ]
    data = build_json(results, {}, Settings())
    assert data["summary"]["collapsed"] == [
        {
            "test": "t::sign",
            "variant": "original",
            "reason": "'<start_of_image>' repeated 8 times to the end",
        }
    ]
    page = render_html(data)
    assert page.count('class="orig o-passed collapsed"') == 1
    assert page.count('class="cell o-failed collapsed"') == 1
    assert "Collapsed ORIGINAL output ⚠" in page


# --- the lint ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "rules"),
    [
        ("Question: What is 2+2?\nAnswer: ", ["space_after_cue"]),
        ("create a sign with a message on it", ["no_terminal_punctuation", "lower_first"]),
        ("What is  the capital of France?", ["double_space"]),
        ("What is the plural of “mouse”?", ["quotes"]),
        ("Don't say “mouse”.", ["quotes"]),
        # Well formed: nothing to say.
        ("Question: What is 2+2?\nAnswer:", []),
        ("Create a sign that describes your situation.", []),
        ('What is the plural of "mouse"?', []),
        ("", []),
    ],
)
def test_lint_rules(prompt: str, rules: list[str]) -> None:
    assert [f.rule for f in check_prompt(prompt)] == rules


def test_lint_names_mixed_quotes_and_quotes_the_measured_effect() -> None:
    (finding,) = check_prompt("Don't say “mouse”.")
    assert finding.message == "mixed straight and curly quotes: “ ” '"
    (cue,) = check_prompt("Question: What is 2+2?\nAnswer: ")
    measured = effects()["rules"]["space_after_cue"]["measurements"]
    assert cue.effect.startswith(
        f"trailing_space changed {measured[0]['changed']} of {measured[0]['questions']} answers"
    )
    assert cue.effect.endswith(f"on local/gemma-3-270m, {effects()['source']}")


def test_every_lint_rule_has_a_measured_effect() -> None:
    rules = effects()["rules"]
    assert set(rules) == {
        "space_after_cue",
        "no_terminal_punctuation",
        "lower_first",
        "double_space",
        "quotes",
    }
    for entry in rules.values():
        assert {m["setting"] for m in entry["measurements"]} == {"zero-shot", "few-shot"}
        assert all(0 <= m["changed"] <= m["questions"] > 0 for m in entry["measurements"])


# --- end to end ----------------------------------------------------------------------------

FLAKY_TEST = """
import pytest

@pytest.mark.promptpert(variants=["control", "trailing_space"])
def test_colour(llm):
    llm("Name a colour")
"""


def test_control_passes_on_a_deterministic_provider(project, provider):
    pytester = project("period")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["control", "add_period"])
        def test_sign(llm):
            llm("Create a sign")
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-v", "--promptpert-report=r.json")
    result.stdout.fnmatch_lines(["*test_sign[[]control[]] PASSED*"])
    result.assert_outcomes(passed=2, failed=1)
    # The control asked the unchanged prompt again: one more call, not a cache hit.
    assert provider.prompts().count("Create a sign") == 2
    data = json.loads((pytester.path / "r.json").read_text())
    assert data["summary"]["controls"] == {"tests": 1, "failed": 0, "noise_failures": 0}
    assert data["summary"]["robustness"] == 0.0  # add_period failed; the control not counted
    assert "PROVIDER NOISE" not in result.stdout.str()


def test_failed_control_marks_the_tests_variant_failures_as_noise(project, provider):
    pytester = project("flaky")
    pytester.makepyfile(FLAKY_TEST)
    result = pytester.runpytest(
        "-p", "no:randomly", "-v", "--promptpert-report=r.json", "--promptpert-html=r.html"
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*control: the unchanged prompt asked again gave another answer*",
            "*PROVIDER NOISE: control failed in 1 of 1 tests*1 variant failure in those tests"
            " are within provider noise*",
            "*robustness n/a (0 of 0 variant items passed, 1 within provider noise, not counted,"
            " 1 control not counted)",
        ]
    )
    data = json.loads((pytester.path / "r.json").read_text())
    by_variant = {r["variant"]: r for r in data["results"]}
    assert by_variant["trailing_space"]["noise"] is True
    assert "noise" not in by_variant["control"]
    assert data["summary"]["noise"] == 1
    assert "trailing_space" not in data["summary"]["variants"]  # noise: not a sensitivity
    assert 'class="cell o-failed noise"' in (pytester.path / "r.html").read_text()
    # The control's answer is its own cache entry: a rerun replays the same verdicts.
    calls = provider.calls
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1, failed=2)
    assert provider.calls == calls


def test_collapsed_original_is_flagged_in_message_summary_and_report(project):
    pytester = project("period")  # no final period: eight <start_of_image> tokens
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_sign(llm):
            llm("Create a sign")
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--promptpert-report=r.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*COLLAPSED original output: '<start_of_image>' repeated 8 times to the end"
            " (every variant is compared with a degenerate answer)",
            "*COLLAPSED OUTPUTS: 1 original, 0 variant*",
            "*test_sign [[]original[]]: '<start_of_image>' repeated 8 times to the end",
        ]
    )
    data = json.loads((pytester.path / "r.json").read_text())
    by_variant = {r["variant"]: r for r in data["results"]}
    assert by_variant["original"]["collapsed"] == {"original": True}
    assert by_variant["add_period"]["collapsed"] == {"original": True, "variant": False}


LINT_TEST = """
import json
import pytest

@pytest.mark.promptpert(variants=["add_period", "control"])
def test_risky(llm):
    answer = llm("what is 2+2?\\nAnswer: ")
    assert json.loads(answer)["value"] == 4  # fails on the lint's placeholder answer

@pytest.mark.promptpert
def test_clean(llm):
    assert llm("Question: What is 2+2?\\nAnswer:") == "4"

@pytest.mark.promptpert
def test_no_call(llm):
    pass

def test_unmarked(llm):
    llm("never sent")
"""


def test_lint_only_checks_prompts_and_calls_no_model(project, provider):
    pytester = project("stable")
    pytester.makepyfile(LINT_TEST)
    result = pytester.runpytest(
        "-p", "no:randomly", "--promptpert-lint", "-rs", "--promptpert-report=r.json"
    )
    result.assert_outcomes(failed=1, skipped=2, deselected=1 + 2 + 14 + 14)
    assert provider.calls == 0
    result.stdout.fnmatch_lines(
        [
            "*promptpert lint: risky formatting in test_lint_only_checks_prompts_and_calls*",
            "*whitespace ' ' after the answer cue 'Answer:' at the end of the prompt",
            "*measured: trailing_space changed *",
            "*starts with a lower-case letter 'w'",
        ]
    )
    result.stdout.fnmatch_lines(["*no risky formatting in 1 prompt(s)*"])
    result.stdout.fnmatch_lines(["*made no llm() call to check*"])
    result.stdout.fnmatch_lines(
        ["promptpert lint: 2 findings in the prompts of 3 tests; no model*"]
    )
    lint = json.loads((pytester.path / "r.json").read_text())["summary"]["lint"]
    assert [f["rule"] for f in lint] == ["space_after_cue", "lower_first"]
    assert not (pytester.path / ".promptpert_cache").exists()


def test_lint_findings_appear_once_per_prompt_in_a_normal_run(project):
    pytester = project("stable")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["add_period", "uppercase"])
        def test_sign(llm):
            llm("create a sign")
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--promptpert-report=r.json")
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    assert out.count("starts with a lower-case letter 'c'") == 1
    lint = json.loads((pytester.path / "r.json").read_text())["summary"]["lint"]
    assert [f["rule"] for f in lint] == ["no_terminal_punctuation", "lower_first"]
