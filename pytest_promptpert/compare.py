"""Comparing a variant's outputs with the original's, and saying what happened.

What is compared, for each output:

- with an ``extract`` spec: what it extracts (nothing extracted is a behaviour of its own);
- else, where the model made tool calls: the tools chosen and their arguments;
- else, where the call asked for JSON (``response_format``): the JSON value;
- else the text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from statistics import fmean
from typing import Any

from .extract import Extractor, canonical_json, parse_json_output
from .logprobs import Sensitivity
from .metrics import Rating, rate
from .request import Completion
from .structured import StructuredResult, structured_similarity, tool_calls_similarity
from .variants import CONTROL

#: at most this many difference lines per comparison
MAX_NOTES = 12


class NothingToCompare(ValueError):
    """The original's own output gives nothing to compare (e.g. the extractor finds nothing)."""


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
    #: "text", "json" or "tools": what was compared
    compared: str = "text"
    #: the extract spec, and what it gave for the first sample of each side (None: nothing)
    extract: str | None = None
    original_extracted: str | None = None
    variant_extracted: str | None = None
    #: what differs, and the judge's reasons: lines for the failure message and the reports
    notes: tuple[str, ...] = ()
    #: first-token log-probability margins (original, variant), where the provider gave them
    margins: tuple[float | None, float | None] | None = None
    #: the probes' log-probabilities and the variant's shift of the original's answer
    logprobs: Sensitivity | None = None

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


@dataclass(frozen=True)
class View:
    """What is compared of one output: its ``kind`` and ``value``, or kind "none" and why."""

    kind: str  # "text", "json", "tools" or "none"
    value: Any = None
    why: str = ""

    def shown(self) -> str | None:
        if self.kind == "none":
            return None
        if self.kind == "text":
            return str(self.value)
        return canonical_json(self.value)


def view(output: str | Completion, extract: Extractor | None, json_output: bool) -> View:
    text = output if isinstance(output, str) else output.output
    calls = None if isinstance(output, str) else output.tool_calls
    if extract is not None:
        got = extract(text)
        return View("text", got.value) if got.value is not None else View("none", why=got.why)
    if calls:
        return View("tools", [dict(c) for c in calls])
    if json_output:
        ok, value = parse_json_output(text)
        return View("json", value) if ok else View("none", why="is not JSON")
    return View("text", text)


def _describe(side: str, v: View) -> str:
    if v.kind == "tools":
        names = [str(c.get("name", "")) for c in v.value]
        return (
            f"{side} called {'tool' if len(names) == 1 else 'tools'} {', '.join(map(repr, names))}"
        )
    if v.kind == "json":
        return f"{side} answered JSON"
    return f"{side} answered in text: {v.value!r:.80}"


def _pair(
    metric: Callable[[str, str], Any], name: str, a: View, b: View
) -> tuple[float, list[str]]:
    """(similarity, notes) of one (original, variant) pair of views."""
    if a.kind == "none" and b.kind == "none":
        return 1.0, []  # both lack the same thing: that much behaves alike
    if b.kind == "none":
        return 0.0, [f"variant output {b.why}"]
    if a.kind == "none":
        return 0.0, [f"original output {a.why}"]
    if a.kind != b.kind:
        return 0.0, [f"{_describe('original', a)}; {_describe('variant', b)}"]
    if a.kind == "text":
        rating = rate(metric, a.value, b.value, name=name)
        return rating.score, [f"{name}: {rating.reason}"] if rating.reason else []

    def text_score(x: str, y: str) -> float:
        return rate(metric, x, y, name=name).score

    result: StructuredResult = (
        tool_calls_similarity(a.value, b.value, text_score)
        if a.kind == "tools"
        else structured_similarity(a.value, b.value, text_score)
    )
    return result.score, list(result.differences)


def compare(
    metric: Callable[[str, str], float | Rating],
    metric_name: str,
    threshold: float,
    original_prompt: str,
    variant_prompt: str,
    original_outputs: Sequence[str | Completion],
    variant_outputs: Sequence[str | Completion],
    *,
    extract: Extractor | None = None,
    json_output: bool = False,
) -> Comparison:
    """Score every (original sample, variant sample) pair; the score is their mean.

    With several samples, the noise floor is the least similarity between two of the original's
    samples: a variant that stays within it behaves like the original re-sampled. Raises
    :class:`NothingToCompare` when the extractor finds nothing in the original's first output.
    """
    originals = [view(o, extract, json_output) for o in original_outputs]
    variants = [view(v, extract, json_output) for v in variant_outputs]
    notes: list[str] = []
    if extract is not None and originals[0].kind == "none":
        raise NothingToCompare(
            f"original output {originals[0].why}, so no variant can be compared on it:"
            f" {_text(original_outputs[0])!r:.300}"
        )
    if json_output and extract is None and originals[0].kind == "none":
        # The original did not answer JSON either: there is no structure to hold variants to.
        notes.append("original output is not JSON: compared as text")
        originals = [view(_text(o), None, False) for o in original_outputs]
        variants = [view(_text(v), None, False) for v in variant_outputs]
    cross: list[float] = []
    for a in originals:
        for b in variants:
            value, lines = _pair(metric, metric_name, a, b)
            cross.append(value)
            notes += [line for line in lines if line not in notes]
    within = [_pair(metric, metric_name, a, b)[0] for a, b in combinations(originals, 2)]
    return Comparison(
        original_prompt=original_prompt,
        variant_prompt=variant_prompt,
        original_outputs=tuple(_text(o) for o in original_outputs),
        variant_outputs=tuple(_text(v) for v in variant_outputs),
        metric=metric_name,
        threshold=threshold,
        score=fmean(cross),
        noise_floor=min(within) if within else 1.0,
        sample_scores=tuple(cross) if len(cross) > 1 else (),
        compared=originals[0].kind,
        extract=extract.spec if extract is not None else None,
        original_extracted=originals[0].shown() if extract is not None else None,
        variant_extracted=variants[0].shown() if extract is not None else None,
        notes=tuple(notes[:MAX_NOTES]),
    )


def check_extractable(extract: Extractor | None, output: str) -> None:
    """Raise :class:`NothingToCompare` when *extract* finds nothing in an original *output*."""
    if extract is None:
        return
    got = extract(output)
    if got.value is None:
        raise NothingToCompare(
            f"original output {got.why}, so no variant can be compared on it: {output!r:.300}"
        )


def _text(output: str | Completion) -> str:
    if isinstance(output, str):
        return output
    if output.tool_calls and not output.output:
        return canonical_json([dict(c) for c in output.tool_calls])
    return output.output


def trim(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more chars]"


def failure_message(variant: str, comparison: Comparison) -> str:
    """What a person needs to act on a divergence: both prompts, both outputs, the numbers."""
    c = comparison
    compared = {"tools": " of the tool calls", "json": " of the JSON values"}.get(c.compared, "")
    if c.extract is not None:
        compared = f" of what extract {c.extract!r} found"
    if variant == CONTROL:
        headline = (
            "control: the unchanged prompt asked again gave another answer (the provider is"
            " not deterministic; variant failures of this test may be provider noise):"
        )
    else:
        headline = f"variant {variant!r} changed the model's behaviour:"
    lines = [
        f"{headline} {c.metric} similarity{compared} {c.score:.3f} < threshold {c.threshold:.3f}",
    ]
    if c.noise_floor < 1.0:
        lines.append(
            f"  (and below the original's own noise floor {c.noise_floor:.3f}"
            f" over {len(c.original_outputs)} samples)"
        )
    lines += [f"  - {note}" for note in c.notes]
    lines += [
        f"  original prompt: {trim(c.original_prompt, 200)!r}",
        f"  variant prompt:  {trim(c.variant_prompt, 200)!r}",
    ]
    if c.extract is not None:
        lines += [
            f"  original extracted: {_maybe(c.original_extracted)}",
            f"  variant extracted:  {_maybe(c.variant_extracted)}",
        ]
    lines += [
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


def _maybe(value: str | None) -> str:
    return "(nothing)" if value is None else repr(trim(value, 200))


def failure_context(variant: str, comparisons: list[Comparison]) -> str:
    """What the test's own failure in a variant item needs beside its traceback: what the
    variant asked, what the original answered, what the variant answered, and the scores."""
    if not comparisons:
        return (
            f"variant {variant!r}: the test failed before any llm() call was compared with"
            f" the original's, so this failure says nothing about the variant"
        )
    lines = [f"the test failed on variant {variant!r}; its llm() calls so far:"]
    for c in comparisons:
        held = "the comparison held" if c.passed else "the comparison diverged"
        lines += [
            f"  original prompt: {trim(c.original_prompt, 200)!r}",
            f"  variant prompt:  {trim(c.variant_prompt, 200)!r}",
            f"  original output: {trim(c.original_outputs[0])!r}",
            f"  variant output:  {trim(c.variant_outputs[0])!r}",
        ]
        if c.extract is not None:
            lines += [
                f"  original extracted: {_maybe(c.original_extracted)}",
                f"  variant extracted:  {_maybe(c.variant_extracted)}",
            ]
        lines.append(f"  {c.metric} similarity {c.score:.3f}, threshold {c.threshold:.3f}: {held}")
    return "\n".join(lines)
