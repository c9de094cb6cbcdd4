"""The prompt that started it all: a sign that describes your situation."""

import pytest

SIGN = "Create a sign with a message on it that describes your situation."


@pytest.mark.promptpert(variants=["strip_period", "lower_first", "lower_first+strip_period"])
@pytest.mark.known_divergence(
    "lower_first",
    "lower_first+strip_period",
    reason="Gemma 270M: a lower-case 'create' turns the list of questions into a numbered"
    " list, and without the period into a run of <start_of_image> tokens",
)
def test_sign_prompt(llm):
    sign = llm(SIGN)
    assert sign.strip()
