"""End-to-end: pytester runs of the plugin against the fake provider on loopback."""

from __future__ import annotations

import json

import pytest
from conftest import SENTINEL_KEY

SIGN = "create a sign with a message on it that describes your situation"

SIGN_TEST = f'''
import pytest

@pytest.mark.promptpert(variants=["add_period", "strip_period", "lower_first", "uppercase"])
def test_sign(llm):
    assert llm("{SIGN}")
'''

#: A marked test that makes no model call: enough for the header, which needs marked items.
MARKED_NO_CALL = """
import pytest

@pytest.mark.promptpert(variants=["add_period"])
def test_a():
    pass
"""


def test_expands_and_flags_the_period_variant(project):
    pytester = project("period")
    pytester.makepyfile(SIGN_TEST)
    result = pytester.runpytest("-v", "-rs")
    result.stdout.fnmatch_lines(
        [
            "*test_sign[[]original[]] PASSED*",
            "*test_sign[[]add_period[]] FAILED*",
            "*test_sign[[]strip_period[]] SKIPPED*",
            "*test_sign[[]lower_first[]] SKIPPED*",
            "*test_sign[[]uppercase[]] PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*variant 'add_period' changed the model's behaviour*",
            "*original prompt: 'create a sign with a message on it that describes your situation'",
            "*variant prompt:  'create a sign with a message on it that describes your situation.'",
        ]
    )
    result.stdout.fnmatch_lines(["*strip_period* leaves the prompt unchanged*"])
    result.assert_outcomes(passed=2, failed=1, skipped=2)


def test_original_is_called_once_for_all_variants_and_rerun_is_free(project, provider):
    pytester = project("period")
    pytester.makepyfile(SIGN_TEST)
    pytester.runpytest().assert_outcomes(passed=2, failed=1, skipped=2)
    # original + add_period + uppercase; the no-op variants reuse the original's answer.
    assert sorted(provider.prompts()) == sorted([SIGN, SIGN + ".", SIGN.upper()])
    pytester.runpytest().assert_outcomes(passed=2, failed=1, skipped=2)
    assert provider.calls == 3


def test_k_selects_a_variant_which_alone_gets_the_same_verdict(project, provider):
    pytester = project("period")
    pytester.makepyfile(SIGN_TEST)
    result = pytester.runpytest("-k", "add_period", "-v")
    result.assert_outcomes(failed=1, deselected=4)
    result.stdout.fnmatch_lines(["*test_sign[[]add_period[]] FAILED*"])
    # Run alone, the item still fetched its original, and nothing for the unselected variants.
    assert sorted(provider.prompts()) == sorted([SIGN, SIGN + "."])


def test_variant_id_is_last_after_other_parameters(project):
    pytester = project("case")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("question", ["What is up", "Who are you"], ids=["q1", "q2"])
        @pytest.mark.promptpert(variants=["lower_first", "add_period"])
        def test_q(llm, question):
            llm(question)
        """
    )
    result = pytester.runpytest("-v", "-k", "lower_first")
    result.stdout.fnmatch_lines(
        ["*test_q[[]q1-lower_first[]] FAILED*", "*test_q[[]q2-lower_first[]] FAILED*"]
    )
    result.assert_outcomes(failed=2, deselected=4)


def test_class_and_module_markers_closest_wins(project):
    pytester = project("period")
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.promptpert(variants=["add_period"], threshold=0.0)

        def test_module_level(llm):
            llm("hello")

        @pytest.mark.promptpert(threshold=0.9)
        class TestSign:
            def test_in_class(self, llm, promptpert):
                assert promptpert.variant in ("original", "add_period")
                llm("hello")
        """
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        [
            "*test_module_level[[]add_period[]] PASSED*",
            "*TestSign::test_in_class[[]add_period[]] FAILED*",
        ]
    )


def test_chat_messages_variant_changes_only_the_last_user_message(project, provider):
    pytester = project("echo")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["uppercase"], threshold=0.0)
        def test_chat(llm, promptpert):
            out = llm([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "second question"},
            ])
            expected = "second question"
            assert out == (expected.upper() if promptpert.variant == "uppercase" else expected)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    sent = [r["body"]["messages"] for r in provider.requests]
    assert {m[-1]["content"] for m in sent} == {"second question", "SECOND QUESTION"}
    assert all(m[0]["content"] == "be brief" and m[1]["content"] == "first question" for m in sent)


def test_perturb_targets_one_slot_of_a_template(project, provider):
    pytester = project("echo")
    pytester.makepyfile(
        """
        import pytest

        TEMPLATE = "Context: Paris is in France.\\nQuestion: {q}\\nAnswer:"

        @pytest.mark.promptpert(variants=["uppercase", "add_period"], metric="exact")
        def test_template(llm, promptpert):
            llm(TEMPLATE.format(q=promptpert.perturb("where is paris")))
        """
    )
    result = pytester.runpytest("-v")
    # exact ignores case, so only the period is a change of behaviour
    result.stdout.fnmatch_lines(
        ["*test_template[[]uppercase[]] PASSED*", "*[[]add_period[]] FAILED*"]
    )
    assert sorted(provider.prompts()) == sorted(
        [
            "Context: Paris is in France.\nQuestion: where is paris\nAnswer:",
            "Context: Paris is in France.\nQuestion: WHERE IS PARIS\nAnswer:",
            "Context: Paris is in France.\nQuestion: where is paris.\nAnswer:",
        ]
    )


def test_replay_miss_fails_the_item_naming_model_and_prompt(project, provider):
    pytester = project("stable", cache="replay")
    pytester.makepyfile(SIGN_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(["*cache miss in replay mode*'openai/stable'*'create a sign*"])
    assert provider.calls == 0


def test_refresh_and_off_modes_call_again(project, provider):
    pytester = project("stable")
    pytester.makepyfile(SIGN_TEST)
    pytester.runpytest().assert_outcomes(passed=3, skipped=2)
    assert provider.calls == 3
    pytester.runpytest("--promptpert-cache=refresh").assert_outcomes(passed=3, skipped=2)
    assert provider.calls == 6
    pytester.runpytest("--promptpert-cache=off").assert_outcomes(passed=3, skipped=2)
    assert provider.calls == 9
    pytester.runpytest("--promptpert-cache=replay").assert_outcomes(passed=3, skipped=2)
    assert provider.calls == 9


def test_unmarked_test_gets_the_plain_cached_client(project, provider):
    pytester = project("echo")
    pytester.makepyfile(
        """
        def test_plain(llm, promptpert):
            assert promptpert.variant == "original"
            assert promptpert.perturb("x") == "x"
            assert llm("just this") == "just this"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert provider.prompts() == ["just this"]


def test_precedence_marker_over_command_line_over_pyproject(project):
    pytester = project("period", threshold=0.99, variants=["add_period"])
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(threshold=0.0)
        def test_marker_wins(llm):
            llm("hello")

        @pytest.mark.promptpert
        def test_command_line_wins(llm):
            llm("hello")
        """
    )
    result = pytester.runpytest("-v", "--promptpert-threshold=0.5")
    result.stdout.fnmatch_lines(
        [
            "*test_marker_wins[[]add_period[]] PASSED*",
            "*test_command_line_wins[[]add_period[]] FAILED*",
            "*< threshold 0.500*",
        ]
    )
    result = pytester.runpytest("-v")  # pyproject's 0.99
    result.stdout.fnmatch_lines(["*test_command_line_wins[[]add_period[]] FAILED*"])


@pytest.mark.parametrize(
    ("setting", "option", "expected"),
    [
        (
            {"threshold": '"high"'},
            [],
            "*[[]tool.promptpert[]] threshold in *pyproject.toml: 'high' is not a number*",
        ),
        (
            {},
            ["--promptpert-threshold=1.5"],
            "*--promptpert-threshold: '1.5' is outside [[]0, 1[]]*",
        ),
        ({"colour": '"red"'}, [], "*unknown key 'colour'*"),
        ({}, ["--promptpert-variants=add_period,nope"], "*unknown variant 'nope'*"),
        ({}, ["--promptpert-metric=cosine"], "*--promptpert-metric*unknown metric 'cosine'*"),
    ],
)
def test_bad_configuration_is_a_usage_error_naming_its_source(pytester, setting, option, expected):
    lines = ["[tool.promptpert]"] + [f"{k} = {v}" for k, v in setting.items()]
    pytester.makefile(".toml", pyproject="\n".join(lines))
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("variants=['add_period', 'bogus']", "*test_x*unknown variant 'bogus'*"),
        ("threshold=2", "*test_x*threshold*2 is outside [[]0, 1[]]*"),
        ("treshold=0.5", "*test_x*unknown argument 'treshold'*"),
        ("metric='nope'", "*test_x*unknown metric 'nope'*"),
        ("samples=0", "*test_x*samples*must be >= 1*"),
    ],
)
def test_bad_marker_is_a_collection_error_naming_test_and_value(project, marker, expected):
    pytester = project("stable")
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.promptpert({marker})
        def test_x(llm):
            llm("hi")
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([expected])


def test_help_markers_and_header(project):
    pytester = project("stable")
    help_text = pytester.runpytest("--help").stdout.str()
    for option in ("model", "variants", "threshold", "metric", "cache-dir", "cache"):
        assert f"--promptpert-{option}" in help_text
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.promptpert(variants=None, threshold=None, metric=None, samples=None)*"]
    )
    pytester.makepyfile(MARKED_NO_CALL)
    result = pytester.runpytest("--strict-markers")
    result.stdout.fnmatch_lines(
        [
            "collected 2 items",
            "promptpert: model=openai/stable (pyproject.toml), *cache=*.promptpert_cache (auto)*",
        ]
    )


def test_conftest_hooks_add_a_variant_and_a_metric(project, provider):
    pytester = project("echo")
    pytester.makeconftest(
        """
        def pytest_promptpert_add_variants(config):
            return {"shout": lambda text: text.upper() + "!!!"}

        def pytest_promptpert_add_metrics(config):
            return {"same_length": lambda a, b: 1.0 if len(a) == len(b) else 0.0}
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["shout", "uppercase"], metric="same_length")
        def test_x(llm):
            llm("hey you")
        """
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*test_x[[]shout[]] FAILED*", "*test_x[[]uppercase[]] PASSED*"])
    assert "HEY YOU!!!" in provider.prompts()


def test_no_credential_in_cache_or_output(project, provider):
    pytester = project("period")
    pytester.makepyfile(SIGN_TEST)
    result = pytester.runpytest("-v", "-rA")
    assert SENTINEL_KEY not in result.stdout.str() + result.stderr.str()
    blobs = b"".join(p.read_bytes() for p in pytester.path.rglob("*") if p.is_file())
    assert SENTINEL_KEY.encode() not in blobs


def test_fully_cached_run_never_imports_litellm(project, provider):
    pytester = project("period")
    pytester.makepyfile(SIGN_TEST)
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            with open("modules.txt", "w") as f:
                f.write("litellm" if "litellm" in sys.modules else "clean")
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=2, failed=1, skipped=2)
    assert (pytester.path / "modules.txt").read_text() == "litellm"
    pytester.runpytest_subprocess().assert_outcomes(passed=2, failed=1, skipped=2)
    assert (pytester.path / "modules.txt").read_text() == "clean"
    assert provider.calls == 3


def test_xdist_gives_the_serial_verdicts_without_duplicate_calls(project, provider):
    pytest.importorskip("xdist")
    pytester = project("case")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("q", ["Tell me a joke", "Name a colour", "Count to three"])
        @pytest.mark.promptpert(
            variants=["lower_first", "add_period", "uppercase", "trailing_space"]
        )
        def test_q(llm, q):
            llm(q)
        """
    )
    result = pytester.runpytest_subprocess("-n", "3", "--promptpert-report=r.json")
    result.assert_outcomes(passed=12, failed=3)
    assert provider.calls == 15  # unique requests: 3 originals + 3 x 4 variants
    # The controller merged the workers' records and statistics.
    data = json.loads((pytester.path / "r.json").read_text())
    assert len(data["results"]) == 15
    assert data["summary"]["calls"] == 15
    assert data["summary"]["robustness"] == pytest.approx(9 / 12)
    assert len(set(provider.prompts())) == 15
    pytester.runpytest("-p", "no:xdist").assert_outcomes(passed=12, failed=3)
    assert provider.calls == 15
    # refresh: each answer refreshed once per run, not once per worker
    result = pytester.runpytest_subprocess("-n", "3", "--promptpert-cache=refresh")
    result.assert_outcomes(passed=12, failed=3)
    assert provider.calls == 30


def test_plugin_leaves_no_trace_in_projects_that_do_not_use_it(pytester):
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".promptpert_cache").exists()
    assert "promptpert" not in result.stdout.str().split("collected")[1]  # no summary section


def test_acall_in_a_marked_test_is_compared_too(project):
    pytester = project("period")
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.promptpert(variants=["add_period", "uppercase"])
        def test_async(llm):
            asyncio.run(llm.acall("create a sign"))
        """
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        ["*test_async[[]add_period[]] FAILED*", "*test_async[[]uppercase[]] PASSED*"]
    )


def test_p_no_promptpert_turns_the_plugin_off(pytester):
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest_subprocess("-p", "no:promptpert", "--markers")
    assert "promptpert" not in result.stdout.str()
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.promptpert(*"])


def test_perturb_puts_back_only_the_whole_slot(project, provider):
    pytester = project("echo")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["lowercase"], metric="exact")
        def test_slot(llm, promptpert):
            llm(f"Answer this question: {promptpert.perturb('Hi')}")
        """
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*test_slot[[]lowercase[]] PASSED*"])  # exact ignores case
    assert sorted(provider.prompts()) == [
        "Answer this question: Hi",
        "Answer this question: hi",
    ]


def test_a_prompt_with_no_user_message_fails_only_the_variant_items(project):
    pytester = project("echo")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_system_only(llm):
            llm([{"role": "system", "content": "say hi"}])
        """
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        ["*test_system_only[[]original[]] PASSED*", "*test_system_only[[]add_period[]] FAILED*"]
    )


def test_conftest_hook_replaces_the_header(project):
    pytester = project("stable")
    pytester.makeconftest(
        """
        def pytest_promptpert_header(config, settings):
            return f"robustness suite on {settings.model}"
        """
    )
    pytester.makepyfile(MARKED_NO_CALL)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["collected 2 items", "robustness suite on openai/stable"])
    assert "promptpert: model=" not in result.stdout.str()
