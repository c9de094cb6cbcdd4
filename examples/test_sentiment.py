"""A few-shot sentiment classifier: the label must not change, so metric="exact"."""

import pytest

FEW_SHOT = (
    "Review: I loved this film.\nSentiment: positive\n\n"
    "Review: The food was cold and bland.\nSentiment: negative\n\n"
    "Review: The staff were friendly and helpful.\nSentiment:"
)


@pytest.mark.promptpert(
    variants=["casing", "trailing_newline", "trailing_space", "add_period"],
    metric="exact",
)
@pytest.mark.known_divergence(
    "trailing_space", reason="a space after 'Sentiment:' makes the model answer '5/5'"
)
def test_sentiment_label(llm):
    label = llm(FEW_SHOT, stop=["\n"])
    assert label.strip().lower() == "positive"
