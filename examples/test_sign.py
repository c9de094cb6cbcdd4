"""The prompt that started it all: a sign that describes your situation."""

import pytest

SIGN = "Create a sign with a message on it that describes your situation."


# Each variant's verdict rests on a first answer token that won by a wide log-probability
# margin (>= 0.5; `python scripts/cross_build.py margins --every-variant`), so it is the same
# on every machine that runs the portable llama.cpp build.
@pytest.mark.promptpert(
    variants=["exclamation", "trailing_space", "question_mark", "lower_first+strip_period"]
)
@pytest.mark.known_divergence(
    "question_mark",
    "lower_first+strip_period",
    reason="Gemma 270M: with '?' the list of questions becomes a description of the sign; a"
    " lower-case 'create' without the period collapses into a run of <start_of_image> tokens",
)
def test_sign_prompt(llm):
    sign = llm(SIGN)
    assert sign.strip()


SEED = "create a sign with a message on it that describes your situation"


@pytest.mark.promptpert(variants=["add_period", "upper_first+add_period"])
@pytest.mark.known_divergence(
    "add_period",
    "upper_first+add_period",
    reason="the seed prompt itself collapses into <start_of_image> tokens (the run's summary"
    " flags it as a COLLAPSED original); any well-formed spelling gets a real answer",
)
def test_seed_prompt_collapses(llm):
    llm(SEED)
