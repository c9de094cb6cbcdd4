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


def _junit_suite(path: object) -> ET.Element:
    root = ET.parse(str(path)).getroot()
    return root if root.tag == "testsuite" else root[0]


def test_a_passing_gate_reports_its_excused_divergences_as_xfailed(project, tmp_path, monkeypatch):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    step_summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    junit, html = tmp_path / "junit.xml", tmp_path / "r.html"
    result = pytester.runpytest(
        "-rx", "--promptpert-fail-under=0.5", f"--junitxml={junit}", f"--promptpert-html={html}"
    )
    # pytest's summary, JUnit XML, the HTML and the step summary agree with the exit status.
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=9, xfailed=3)
    line = (
        "promptpert: gate passed: robustness 0.667 >= --promptpert-fail-under=0.5"
        " (3 divergences shown as xfailed, counted in the score)"
    )
    result.stdout.fnmatch_lines(
        [
            line,
            "XFAIL *test_q[[]Tell me a story-lower_first[]] - promptpert: divergence within"
            " --promptpert-fail-under: variant 'lower_first' changed the model's behaviour*",
        ]
    )
    suite = _junit_suite(junit)
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("0", "0", "3")
    assert 'class="gate gate-passed"' in html.read_text()
    assert line.removeprefix("promptpert: ") in step_summary.read_text()


def test_a_failing_gate_fails_the_run_and_says_so_everywhere(project, tmp_path):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    junit, report = tmp_path / "junit.xml", tmp_path / "r.json"
    result = pytester.runpytest(
        "--promptpert-fail-under=0.9", f"--junitxml={junit}", f"--promptpert-report={report}"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # The divergences show as xfailed (each alone fails nothing); the gate is the failure.
    result.assert_outcomes(passed=9, xfailed=3, failed=1)
    line = "promptpert: gate failed: robustness 0.667 < --promptpert-fail-under=0.9"
    result.stdout.fnmatch_lines(
        [f"{line} (3 divergences*", "FAILED promptpert::fail-under - promptpert: gate failed*"]
    )
    suite = _junit_suite(junit)
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "3")
    failed = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failed] == ["fail-under"]
    data = json.loads(report.read_text())
    assert (data["summary"]["failed"], data["summary"]["excused"]) == (3, 3)
    assert data["summary"]["gate"]["status"] == "failed"


def test_expected_divergences_are_not_counted_as_failures(project, tmp_path):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name.endswith("-lower_first]"):
                    item.add_marker(pytest.mark.xfail(reason="known: casing", strict=True))
        """
    )
    report = tmp_path / "r.json"
    result = pytester.runpytest("--promptpert-fail-under=0.9", f"--promptpert-report={report}")
    result.assert_outcomes(passed=9, xfailed=3)
    assert result.ret == pytest.ExitCode.OK
    summary = json.loads(report.read_text())["summary"]
    assert (summary["robustness"], summary["failed"], summary["xfailed"]) == (1.0, 0, 3)
    result.stdout.fnmatch_lines(["*3 expected divergences (xfail)*", "*gate passed*"])


def test_reruns_count_each_item_once(project, tmp_path):
    pytest.importorskip("pytest_rerunfailures")
    pytester = project("case")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["add_period", "uppercase", "lower_first", "double_space"])
        def test_q(llm):
            llm("Name a colour")
        """
    )
    report = tmp_path / "r.json"
    result = pytester.runpytest("--reruns=2", f"--promptpert-report={report}")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (4, 1, 2)
    data = json.loads(report.read_text())
    assert data["summary"]["robustness"] == 0.75
    assert len(data["results"]) == 5
    lower = next(r for r in data["results"] if r["variant"] == "lower_first")
    assert lower["calls"] + lower["cache_hits"] == 2  # the last attempt's own calls only
    result = pytester.runpytest("--reruns=2", "--promptpert-fail-under=0.7")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["promptpert: gate passed: robustness 0.750 >= *0.7*"])


MIXED = """
import pytest

@pytest.mark.promptpert(variants=["add_period", "uppercase", "lower_first"])
@pytest.mark.parametrize("q", ["Tell me a story", "Name a colour", "Count to three"])
def test_a(llm, q):
    llm(q)

def test_b_plain():
    {plain}

@pytest.mark.promptpert(variants=["add_period", "uppercase", "lower_first"])
@pytest.mark.parametrize("q", ["Say hello", "Pick a number"])
def test_c(llm, q):
    llm(q)
"""


def test_variant_failures_alone_do_not_stop_a_gated_run_under_x(project):
    pytester = project("case")
    pytester.makepyfile(MIXED.replace("{plain}", "pass"))
    result = pytester.runpytest("-x", "--promptpert-fail-under=0.5")
    result.assert_outcomes(passed=16, xfailed=5)  # all 21 items ran
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    ("args", "plain", "expected_exit", "why"),
    [
        (["-x"], "assert False", pytest.ExitCode.TESTS_FAILED, "stopping after 1 failures"),
        (["--maxfail=1"], "assert False", pytest.ExitCode.TESTS_FAILED, "stopping after 1*"),
        ([], "raise KeyboardInterrupt", pytest.ExitCode.INTERRUPTED, "interrupted"),
    ],
)
def test_a_run_cut_short_never_passes_the_gate(project, args, plain, expected_exit, why):
    pytester = project("case")
    pytester.makepyfile(MIXED.replace("{plain}", plain))
    # no_reraise_ctrlc: the inner run's KeyboardInterrupt stays in the inner run
    result = pytester.runpytest(*args, "--promptpert-fail-under=0.1", no_reraise_ctrlc=True)
    assert result.ret == expected_exit
    result.stdout.fnmatch_lines(
        [f"promptpert: gate failed: the run stopped after 13 of 21 items: {why}; *"]
    )


def test_collect_only_is_not_judged_by_the_gate(project):
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    result = pytester.runpytest("--collect-only", "--promptpert-fail-under=0.9")
    assert result.ret == pytest.ExitCode.OK
    assert "promptpert: gate" not in result.stdout.str()


def test_a_collection_error_is_not_excused_by_the_gate(project):
    pytester = project("case")
    pytester.makepyfile(test_ok=THREE_TESTS, test_broken="import no_such_module_here")
    result = pytester.runpytest("--continue-on-collection-errors", "--promptpert-fail-under=0.1")
    result.assert_outcomes(passed=9, xfailed=3, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result = pytester.runpytest("--promptpert-fail-under=0.1")
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_failures_that_judge_no_behaviour_are_errors_not_divergences(project, tmp_path):
    pytester = project("case")
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def database():
            raise RuntimeError("no database")

        @pytest.mark.promptpert(variants=["uppercase"])
        async def test_async(llm):
            await llm.acall("Name a colour")

        @pytest.mark.promptpert(variants=["uppercase"])
        def test_fixture(llm, database):
            llm("Name a colour")

        @pytest.mark.promptpert(variants=["uppercase"])
        def test_fine(llm):
            llm("Name a colour")
        """
    )
    report = tmp_path / "r.json"
    result = pytester.runpytest("--promptpert-fail-under=0.1", f"--promptpert-report={report}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # not excused by the gate
    result.assert_outcomes(passed=2, failed=2, errors=2)
    result.stdout.fnmatch_lines(["promptpert: gate passed: robustness 0.333 >= *"])
    data = json.loads(report.read_text())
    variants = {r["nodeid"].split("::")[1]: r["outcome"] for r in data["results"]}
    assert variants["test_async[uppercase]"] == "error"
    assert variants["test_fixture[uppercase]"] == "error"
    summary = data["summary"]
    assert (summary["failed"], summary["errors"], summary["passed"]) == (0, 2, 1)
    uppercase = summary["variants"]["uppercase"]
    assert (uppercase["tests"], uppercase["failed"]) == (1, 0)  # the errors are not counted


def test_the_tests_own_failure_in_a_variant_shows_prompt_output_and_score(project, tmp_path):
    pytester = project("case")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["lower_first"], threshold=0.0)
        def test_own(llm):
            assert "careful" in llm("Name a colour")
        """
    )
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest(f"--junitxml={junit}")
    result.assert_outcomes(passed=1, failed=1)
    context = [
        "*- promptpert -*",
        "the test failed on variant 'lower_first'; its llm() calls so far:",
        "  original prompt: 'Name a colour'",
        "  variant prompt:  'name a colour'",
        "  original output: 'A careful answer about name a colour.'",
        "  variant output:  'zzz qqq xxx'",
        "  levenshtein similarity 0.054, threshold 0.000: the comparison held",
    ]
    result.stdout.fnmatch_lines(context)
    text = result.stdout.str()
    assert "ItemRun(" not in text and "Settings(" not in text
    assert "<promptpert llm, variant 'lower_first'>('Name a colour')" in text
    failure = _junit_suite(junit).find("testcase/failure")
    assert failure is not None and "variant prompt:  'name a colour'" in (failure.text or "")


def test_xdist_counts_each_request_once(project, tmp_path):
    pytest.importorskip("xdist")
    pytester = project("case")
    pytester.makepyfile(THREE_TESTS)
    counts = []
    # The gate is judged on the controller too: a failing one, then a passing one.
    for name, fail_under in (("cold", "0.9"), ("warm", "0.5")):
        report = tmp_path / f"{name}.json"
        result = pytester.runpytest_subprocess(
            "-n", "2", f"--promptpert-report={report}", f"--promptpert-fail-under={fail_under}"
        )
        summary = json.loads(report.read_text())["summary"]
        counts.append((summary["calls"], summary["cache_hits"], summary["cache_misses"]))
        counts.append((result.ret, summary["gate"]["status"], result.parseoutcomes()["xfailed"]))
    assert counts == [(12, 0, 12), (1, "failed", 3), (0, 12, 0), (0, "passed", 3)]


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


def test_the_sampled_fake_model_answers_as_a_function_of_the_request(provider):
    import urllib.request

    def ask(prompt, **extra):
        body = {"model": "noisy", "messages": [{"role": "user", "content": prompt}], **extra}
        request = urllib.request.Request(
            f"{provider.url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())["choices"][0]["message"]["content"]

    first = [ask("tell me") for _ in range(3)]
    ask("something else")
    provider.reset()
    assert [ask("tell me") for _ in range(3)] == first  # what was asked before does not matter
    assert len(set(first)) == 3  # samples differ
    assert ask("tell me", seed=1) == ask("tell me", seed=1) == first[1]


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
