"""Synthetic per-item result dicts, shaped like ``ItemRun.result()``, for the report tests."""

from __future__ import annotations

from typing import Any

STATS = {
    "calls": 10,
    "hits": 30,
    "misses": 10,
    "errors": 1,
    "prompt_tokens": 900,
    "completion_tokens": 334,
    "tokens": 1234,
    "cost": 0.00123,
}


def result(
    test: str,
    variant: str,
    outcome: str = "passed",
    score: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One item's result; a score also brings the prompts and outputs of a comparison."""
    nodeid = f"{test[:-1]}-{variant}]" if test.endswith("]") else f"{test}[{variant}]"
    record: dict[str, Any] = {
        "nodeid": nodeid,
        "test": test,
        "variant": variant,
        "metric": "token_set_ratio",
        "threshold": 0.6,
        "score": score,
        "outcome": outcome,
        "model": "openai/fake",
        "samples": 1,
        "calls": 2,
        "cache_hits": 0,
        "tokens": 40,
    }
    if score is not None:
        record.update(
            noise_floor=1.0,
            sample_scores=[],
            original_prompt="Is the sky blue",
            variant_prompt="Is the sky blue.",
            original_output="Yes, the sky is blue.",
            variant_output="No.",
        )
    record.update(extra)
    return record


def suite() -> list[dict[str, Any]]:
    """Three tests: one with two failing variants, one with a skip, one with an error."""
    sign = "tests/test_prompts.py::test_sign"
    city = "tests/test_prompts.py::test_city[paris]"
    ok = "tests/test_other.py::test_ok"
    return [
        result(sign, "original"),
        result(sign, "add_period", "failed", 0.21),
        result(sign, "lowercase", "failed", 0.45),
        result(sign, "trailing_space", "passed", 0.98),
        result(city, "original"),
        result(city, "add_period", "passed", 0.75),
        result(city, "lowercase", "skipped"),
        result(city, "trailing_space", "passed", 1.0),
        result(ok, "original"),
        result(ok, "add_period", "passed", 0.9),
        result(ok, "lowercase", "error"),
        result(ok, "trailing_space", "xfailed", 0.3),
    ]
