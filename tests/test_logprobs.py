"""Log-prob sensitivity: probes, the shift of the original's answer, and where it is reported.

The fake provider answers a request for log-probabilities with numbers that follow the
prompt's form (``fake_provider.unease``): the ``stable`` model gives the same answer to
"What is the capital of France?" without its question mark, but 0.38 likely instead of 0.95
for each of its first three tokens, a shift of 3 ln(0.4) = -2.749.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from pytest_promptpert.logprob_report import detail_lines, early_warnings
from pytest_promptpert.logprobs import (
    ANSWER_TOKENS,
    TOP_LOGPROBS,
    TokenLogprob,
    parse_choice,
    sensitivity,
    shift,
)
from pytest_promptpert.request import Completion, Request

# --- pure: parsing and the shift ------------------------------------------------------------


def _llama(tokens: list[tuple[str, float, dict[str, float]]]) -> dict[str, Any]:
    """A text-completion choice as llama-cpp-python's server sends it with ``logprobs``."""
    return {
        "text": "".join(t for t, _, _ in tokens),
        "logprobs": {
            "tokens": [t for t, _, _ in tokens],
            "text_offset": [0] * len(tokens),
            "token_logprobs": [lp for _, lp, _ in tokens],
            # llama.cpp lists the best n in order, then adds the chosen token
            "top_logprobs": [{**top, t: lp} for t, lp, top in tokens],
        },
    }


ORIGINAL = _llama(
    [
        (" Paris", -0.1, {" Paris": -0.1, " London": -2.6, " The": -3.0}),
        (".", -0.2, {".": -0.2, ",": -1.9, "\n": -2.5}),
        ("\n", -0.3, {"\n": -0.3, " It": -1.5, "!": -2.0}),
    ]
)


def test_llama_cpp_text_completion_logprobs_are_parsed_best_first() -> None:
    parsed = parse_choice(ORIGINAL)
    assert parsed is not None
    assert [p.token for p in parsed] == [" Paris", ".", "\n"]
    assert parsed[0] == TokenLogprob(
        " Paris", -0.1, ((" Paris", -0.1), (" London", -2.6), (" The", -3.0))
    )
    assert parse_choice({"text": "x", "logprobs": None}) is None  # not sent: absent
    assert parse_choice({"text": "", "logprobs": {"tokens": [], "token_logprobs": []}}) == ()


def test_shift_follows_the_variant_while_it_keeps_the_original_path() -> None:
    original = parse_choice(ORIGINAL)
    same_then_comma = parse_choice(
        _llama(
            [
                (" Paris", -0.7, {" Paris": -0.7, " London": -1.0}),
                (",", -0.5, {",": -0.5, ".": -1.4}),
                (" the", -0.1, {" the": -0.1, "\n": -3.0}),
            ]
        )
    )
    assert original is not None and same_then_comma is not None
    found = shift(original, same_then_comma)
    # Position 1 on the same path; position 2 the variant chose ',' but gave '.' its value;
    # position 3 lies beyond the parting: unknown, not counted.
    assert found.tokens == 2 and not found.bound
    assert found.delta == pytest.approx((-0.7 - -0.1) + (-1.4 - -0.2))
    assert (found.token, found.original, found.variant) == (" Paris", -0.1, -0.7)


def test_a_token_missing_from_the_variants_alternatives_gives_a_bound() -> None:
    original = parse_choice(ORIGINAL)
    elsewhere = parse_choice(
        _llama([(" Rome", -0.2, {" Rome": -0.2, " Milan": -2.2, " Turin": -4.5})])
    )
    assert original is not None and elsewhere is not None
    found = shift(original, elsewhere)
    # ' Paris' is not among the variant's best: its log-probability is at most -4.5.
    assert (found.tokens, found.bound, found.first_bound) == (1, True, True)
    assert found.delta == pytest.approx(-4.5 - -0.1)
    text = detail_lines(
        {
            "variant": "x",
            "logprobs": sensitivity(original, elsewhere, " Paris.\n").as_json(),
        }
    )[0]
    assert "<= -4.40 over 1 token" in text and "bound" in text


def test_no_shift_without_log_probabilities_or_with_a_probe_that_answered_otherwise() -> None:
    original = parse_choice(ORIGINAL)
    assert sensitivity(None, None, "x").as_json() == {
        "original": None,
        "variant": None,
        "shift": None,
        "note": "the provider returned no log-probabilities",
    }
    assert sensitivity(original, (), " Paris.\n").note == "the variant's answer is empty: no token"
    other = sensitivity(original, original, " Rome.")
    assert other.shift is None and "answered differently" in other.note


def test_the_shift_stops_where_the_answer_does() -> None:
    # With stop=["\n"] the answer is " Paris." while the probe went on to "\n": the token
    # past the answer's end is not one of its tokens.
    original = parse_choice(ORIGINAL)
    assert original is not None
    found = sensitivity(original, original, " Paris.")
    assert found.shift is not None and found.shift.tokens == 2 and found.shift.delta == 0.0
    assert found.as_json()["original"]["generated"] == [" Paris", ".", "\n"]


def test_log_probabilities_are_stored_with_the_completion() -> None:
    request = Request("openai/x", [{"role": "user", "content": "hi"}])
    positions = parse_choice(ORIGINAL)
    completion = Completion(output=" Paris.\n", model="x", margin=2.5, logprobs=positions)
    loaded = Completion.from_json(completion.to_json(request))
    assert loaded.logprobs == positions and loaded.margin == 2.5
    empty = Completion.from_json(Completion("", "x", logprobs=()).to_json(request))
    assert empty.logprobs == ()
    # An entry written before log-probabilities were stored has none, and still loads.
    old = json.loads(Completion("hi", "x").to_json(request))
    assert "logprobs" not in old
    assert Completion.from_json(json.dumps(old)).logprobs is None


# --- end to end against the fake provider ---------------------------------------------------

CAPITAL = """
import pytest

@pytest.mark.promptpert(variants=["strip_period", "double_space", "lower_first"])
def test_capital(llm):
    llm("What is the capital of France?")
"""

LN = math.log


def _report(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    return data


def _by_variant(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["variant"]: r for r in data["results"]}


def test_shift_is_recorded_and_reported_in_terminal_json_and_html(project, provider):
    pytester = project("stable", logprobs="on")
    pytester.makepyfile(CAPITAL)
    result = pytester.runpytest("--promptpert-report=r.json", "--promptpert-html=r.html")
    result.assert_outcomes(passed=4)  # the same answer to every variant...
    result.stdout.fnmatch_lines(
        [
            "log-prob early warnings: 2 passing variants kept the original's first token but"
            " made the original's first answer tokens at least 2.7 times less likely:",
            "  *test_capital[[]strip_period[]]  -2.75 over 3 tokens (first token 'The'"
            " 95% -> 38%; margin 3.64 -> 0.92)",
            "  *test_capital[[]lower_first[]]  -2.08 over 3 tokens*",
        ]
    )
    by_variant = _by_variant(_report(pytester))
    # ...but without its question mark each of the first three tokens is 0.38 likely, not 0.95.
    assert by_variant["strip_period"]["logprobs"]["shift"] == {
        "delta": round(3 * LN(0.4), 4),
        "tokens": ANSWER_TOKENS,
        "bound": False,
        "token": "The",
        "original_logprob": round(LN(0.95), 4),
        "variant_logprob": round(LN(0.38), 4),
        "first_token_bound": False,
    }
    assert by_variant["double_space"]["logprobs"]["shift"]["delta"] == 0.0  # unchanged
    first = by_variant["original"]["logprobs"]["original"]
    assert first["token"] == "The" and first["generated"] == ["The", " answer", " to"]
    assert first["margin"] == round(LN(0.95 / 0.025), 4)
    assert [t for t, _ in first["top"]] == ["The", " maybe", " perhaps", " hmm", " well"]
    assert by_variant["original"]["logprobs"]["variant"] is None
    summary = _report(pytester)["summary"]
    assert [w["variant"] for w in summary["logprob_warnings"]] == ["strip_period", "lower_first"]
    # One probe per distinct prompt: short, with the alternatives asked for.
    probes = [r["body"] for r in provider.requests if r["body"].get("logprobs")]
    assert len(probes) == 4
    assert {(b["max_tokens"], b["top_logprobs"]) for b in probes} == {(ANSWER_TOKENS, TOP_LOGPROBS)}
    page = (pytester.path / "r.html").read_text(encoding="utf-8")
    assert page.count("shifted") >= 2 and "Early warning ↓" in page

    verbose = pytester.runpytest("-v", "--promptpert-cache=replay")
    verbose.stdout.fnmatch_lines(
        [
            "log-prob shift of the original's first answer tokens under each variant*",
            "  *test_capital[[]strip_period[]]  -2.75 over 3 tokens*",
            "  *test_capital[[]lower_first[]]   -2.08 over 3 tokens*",
            "  *test_capital[[]double_space[]]  +0.00 over 3 tokens*",
        ]
    )


def test_cached_with_the_completion_a_rerun_gives_the_same_numbers_without_calls(project, provider):
    pytester = project("stable", logprobs="on")
    pytester.makepyfile(CAPITAL)
    pytester.runpytest("--promptpert-report=r.json").assert_outcomes(passed=4)
    first = {r["nodeid"]: r["logprobs"] for r in _report(pytester)["results"]}
    calls = provider.calls
    rerun = pytester.runpytest("--promptpert-report=r.json", "--promptpert-cache=replay")
    rerun.assert_outcomes(passed=4)
    assert provider.calls == calls
    assert {r["nodeid"]: r["logprobs"] for r in _report(pytester)["results"]} == first


def test_absent_not_faked_where_the_provider_returns_none(project, provider):
    provider.logprobs = False
    pytester = project("stable", logprobs="on")
    pytester.makepyfile(CAPITAL)
    result = pytester.runpytest("-v", "--promptpert-report=r.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["  *test_capital[[]strip_period[]]  no shift: the provider returned no log-probabilities"]
    )
    assert "early warning" not in result.stdout.str()
    data = _report(pytester)
    for record in data["results"]:
        assert record["logprobs"]["shift"] is None
        assert record["logprobs"]["original"] is None
    assert data["summary"]["logprob_warnings"] == []


def test_hosted_models_are_not_probed_unless_asked(project, provider):
    pytester = project("stable")  # logprobs = "auto": local models only
    pytester.makepyfile(CAPITAL)
    pytester.runpytest("-v", "--promptpert-report=r.json").assert_outcomes(passed=4)
    assert all("logprobs" not in r for r in _report(pytester)["results"])
    assert not any(r["body"].get("logprobs") for r in provider.requests)
    assert provider.calls == 4


def test_a_shift_beyond_the_variants_alternatives_is_flagged_as_a_bound(project, provider):
    pytester = project("case", logprobs="on")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["lower_first"])
        def test_weather(llm):
            llm("Describe the weather.")
        """
    )
    result = pytester.runpytest("-v", "--promptpert-report=r.json")
    result.assert_outcomes(passed=1, failed=1)
    # 'describe...' gets "zzz qqq xxx": the original's 'A' is not among the variant's five
    # best first tokens, the lowest of which is 0.02375 likely.
    result.stdout.fnmatch_lines(
        ["  *test_weather[[]lower_first[]]  <= -3.69 over 1 token (first token 'A' 95% -> <=2.4%*"]
    )
    shifted = _by_variant(_report(pytester))["lower_first"]["logprobs"]["shift"]
    assert shifted["bound"] is True and shifted["first_token_bound"] is True
    assert shifted["delta"] == round(LN(0.02375) - LN(0.95), 4)
    assert early_warnings(_report(pytester)["results"]) == []  # a failure, not a warning


def test_a_refused_or_unrecorded_probe_is_a_note_and_changes_no_verdict(project, provider):
    pytester = project("stable", logprobs="off")
    pytester.makepyfile(CAPITAL)
    pytester.runpytest().assert_outcomes(passed=4)  # the cache holds the calls, no probe
    replayed = pytester.runpytest(
        "--promptpert-report=r.json", "--promptpert-cache=replay", "--promptpert-logprobs=on"
    )
    replayed.assert_outcomes(passed=4)
    notes = {r["logprobs"]["note"] for r in _report(pytester)["results"]}
    assert notes == {"the log-prob probes are not in the cache (replay mode)"}

    provider.logprobs = "refuse"
    refused = pytester.runpytest("--promptpert-report=r.json", "--promptpert-logprobs=on")
    refused.assert_outcomes(passed=4)
    for record in _report(pytester)["results"]:
        assert record["logprobs"]["shift"] is None
        assert record["logprobs"]["note"].startswith("the log-prob probe failed:")
        assert "logprobs are not supported for this model" in record["logprobs"]["note"]


def test_an_early_warning_needs_the_original_first_token_and_an_exact_shift() -> None:
    def record(outcome: str, variant_token: str, bound: bool = False) -> dict[str, Any]:
        return {
            "nodeid": f"t[{variant_token}]",
            "test": "t",
            "variant": "v",
            "outcome": outcome,
            "logprobs": {
                "original": {"token": " positive"},
                "variant": {"token": variant_token},
                "shift": {"delta": -2.0, "bound": bound},
            },
        }

    assert len(early_warnings([record("passed", " positive")])) == 1
    # The same label in other tokens (' POSITIVE'), a bound, a failure: not early warnings.
    assert early_warnings([record("passed", " POSITIVE")]) == []
    assert early_warnings([record("passed", " positive", bound=True)]) == []
    assert early_warnings([record("failed", " positive")]) == []
