"""Reports and CI gates end to end: JSON, HTML, JUnit, step summary, fail-under, baseline."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

THREE_TESTS = """
import pytest

@pytest.mark.promptpert(variants=["add_period", "uppercase", "lower_first"])
@pytest.mark.parametrize("q", ["Tell me a story", "Name a colour", "Count to three"])
def test_q(llm, q):
    llm(q)
"""


def test_json_report_has_the_contract_fields(project, tmp_path):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    report = tmp_path / "out" / "report.json"
    result = pytester.runpytest(f"--promptpert-report={report}")
    result.assert_outcomes(passed=9, failed=3)
    data = json.loads(report.read_text())
    assert data["version"] == 1
    assert len(data["results"]) == 12
    first = next(r for r in data["results"] if r["variant"] == "lower_first")
    for key in ("nodeid", "test", "variant", "metric", "threshold", "score", "outcome"):
        assert key in first
    assert first["outcome"] == "failed" and first["score"] < first["threshold"]
    assert first["test"] == first["nodeid"].replace("-lower_first]", "]")
    summary = data["summary"]
    assert summary["robustness"] == pytest.approx(6 / 9)
    assert summary["calls"] == 12 and summary["cache_misses"] == 12
    assert summary["tokens"] > 0
    # The terminal summary names the sensitive variant.
    result.stdout.fnmatch_lines(["*promptpert*", "*lower_first*3 of 3 tests*"])


def test_html_report_is_self_contained(project, tmp_path):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    html = tmp_path / "report.html"
    pytester.runpytest(f"--promptpert-html={html}")
    text = html.read_text()
    assert text.count('class="cell') >= 9
    assert "http://" not in text and "https://" not in text


def test_junit_properties_and_github_step_summary(project, tmp_path, monkeypatch):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    step_summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    junit = tmp_path / "junit.xml"
    pytester.runpytest(f"--junitxml={junit}")
    props = {
        (case.get("name"), p.get("name")): p.get("value")
        for case in ET.parse(junit).iter("testcase")
        for p in case.iter("property")
    }
    assert props[("test_q[Tell me a story-uppercase]", "promptpert_variant")] == "uppercase"
    assert "robustness" in step_summary.read_text().lower()


@pytest.mark.parametrize(
    ("fail_under", "expected_exit"),
    [("0.5", pytest.ExitCode.OK), ("0.9", pytest.ExitCode.TESTS_FAILED)],
)
def test_fail_under_gates_on_the_robustness_score(project, fail_under, expected_exit):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    result = pytester.runpytest(f"--promptpert-fail-under={fail_under}")
    result.assert_outcomes(passed=9, failed=3)  # failures stay visible
    assert result.ret == expected_exit
    if expected_exit:
        result.stdout.fnmatch_lines(["*robustness score 0.667 is below*0.9*"])


def test_fail_under_does_not_excuse_a_failing_original(project):
    pytester = project("case")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["uppercase"])
        def test_q(llm, promptpert):
            llm("Name a colour")
            assert promptpert.variant != "original"
        """
    )
    result = pytester.runpytest("--promptpert-fail-under=0.1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_baseline_catches_a_regression_above_the_threshold(project):
    pytester = project("echo", threshold=0.3, metric="ratio")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_q(llm):
            llm(open("prompt.txt").read())
        """
    )
    (pytester.path / "prompt.txt").write_text("a long prompt that the model echoes back")
    result = pytester.runpytest("--promptpert-update-baseline")
    result.assert_outcomes(passed=2)
    baseline = json.loads((pytester.path / "promptpert-baseline.json").read_text())
    recorded = baseline["scores"][
        "test_baseline_catches_a_regression_above_the_threshold.py::test_q"
    ]["add_period"]
    assert recorded > 0.95
    # Shorter prompt: the echo now differs more, still above the threshold.
    (pytester.path / "prompt.txt").write_text("short")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [f"*regressed against the baseline*below the recorded {recorded:.3f}*"]
    )


NOISY = """
import pytest

@pytest.mark.promptpert(
    variants=["uppercase", "add_period"], metric="ratio", threshold=0.99, {extra}
)
def test_noisy(llm):
    llm("tell me something", temperature=1.0)
"""


def test_noise_floor_spares_a_sampled_model_within_its_own_spread(project, provider):
    pytester = project("noisy")
    # One sample: the variant's answer differs from the original's by sampling alone.
    pytester.makepyfile(NOISY.replace("{extra}", "samples=1"))
    pytester.runpytest().assert_outcomes(passed=1, failed=2)
    # Three samples: the original differs as much from itself, so the variants pass.
    pytester.makepyfile(NOISY.replace("{extra}", "samples=3"))
    result = pytester.runpytest("--promptpert-report=r.json")
    result.assert_outcomes(passed=3)
    data = json.loads((pytester.path / "r.json").read_text())
    variant = next(r for r in data["results"] if r["variant"] == "uppercase")
    assert variant["noise_floor"] < 0.99 and len(variant["sample_scores"]) == 9
    # samples=1 run: 3 calls; samples=3 run: samples 1 and 2 of each (sample 0 is cached).
    assert provider.calls == 3 + 3 * 2


def test_noise_floor_still_fails_a_fragile_prompt(project):
    pytester = project("case")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["lower_first"], samples=3)
        def test_fragile(llm):
            llm("Tell me something", temperature=1.0)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)


def test_plan_lists_uncached_calls_without_calling(project, provider):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    pytester.runpytest("-k", "Tell")  # caches one test's four requests
    calls = provider.calls
    result = pytester.runpytest("--promptpert-plan")
    assert provider.calls == calls == 4
    result.stdout.fnmatch_lines(["*promptpert plan: 8 model calls not in the cache*"])
    result.assert_outcomes(passed=3, failed=1, skipped=8)  # cached items are judged as usual


def test_max_cost_stops_new_calls_with_a_clear_error(project, provider):
    pytester = project("case")
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.promptpert]\nmodel = "gpt-4o-mini"\napi_base = "{provider.url}"\n',
    )
    pytester.makepyfile(THREE_TESTS)
    result = pytester.runpytest("--promptpert-max-cost=0.00005")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) > 0
    result.stdout.fnmatch_lines(["*--promptpert-max-cost $0.0001 reached*"])
    assert 0 < provider.calls < 12


def test_counts_do_not_depend_on_concurrency(project, provider, tmp_path):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    summaries = []
    for concurrency, cache_dir in (("1", "c1"), ("8", "c8")):
        report = tmp_path / f"{concurrency}.json"
        pytester.runpytest(
            f"--promptpert-concurrency={concurrency}",
            f"--promptpert-cache-dir={cache_dir}",
            f"--promptpert-report={report}",
        )
        data = json.loads(report.read_text())
        assert sum(r["calls"] for r in data["results"]) == 12
        summaries.append({k: data["summary"][k] for k in ("calls", "cache_hits", "cache_misses")})
    assert summaries[0] == summaries[1] == {"calls": 12, "cache_hits": 0, "cache_misses": 12}
    report = tmp_path / "warm.json"
    pytester.runpytest("--promptpert-cache-dir=c8", f"--promptpert-report={report}")
    summary = json.loads(report.read_text())["summary"]
    assert (summary["calls"], summary["cache_hits"], summary["cache_misses"]) == (0, 12, 0)


def test_fail_under_does_not_excuse_a_replay_miss_or_a_strict_xpass(project):
    pytester = project("case")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["uppercase", "add_period"])
        def test_q(llm):
            llm("Name a colour")

        @pytest.mark.promptpert(variants=["uppercase"])
        @pytest.mark.xfail(strict=True, reason="expected to diverge, but it no longer does")
        def test_fixed(llm, promptpert):
            llm("Count to three")
            if promptpert.variant == "original":
                pytest.xfail("only the variant is expected to diverge")
        """
    )
    pytester.runpytest("-k", "not add_period")  # caches all but the add_period requests
    result = pytester.runpytest("--promptpert-cache=replay", "--promptpert-fail-under=0.1")
    result.stdout.fnmatch_lines(
        ["*CacheMissError*", "*test_fixed[[]uppercase[]]*", "[[]XPASS(strict)[]]*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_baseline_update_from_a_partial_run_keeps_the_rest(project):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    pytester.runpytest("--promptpert-update-baseline")
    path = pytester.path / "promptpert-baseline.json"
    full = json.loads(path.read_text())["scores"]
    assert sum(len(v) for v in full.values()) == 9
    pytester.runpytest("--promptpert-update-baseline", "-k", "add_period")
    assert json.loads(path.read_text())["scores"] == full
