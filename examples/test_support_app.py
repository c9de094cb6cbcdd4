"""Ordinary tests of the support application; the only addition is the promptpert marker.

The application calls the openai SDK itself. With ``route = "model"`` (examples/pyproject.toml)
its calls go to the bundled local model: no key, no network. ``known_divergence`` (conftest.py)
marks the variants this small model is measured to be sensitive to as xfail(strict=True).
"""

from __future__ import annotations

import pytest
from support_app import CATEGORIES, classify, summarize


@pytest.mark.known_divergence("uppercase", reason="an all-caps ticket derails the classifier")
@pytest.mark.promptpert(variants=["add_period", "lower_first", "uppercase"])
def test_refund_ticket_is_billing():
    assert classify("I want a refund for my last order") == "billing"


@pytest.mark.known_divergence(
    "add_period", "trailing_space", reason="the category changes with the ticket's ending"
)
@pytest.mark.promptpert(variants=["add_period", "trailing_space"])
def test_crash_ticket_gets_a_category():
    assert classify("The screen goes black after the update") in (*CATEGORIES, "unknown")


@pytest.mark.known_divergence("add_period", reason="a final period changes the summary")
@pytest.mark.promptpert(variants=["add_period", "lower_first"], metric="token_set_ratio")
def test_summary_is_one_paragraph():
    summary = summarize(
        "Our office moves to the third floor on Monday. Desks will be packed on Friday"
        " afternoon; please label your boxes."
    )
    assert summary
