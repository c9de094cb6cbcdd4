"""A few-shot sentiment classifier: the label must not change, so metric="exact"."""

import pytest

FEW_SHOT = (
    "Review: I loved this film.\nSentiment: positive\n\n"
    "Review: The food was cold and bland.\nSentiment: negative\n\n"
    "Review: The staff were friendly and helpful.\nSentiment:"
)


# Only variants whose first answer token wins by a log-probability margin of 0.5 or more, in the
# original and in the variant (run with -v: the log-prob shift lines show both margins). Left
# out for that reason: trailing_space (the label changes, on a margin of 0.37), add_period and
# trailing_newline (the label holds, on margins of 0.34 and 0.23: near-ties; see the README).
@pytest.mark.promptpert(variants=["casing"], metric="exact")
def test_sentiment_label(llm):
    label = llm(FEW_SHOT, stop=["\n"])
    assert label.strip().lower() == "positive"
