"""Similarity metrics: ``(original, variant) -> float`` in [0, 1], 1 meaning the same."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .request import Completion, Request

Metric = Callable[[str, str], float]


@dataclass(frozen=True)
class Rating:
    """A similarity with the reason for it, for metrics that can say why (the judge)."""

    score: float
    reason: str = ""


@dataclass(frozen=True)
class MetricContext:
    """What a model-backed metric may use for one call: the prompt and the run's client.

    ``request(prompt, **params)`` builds a request with the run's defaults (``api_base``
    included); ``fetch(request)`` answers it through the run's cache, counted in the run's and
    the item's statistics.
    """

    prompt: str
    model: str
    judge_model: str | None
    embedding_model: str | None
    api_base: str | None
    request: Callable[..., Request]
    fetch: Callable[[Request], Completion]


class ModelMetric:
    """A metric that asks a model (``judge``, ``embedding``): bound to a call before use.

    Subclasses implement :meth:`bind`, which returns an ordinary ``(original, variant)`` metric
    (returning a float or a :class:`Rating`), and may implement :meth:`check` to reject
    settings they cannot work with at collection time. Register one like any metric, through
    ``pytest_promptpert_add_metrics``.
    """

    def bind(self, context: MetricContext) -> Callable[[str, str], float | Rating]:
        raise NotImplementedError

    def check(self, settings: Any) -> str | None:
        """Why this metric cannot run with *settings* (a ``Settings``), or None."""
        return None

    def __call__(self, original: str, variant: str) -> float:
        raise TypeError(
            f"{type(self).__name__} asks a model: bind it to a MetricContext first"
            " (metric.bind(context)(original, variant))"
        )


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _scaled(scorer: str) -> Metric:
    """rapidfuzz's ``fuzz.<scorer>`` in [0, 1]; rapidfuzz is imported by the first comparison."""

    def metric(original: str, variant: str) -> float:
        # rapidfuzz scores two empty strings 100 with some scorers and 0 with others.
        if not original.strip() and not variant.strip():
            return 1.0
        from rapidfuzz import fuzz  # here: a run without comparisons never imports it

        return float(getattr(fuzz, scorer)(original, variant)) / 100.0

    return metric


def exact(original: str, variant: str) -> float:
    return 1.0 if _normalise(original) == _normalise(variant) else 0.0


def builtin_metrics() -> dict[str, Metric]:
    from .semantic import EmbeddingMetric, JudgeMetric

    # rapidfuzz is imported by the first comparison, not when the catalog is built.
    def jaro_winkler(original: str, variant: str) -> float:
        if not original and not variant:
            return 1.0
        from rapidfuzz.distance import JaroWinkler

        return float(JaroWinkler.normalized_similarity(original, variant))

    def levenshtein(original: str, variant: str) -> float:
        from rapidfuzz.distance import Levenshtein

        return float(Levenshtein.normalized_similarity(original, variant))

    return {
        "ratio": _scaled("ratio"),
        "token_set_ratio": _scaled("token_set_ratio"),
        "token_sort_ratio": _scaled("token_sort_ratio"),
        "partial_ratio": _scaled("partial_ratio"),
        "jaro_winkler": jaro_winkler,
        "levenshtein": levenshtein,
        "exact": exact,
        "embedding": EmbeddingMetric(),
        "judge": JudgeMetric(),
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


class MetricError(ValueError):
    """A metric that raised or broke its promise: an error of the item, not a divergence."""


def score(metric: Metric, original: str, variant: str, *, name: str = "metric") -> float:
    """Call *metric* and check that it kept its promise of a float in [0, 1]."""
    return rate(metric, original, variant, name=name).score


def rate(
    metric: Callable[[str, str], Any], original: str, variant: str, *, name: str = "metric"
) -> Rating:
    """Call *metric*; a float or a :class:`Rating`, checked to be in [0, 1].

    A metric that raises, or breaks that promise, is a :class:`MetricError`: an error of the
    item, never a divergence.
    """
    try:
        value: Any = metric(original, variant)
    except Exception as exc:
        raise MetricError(
            f"metric {name!r} raised {type(exc).__name__}: {exc}"
            f" (comparing {original!r:.60} with {variant!r:.60})"
        ) from exc
    reason = ""
    if isinstance(value, Rating):
        value, reason = value.score, value.reason
    # numbers.Real, not float: custom metrics often return numpy.float32 (embedding cosines).
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise MetricError(f"metric {name!r} returned {value!r}, not a number in [0, 1]")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise MetricError(f"metric {name!r} returned {value!r}, outside [0, 1]")
    return Rating(number, reason)
