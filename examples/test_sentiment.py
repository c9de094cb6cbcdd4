"""A few-shot sentiment classifier: the label must not change, so metric="exact"."""

import pytest

FEW_SHOT = (
    "Review: I loved this film.\nSentiment: positive\n\n"
    "Review: The food was cold and bland.\nSentiment: negative\n\n"
    "Review: The staff were friendly and helpful.\nSentiment:"
)


# trailing_space is left out: after 'Sentiment:' it changes the label, but the first token of
# that answer wins by a log-probability margin of only 0.37 (a near-tie; see the README).
@pytest.mark.promptpert(variants=["casing", "trailing_newline", "add_period"], metric="exact")
def test_sentiment_label(llm):
    label = llm(FEW_SHOT, stop=["\n"])
    assert label.strip().lower() == "positive"
