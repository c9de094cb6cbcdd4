"""The part of an item (``ItemRun``) that deals with the application's own model calls
(intercepted) and results (``promptpert.observe``): counted, compared, recorded with the rest.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from ..compare import Comparison
from ..metrics import metric_name
from ..variants import ORIGINAL
from .calls import Call, Fetched
from .verdicts import CallComparison, compare_answers, compare_observed

if TYPE_CHECKING:
    from ..item_run import ItemPlan
    from ..session import PromptpertSession


class AppCalls:
    """Mixed into ``ItemRun``; the attributes below are its fields."""

    plan: ItemPlan
    session: PromptpertSession
    records: list[Comparison | None]
    observed: list[Any]
    errors: list[BaseException]
    original_keys: list[str]
    _lock: threading.Lock
    _perturb_used: bool
    calls: int
    hits: int
    tokens: int
    latency: float

    @property
    def variant(self) -> str:
        return self.plan.variant

    def _unperturb(self, text: str) -> str:
        raise NotImplementedError

    @property
    def samples(self) -> int:
        return self.plan.settings.samples

    @property
    def perturb_used(self) -> bool:
        return self._perturb_used

    def transform(self, text: str) -> str:
        return self.session.variants.apply(self.variant, text)

    def unperturb(self, text: str) -> str:
        return self._unperturb(text)

    def failed(self, error: BaseException) -> None:
        self.errors.append(error)

    def intercepted(
        self, call: Call, originals: list[Fetched], variants: list[Fetched] | None
    ) -> None:
        with self._lock:
            self.original_keys.append(originals[0].request.key())
            for fetched in originals + (variants or []):
                done = fetched.completion
                self.latency += done.latency if done is not None else 0.0
                if fetched.called:
                    self.calls += 1
                    self.tokens += done.tokens if done is not None else 0
                else:
                    self.hits += 1
        if variants is None:
            if self.variant != ORIGINAL:
                self.records.append(None)  # the variant left this call unchanged
            return
        answers = [f.answer for f in originals + variants]
        if any(a is None for a in answers):
            return  # an error answer: the application saw it; nothing to compare
        settings = self.plan.settings
        self.records.append(
            compare_answers(
                self.session.metrics.get(settings.metric),
                metric_name(settings.metric),
                settings.threshold,
                f"{call.adapter.name}, {call.endpoint}",
                (originals[0].request.prompt, variants[0].request.prompt),
                [f.answer for f in originals if f.answer is not None],
                [f.answer for f in variants if f.answer is not None],
            )
        )

    def observe(self, value: Any) -> Any:
        """Record what the application returned: the variant item compares it too."""
        try:
            normal = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            raise TypeError(
                f"promptpert.observe() takes a str or a JSON-serialisable value,"
                f" not {type(value).__name__}: {value!r:.80}"
            ) from None
        self.observed.append(normal)
        return value

    def _observed_records(self) -> tuple[list[Comparison], str]:
        """Comparisons of this variant's observed values with the original's, and why none."""
        stored = self.session.observed.load(self.plan.test)
        if stored is None:
            return [], "the original item's observed results are not recorded yet (run it)"
        settings = self.plan.settings
        metric = self.session.metrics.get(settings.metric)
        name = metric_name(settings.metric)
        out: list[Comparison] = []
        for i in range(max(len(stored.values), len(self.observed))):
            if i >= len(stored.values) or i >= len(self.observed):
                missing = "variant" if i >= len(self.observed) else "original"
                out.append(
                    CallComparison(
                        "",
                        "",
                        (json.dumps(stored.values[i : i + 1]),),
                        (json.dumps(self.observed[i : i + 1]),),
                        name,
                        settings.threshold,
                        0.0,
                        source=f"observe #{i + 1}",
                        differences=(
                            f"observe() called {len(stored.values)} times in the original,"
                            f" {len(self.observed)} times here (none in the {missing})",
                        ),
                    )
                )
                break
            out.append(
                compare_observed(
                    metric, name, settings.threshold, i, stored.values[i], self.observed[i]
                )
            )
        return out, ""
