"""Unit tests for the similarity metrics and their catalog (pure core)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from pytest_promptpert.metrics import (
    Metric,
    MetricCatalog,
    UnknownMetricError,
    builtin_metrics,
    score,
)

STRING_METRICS = (
    "ratio",
    "token_set_ratio",
    "token_sort_ratio",
    "partial_ratio",
    "jaro_winkler",
    "levenshtein",
    "exact",
)
#: the second wave's: they ask a model, so they are bound to a client before use
MODEL_METRICS = ("embedding", "judge")
CONTRACT_METRICS = STRING_METRICS + MODEL_METRICS
BUILTIN = builtin_metrics()

try:  # numpy is not a dependency, but custom metrics built on embeddings return its scalars
    import numpy as np
except ImportError:  # pragma: no cover
    NUMPY_IN_RANGE: list[object] = []
    NUMPY_NAN: list[object] = []
else:
    NUMPY_IN_RANGE = [np.float32(0.75), np.float64(0.5), np.int64(1)]
    NUMPY_NAN = [np.float32("nan")]

PAIRS = [
    ("", ""),
    ("", "abc"),
    ("   ", "\n"),
    ("The capital of France is Paris.", "The capital of France is Paris."),
    ("The capital of France is Paris.", "the capital of france is paris"),
    ("Yes", "No"),
    ("naïve café 😀", "NAÏVE CAFÉ"),
    ("a" * 500, "a" * 499 + "b"),
]


def test_builtin_metrics_are_exactly_the_contract_catalog() -> None:
    assert set(BUILTIN) == set(CONTRACT_METRICS)


@pytest.mark.parametrize("name", STRING_METRICS)
@pytest.mark.parametrize(("original", "variant"), PAIRS)
def test_every_metric_is_a_float_in_the_unit_interval(
    name: str, original: str, variant: str
) -> None:
    value = BUILTIN[name](original, variant)
    assert type(value) is float
    assert 0.0 <= value <= 1.0
    assert score(BUILTIN[name], original, variant, name=name) == value


@pytest.mark.parametrize("name", STRING_METRICS)
@pytest.mark.parametrize("text", ["", "x", "Create a sign.", "  spaced  out\n", "日本語のテキスト"])
def test_identical_texts_score_one(name: str, text: str) -> None:
    # Includes two empty outputs: rapidfuzz's token_set_ratio("", "") is 0.
    assert BUILTIN[name](text, text) == 1.0


@pytest.mark.parametrize("name", STRING_METRICS)
def test_unrelated_texts_score_low(name: str) -> None:
    assert BUILTIN[name]("The capital of France is Paris.", "<start_of_image>" * 3) < 0.5
    assert BUILTIN[name]("anything at all", "") == 0.0


@pytest.mark.parametrize(
    ("original", "variant", "expected"),
    [
        ("Paris", "paris", 1.0),
        ("  The  answer\nis 42 ", "the answer is 42", 1.0),
        ("STRASSE", "straße", 1.0),  # case folding, not just lower()
        ("The answer is 42", "The answer is 42.", 0.0),
        ("ab", "a b", 0.0),
    ],
)
def test_exact_normalises_whitespace_and_case_only(
    original: str, variant: str, expected: float
) -> None:
    assert BUILTIN["exact"](original, variant) == expected


def test_catalog_gets_metrics_by_name_and_passes_callables_through() -> None:
    def first_word(original: str, variant: str) -> float:
        return float(original.split()[:1] == variant.split()[:1])

    def unregistered(original: str, variant: str) -> float:
        return 0.5

    catalog = MetricCatalog([BUILTIN, {"first_word": first_word}])
    assert catalog.names() == (*BUILTIN, "first_word")
    assert catalog.get("ratio") is BUILTIN["ratio"]
    assert catalog.get("first_word") is first_word
    assert catalog.get(first_word) is first_word
    assert catalog.get(unregistered) is unregistered  # any callable, registered or not


def test_catalog_unknown_name_lists_known_names() -> None:
    catalog = MetricCatalog([BUILTIN])
    with pytest.raises(UnknownMetricError, match="'cosine'") as excinfo:
        catalog.get("cosine")
    assert all(name in str(excinfo.value) for name in CONTRACT_METRICS)


@pytest.mark.parametrize(
    "mappings",
    [
        [BUILTIN, {"ratio": BUILTIN["exact"]}],
        [{"ratio": "not callable"}],
    ],
    ids=["duplicate", "not-callable"],
)
def test_catalog_rejects_duplicate_and_uncallable_metrics(
    mappings: list[dict[str, Metric]],
) -> None:
    with pytest.raises(ValueError, match="'ratio'"):
        MetricCatalog(mappings)


@pytest.mark.parametrize(
    "value",
    [1, 0, 0.25, Fraction(1, 3), *NUMPY_IN_RANGE],
    ids=repr,
)
def test_score_accepts_real_numbers_in_the_unit_interval(value: object) -> None:
    result = score(lambda original, variant: value, "a", "b", name="custom")  # type: ignore[arg-type,return-value]
    assert type(result) is float
    assert result == pytest.approx(float(value))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [math.nan, *NUMPY_NAN, True, False, -0.01, 1.0001, math.inf, "0.5", None],
    ids=repr,
)
def test_score_rejects_non_numbers_and_out_of_range_values(value: object) -> None:
    with pytest.raises(ValueError, match="'semantic'") as excinfo:
        score(lambda original, variant: value, "a", "b", name="semantic")  # type: ignore[arg-type,return-value]
    assert "[0, 1]" in str(excinfo.value)
