"""A few-shot sentiment classifier: the label must not change, so metric="exact"."""

import pytest

FEW_SHOT = (
    "Review: I loved this film.\nSentiment: positive\n\n"
    "Review: The food was cold and bland.\nSentiment: negative\n\n"
    "Review: The staff were friendly and helpful.\nSentiment:"
)


@pytest.mark.promptpert(
    variants=["lowercase", "uppercase", "title", "trailing_newline", "trailing_space", "add_period"],
    metric="exact",
)
@pytest.mark.known_divergence(
    "trailing_space",
    "add_period",
    reason="a space or a period after 'Sentiment:' makes the model skip the label",
)
def test_sentiment_label(llm):
    label = llm(FEW_SHOT, stop=["\n"])
    assert label.strip().lower() == "positive"
