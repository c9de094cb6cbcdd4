"""Comparing an intercepted call with its twin, and an observed result with the original's.

Text goes through the configured metric, as for ``llm``. Structure does not: a different tool,
different tool arguments, or JSON whose keys or non-text values differ is a behaviour change
(score 0), and the message says which. Text inside JSON is compared by the metric, leaf by leaf.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..compare import Comparison, compare, failure_message
from ..metrics import Metric, score
from .adapters import Answer, ToolCall


@dataclass(frozen=True)
class CallComparison(Comparison):
    """A comparison of intercepted calls or observed values, with what differs in structure."""

    #: what was compared: ``"POST http://host/v1/chat/completions"``, ``"observe #1"``
    source: str = ""
    differences: tuple[str, ...] = ()


def _as_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _value_differences(path: str, a: Any, b: Any) -> list[str]:
    """Where two JSON values differ in structure or in a non-text leaf."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in the original" for k in a if k not in b]
        out += [f"{path}.{k}: only in the variant" for k in b if k not in a]
        for k in a:
            if k in b:
                out += _value_differences(f"{path}.{k}", a[k], b[k])
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items vs {len(b)}"]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += _value_differences(f"{path}[{i}]", x, y)
        return out
    if isinstance(a, str) and isinstance(b, str):
        return []  # text: the metric's business
    if a != b:
        return [f"{path}: {json.dumps(a)[:80]} vs {json.dumps(b)[:80]}"]
    return []


def _text_leaves(a: Any, b: Any) -> list[tuple[str, str]]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [pair for k in a if k in b for pair in _text_leaves(a[k], b[k])]
    if isinstance(a, list) and isinstance(b, list):
        return [pair for x, y in zip(a, b, strict=False) for pair in _text_leaves(x, y)]
    if isinstance(a, str) and isinstance(b, str):
        return [(a, b)]
    return []


def value_metric(metric: Metric, name: str) -> Metric:
    """*metric* lifted to JSON text: structure must match, text leaves are scored (worst)."""

    def scored(original: str, variant: str) -> float:
        a, b = _as_json(original), _as_json(variant)
        if a is None or b is None:
            if not original and not variant:
                return 1.0
            return score(metric, original, variant, name=name)
        if _value_differences("$", a, b):
            return 0.0
        leaves = _text_leaves(a, b)
        return min((score(metric, x, y, name=name) for x, y in leaves), default=1.0)

    return scored


def tool_differences(original: Sequence[ToolCall], variant: Sequence[ToolCall]) -> list[str]:
    names_o, names_v = [c.name for c in original], [c.name for c in variant]
    if names_o != names_v:
        return [f"tools called: {names_o} vs {names_v}"]
    out = []
    for o, v in zip(original, variant, strict=True):
        if o.arguments != v.arguments:
            where = _value_differences("$", o.arguments, v.arguments) or [
                f"{json.dumps(o.arguments)[:80]} vs {json.dumps(v.arguments)[:80]}"
            ]
            out.append(f"tool {o.name!r} arguments differ: " + "; ".join(where))
    return out


def compare_answers(
    metric: Metric,
    metric_name: str,
    threshold: float,
    source: str,
    prompts: tuple[str, str],
    originals: Sequence[Answer],
    variants: Sequence[Answer],
) -> CallComparison:
    """One intercepted call against its twin (each with one answer per sample)."""
    base = compare(
        value_metric(metric, metric_name),
        metric_name,
        threshold,
        prompts[0],
        prompts[1],
        [a.text for a in originals],
        [a.text for a in variants],
    )
    differences = tuple(tool_differences(originals[0].tool_calls, variants[0].tool_calls))
    a, b = _as_json(originals[0].text), _as_json(variants[0].text)
    if a is not None and b is not None:
        differences += tuple(_value_differences("$", a, b))
    return CallComparison(
        original_prompt=base.original_prompt,
        variant_prompt=base.variant_prompt,
        original_outputs=tuple(a.render() for a in originals),
        variant_outputs=tuple(a.render() for a in variants),
        metric=base.metric,
        threshold=base.threshold,
        score=0.0 if differences else base.score,
        noise_floor=base.noise_floor,
        sample_scores=base.sample_scores,
        source=source,
        differences=differences,
    )


def _show(value: Any) -> str:
    return (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )


def compare_observed(
    metric: Metric, metric_name: str, threshold: float, index: int, original: Any, variant: Any
) -> CallComparison:
    """The application's result in the variant item against the original item's."""
    a, b = _show(original), _show(variant)
    differences: tuple[str, ...] = ()
    if not isinstance(original, str) or not isinstance(variant, str):
        differences = tuple(_value_differences("$", original, variant))
        if type(original) is not type(variant):
            differences = (f"$: {type(original).__name__} vs {type(variant).__name__}",)
    base = compare(value_metric(metric, metric_name), metric_name, threshold, "", "", [a], [b])
    return CallComparison(
        original_prompt="(the original item's result)",
        variant_prompt="(this variant's result)",
        original_outputs=(a,),
        variant_outputs=(b,),
        metric=base.metric,
        threshold=base.threshold,
        score=0.0 if differences else base.score,
        source=f"observe #{index + 1}",
        differences=differences,
    )


def describe(variant: str, comparison: Comparison) -> str:
    """The failure message of one comparison, structure differences and source included."""
    text = failure_message(variant, comparison)
    if not isinstance(comparison, CallComparison):
        return text
    head, _, rest = text.partition("\n")
    if comparison.source.startswith("observe"):
        head = head.replace("changed the model's behaviour", "changed the application's result")
    lines = [head, f"  in: {comparison.source}"]
    lines += [f"  differs: {d}" for d in comparison.differences]
    if comparison.source.startswith("observe"):
        rest = "\n".join(line for line in rest.splitlines() if "prompt:" not in line)
    return "\n".join([*lines, rest]) if rest else "\n".join(lines)
