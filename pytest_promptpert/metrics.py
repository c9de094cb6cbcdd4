"""Similarity metrics: ``(original, variant) -> float`` in [0, 1], 1 meaning the same."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Metric = Callable[[str, str], float]


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _scaled(scorer: Callable[..., float]) -> Metric:
    def metric(original: str, variant: str) -> float:
        # rapidfuzz scores two empty strings 100 with some scorers and 0 with others.
        if not original.strip() and not variant.strip():
            return 1.0
        return float(scorer(original, variant)) / 100.0

    return metric


def exact(original: str, variant: str) -> float:
    return 1.0 if _normalise(original) == _normalise(variant) else 0.0


def builtin_metrics() -> dict[str, Metric]:
    from rapidfuzz import fuzz
    from rapidfuzz.distance import JaroWinkler, Levenshtein

    def jaro_winkler(original: str, variant: str) -> float:
        if not original and not variant:
            return 1.0
        return float(JaroWinkler.normalized_similarity(original, variant))

    def levenshtein(original: str, variant: str) -> float:
        return float(Levenshtein.normalized_similarity(original, variant))

    return {
        "ratio": _scaled(fuzz.ratio),
        "token_set_ratio": _scaled(fuzz.token_set_ratio),
        "token_sort_ratio": _scaled(fuzz.token_sort_ratio),
        "partial_ratio": _scaled(fuzz.partial_ratio),
        "jaro_winkler": jaro_winkler,
        "levenshtein": levenshtein,
        "exact": exact,
    }


class UnknownMetricError(ValueError):
    """A metric name that the catalog does not know."""


class MetricCatalog:
    def __init__(self, extra: Iterable[Mapping[str, Metric]] = ()) -> None:
        self._metrics: dict[str, Metric] = {}
        for mapping in extra:
            for name, func in mapping.items():
                self.add(name, func)

    def add(self, name: str, func: Metric) -> None:
        if name in self._metrics:
            raise ValueError(f"metric name {name!r} is already defined")
        if not callable(func):
            raise ValueError(f"metric {name!r} is not callable: {func!r}")
        self._metrics[name] = func

    def names(self) -> tuple[str, ...]:
        return tuple(self._metrics)

    def get(self, metric: str | Metric) -> Metric:
        if callable(metric):
            return metric
        try:
            return self._metrics[metric]
        except KeyError:
            raise UnknownMetricError(
                f"unknown metric {metric!r} (known metrics: {', '.join(self._metrics)})"
            ) from None


def metric_name(metric: str | Metric) -> str:
    if isinstance(metric, str):
        return metric
    name = getattr(metric, "__qualname__", None) or getattr(metric, "__name__", None)
    return name if isinstance(name, str) else repr(metric)


def score(metric: Metric, original: str, variant: str, *, name: str = "metric") -> float:
    """Call *metric* and check that it kept its promise of a float in [0, 1]."""
    value: Any = metric(original, variant)
    # numbers.Real, not float: custom metrics often return numpy.float32 (embedding cosines).
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"metric {name!r} returned {value!r}, not a number in [0, 1]")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"metric {name!r} returned {value!r}, outside [0, 1]")
    return number
