"""Chat-style prompts: a system message plus the user's question.

The bundled model is a base model, so pytest-promptpert sends it the messages' texts joined by
blank lines; the variant is applied to the last user message only.
"""

import pytest

SYSTEM = {"role": "system", "content": "Answer geography questions in one short sentence."}


@pytest.mark.promptpert(variants=["trailing_space"])
@pytest.mark.known_divergence(
    "trailing_space", reason="a space after the 'A:' cue: the model answers '1.5 million'"
)
def test_capital_of_italy(llm):
    answer = llm([SYSTEM, {"role": "user", "content": "Q: What is the capital of Italy?\nA:"}])
    assert "Rome" in answer


@pytest.mark.promptpert(variants=["leading_space", "trailing_newline", "lower_first"])
@pytest.mark.known_divergence(
    "lower_first", reason="'the opposite of ...': one word, then <start_of_image> to the end"
)
class TestOpposites:
    def test_hot(self, llm):
        assert "cold" in llm("The opposite of hot is").lower()

    @pytest.mark.known_divergence(
        "trailing_newline", reason="'...day is' + newline: the model loops on 'day is'"
    )
    def test_day(self, llm):
        assert "night" in llm("The opposite of day is").lower()
