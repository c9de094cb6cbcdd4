"""Verdicts that rest on a near-tie say so instead of presenting it as a fact."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_promptpert.backend import _first_token_margin
from pytest_promptpert.compare import NEAR_TIE_MARGIN, Comparison, failure_message


def _comparison(margins: tuple[float | None, float | None] | None) -> Comparison:
    return Comparison(
        original_prompt="Q: What is the capital of Italy?\nA:",
        variant_prompt="Q: What is the capital of Italy!\nA:",
        original_outputs=(" Rome",),
        variant_outputs=(" Italy is a country",),
        metric="levenshtein",
        threshold=0.5,
        score=0.2,
        margins=margins,
    )


@pytest.mark.parametrize(
    ("margins", "near"),
    [
        (None, False),  # the provider gave no log-probabilities: nothing is claimed
        ((2.0, 1.5), False),
        ((2.0, NEAR_TIE_MARGIN - 0.01), True),
        ((0.05, None), True),
        ((None, None), False),
    ],
)
def test_near_tie_is_the_smallest_known_margin(
    margins: tuple[float | None, float | None] | None, near: bool
) -> None:
    comparison = _comparison(margins)
    assert comparison.near_tie is near
    message = failure_message("exclamation", comparison)
    assert ("near-tie" in message) is near


def test_the_message_names_the_margins() -> None:
    message = failure_message("exclamation", _comparison((1.25, 0.12)))
    assert "near-tie: the first answer token won by a small log-probability margin" in message
    assert "original 1.25, variant 0.12" in message


def test_first_token_margin_from_a_text_completion_choice() -> None:
    choice = SimpleNamespace(
        text=" Rome",
        logprobs={"tokens": [" Rome"], "top_logprobs": [{" Rome": -0.4, " The": -0.9}]},
    )
    assert _first_token_margin(choice) == pytest.approx(0.5)
    assert _first_token_margin(SimpleNamespace(text="x", logprobs=None)) is None
    assert _first_token_margin({"logprobs": {"top_logprobs": [{" a": -1.0}]}}) is None
