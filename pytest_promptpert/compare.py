"""Comparing a variant's outputs with the original's, and saying what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from statistics import fmean

from .metrics import Metric, score

#: A first answer token that won by less than this log-probability margin is a near-tie:
#: another llama.cpp build or CPU can resolve it the other way (scripts/cross_build.py).
NEAR_TIE_MARGIN = 0.5


@dataclass(frozen=True)
class Comparison:
    """One ``llm`` call of a variant item, set against the same call unperturbed."""

    original_prompt: str
    variant_prompt: str
    original_outputs: tuple[str, ...]
    variant_outputs: tuple[str, ...]
    metric: str
    threshold: float
    score: float
    #: The lowest similarity between two of the original's own samples (1.0 with one sample).
    noise_floor: float = 1.0
    sample_scores: tuple[float, ...] = field(default_factory=tuple)
    #: first-token log-probability margins (original, variant), where the provider gave them
    margins: tuple[float | None, float | None] | None = None

    @property
    def near_tie(self) -> bool:
        """Whether the verdict rests on a first answer token that barely won."""
        return self.margins is not None and any(
            m is not None and m < NEAR_TIE_MARGIN for m in self.margins
        )

    @property
    def passed(self) -> bool:
        # Below the threshold *and* beyond the original's own sample-to-sample spread.
        return not (self.score < self.threshold and self.score < self.noise_floor)


def compare(
    metric: Metric,
    metric_name: str,
    threshold: float,
    original_prompt: str,
    variant_prompt: str,
    original_outputs: list[str],
    variant_outputs: list[str],
) -> Comparison:
    """Score every (original sample, variant sample) pair; the score is their mean.

    With several samples, the noise floor is the least similarity between two of the original's
    samples: a variant that stays within it behaves like the original re-sampled.
    """
    cross = [
        score(metric, o, v, name=metric_name) for o in original_outputs for v in variant_outputs
    ]
    within = [score(metric, a, b, name=metric_name) for a, b in combinations(original_outputs, 2)]
    return Comparison(
        original_prompt=original_prompt,
        variant_prompt=variant_prompt,
        original_outputs=tuple(original_outputs),
        variant_outputs=tuple(variant_outputs),
        metric=metric_name,
        threshold=threshold,
        score=fmean(cross),
        noise_floor=min(within) if within else 1.0,
        sample_scores=tuple(cross) if len(cross) > 1 else (),
    )


def trim(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more chars]"


def failure_message(variant: str, comparison: Comparison) -> str:
    """What a person needs to act on a divergence: both prompts, both outputs, the numbers."""
    c = comparison
    lines = [
        f"variant {variant!r} changed the model's behaviour:"
        f" {c.metric} similarity {c.score:.3f} < threshold {c.threshold:.3f}",
    ]
    if c.noise_floor < 1.0:
        lines.append(
            f"  (and below the original's own noise floor {c.noise_floor:.3f}"
            f" over {len(c.original_outputs)} samples)"
        )
    lines += [
        f"  original prompt: {trim(c.original_prompt, 200)!r}",
        f"  variant prompt:  {trim(c.variant_prompt, 200)!r}",
        f"  original output: {trim(c.original_outputs[0])!r}",
        f"  variant output:  {trim(c.variant_outputs[0])!r}",
    ]
    if c.near_tie and c.margins is not None:
        shown = ", ".join(
            f"{name} {m:.2f}"
            for name, m in zip(("original", "variant"), c.margins, strict=False)
            if m is not None
        )
        lines.append(
            f"  near-tie: the first answer token won by a small log-probability margin ({shown};"
            f" < {NEAR_TIE_MARGIN}): another build of the model's runtime or another CPU may"
            " answer differently, so this verdict is not a stable fact about the prompt"
        )
    return "\n".join(lines)
