"""Findings a similarity score hides: collapsed outputs, provider noise, inputs ignored.

Pure functions over outputs and over the per-item result records (see :mod:`report`); nothing
here imports pytest or calls a model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .scoring import EXPECTED_OUTCOMES, FAILED_OUTCOMES

ORIGINAL = "original"
CONTROL = "control"
#: outcomes of an item whose output diverged, expectedly or not
DIVERGED_OUTCOMES = FAILED_OUTCOMES | EXPECTED_OUTCOMES

#: The longest unit whose repetition counts as a collapse ("<start_of_image>" is 16 chars).
MAX_UNIT = 32
#: A repeated tail must be at least this long and this many units...
MIN_TAIL = 16
MIN_REPEATS = 4
#: ...or, when the output was cut at max_tokens, this many units, covering this share of it.
CUT_REPEATS = 3
CUT_SHARE = 0.3


def _periodic_tail(text: str, unit: int) -> int:
    """The length of the longest tail of *text* that repeats its last *unit* characters."""
    n = len(text)
    if n < unit:
        return 0
    i = n - unit
    while i > 0 and text[i - 1] == text[i - 1 + unit]:
        i -= 1
    return n - i


def repeated_tail(text: str) -> tuple[str, int, int]:
    """(unit, repeats, tail length) of the longest run of a short unit repeated to the end."""
    best = ("", 0, 0)
    for unit in range(1, min(MAX_UNIT, len(text) // 2) + 1):
        tail = _periodic_tail(text, unit)
        repeats = tail // unit
        if repeats >= 2 and tail > best[2]:
            best = (text[len(text) - unit :], repeats, tail)
    return best


def collapse_reason(output: str, *, cut: bool = False) -> str | None:
    """Why *output* is a collapse (empty, blank, a unit repeated to the end), or None.

    *cut*: the model stopped at ``max_tokens``, so a shorter repeating tail already counts.
    """
    if output == "":
        return "empty output"
    stripped = output.strip()
    if not stripped:
        return "whitespace-only output"
    unit, repeats, tail = repeated_tail(stripped)
    start = len(stripped) - tail
    while (
        start < len(stripped) and stripped[start].isspace()
    ):  # the run starts at its first visible character
        start += 1
    # The unit as it first appears in the run, not a rotation of it ("<a> <a> <a>" -> "<a> ").
    unit_text = stripped[start : start + len(unit)].strip() or unit
    if repeats >= MIN_REPEATS and tail >= MIN_TAIL and tail * 2 >= len(stripped):
        where = f" after {start} other chars" if start else ""
        return f"{unit_text!r} repeated {repeats} times to the end{where}"
    if cut and repeats >= CUT_REPEATS and tail >= CUT_SHARE * len(stripped):
        return f"cut at max_tokens while repeating {unit_text!r} ({repeats} times)"
    return None


# --- statistics ---------------------------------------------------------------------------

#: Fewer compared tests than this, and a variant's sensitivity is "insufficient data".
MIN_TESTS = 5
Z95 = 1.959963984540054


def wilson(failed: int, tests: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of the share *failed* / *tests*."""
    if tests <= 0:
        return (0.0, 1.0)
    p = failed / tests
    denominator = 1 + z * z / tests
    centre = (p + z * z / (2 * tests)) / denominator
    half = z * math.sqrt(p * (1 - p) / tests + z * z / (4 * tests * tests)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def interval_text(stats: Mapping[str, Any]) -> str:
    """``95% CI 12-48%`` or ``insufficient data (n < 5)`` for a sensitivity entry."""
    if stats.get("insufficient_data"):
        return f"insufficient data (fewer than {MIN_TESTS} tests)"
    return f"95% CI {stats['low']:.0%}-{stats['high']:.0%}"


# --- findings across a run's records ------------------------------------------------------

Result = Mapping[str, Any]


def _by_test(results: Iterable[Result]) -> dict[str, list[Result]]:
    tests: dict[str, list[Result]] = {}
    for result in results:
        tests.setdefault(str(result["test"]), []).append(result)
    return tests


def annotate(results: Sequence[Result]) -> list[dict[str, Any]]:
    """The records with run-level findings added (idempotent; the input is not changed).

    - ``noise``: a failed variant item of a test whose ``control`` failed: the provider gave
      another answer to the unchanged prompt, so the failure is within its noise;
    - ``ignores_input``: every output of the test is the same text, and another test got that
      text too: the model answered without reading the prompt.
    """
    out = [dict(r) for r in results]
    tests = _by_test(out)
    noisy = {
        test
        for test, items in tests.items()
        if any(r.get("variant") == CONTROL and r.get("outcome") in DIVERGED_OUTCOMES for r in items)
    }
    single: dict[str, str] = {}
    for test, items in tests.items():
        outputs = _outputs(items)
        compared = any(r.get("score") is not None for r in items)
        if len(outputs) == 1 and compared:
            single[test] = next(iter(outputs))
    shared = {
        test
        for test, output in single.items()
        if sum(other == output for other in single.values()) > 1
    }
    for record in out:
        test = str(record["test"])
        variant = record.get("variant")
        if (
            test in noisy
            and variant not in (ORIGINAL, CONTROL)
            and record.get("outcome") in DIVERGED_OUTCOMES
        ):
            record["noise"] = True
        if test in shared:
            record["ignores_input"] = True
    return out


def _outputs(items: Iterable[Result]) -> set[str]:
    outputs: set[str] = set()
    for r in items:
        for key in ("output", "original_output", "variant_output"):
            if isinstance(r.get(key), str):
                outputs.add(r[key])
    return outputs


def control_summary(results: Iterable[Result]) -> dict[str, int]:
    """Controls compared, controls failed, and variant failures that are within noise."""
    results = list(results)
    controls = [
        r
        for r in results
        if r.get("variant") == CONTROL and r.get("outcome") in DIVERGED_OUTCOMES | {"passed"}
    ]
    return {
        "tests": len(controls),
        "failed": sum(r.get("outcome") in DIVERGED_OUTCOMES for r in controls),
        "noise_failures": sum(bool(r.get("noise")) for r in results),
    }


def collapsed_items(results: Iterable[Result]) -> list[tuple[str, str, str]]:
    """(test, "original" or variant name, reason) for every collapsed output, originals first."""
    seen: set[tuple[str, str]] = set()
    found: list[tuple[str, str, str]] = []
    for r in results:
        reasons = r.get("collapse_reasons") or {}
        for side, reason in reasons.items():
            name = ORIGINAL if side == ORIGINAL else str(r.get("variant"))
            key = (str(r["test"]), name)
            if key not in seen:
                seen.add(key)
                found.append((key[0], name, str(reason)))
    return sorted(found, key=lambda f: (f[1] != ORIGINAL, f[0], f[1]))


def lint_findings(results: Iterable[Result]) -> list[dict[str, str]]:
    """The lint's findings, once per (prompt, rule), with the first test that sent the prompt."""
    seen: set[tuple[str, str]] = set()
    found: list[dict[str, str]] = []
    for r in sorted(results, key=lambda r: str(r["nodeid"])):
        for finding in r.get("lint") or ():
            key = (str(finding.get("prompt")), str(finding.get("rule")))
            if key not in seen:
                seen.add(key)
                found.append({"test": str(r["test"]), **finding})
    return found


def summary_fields(results: Sequence[Result]) -> dict[str, Any]:
    """Keys added to the JSON report's summary."""
    collapsed = collapsed_items(results)
    return {
        "controls": control_summary(results),
        "collapsed": [{"test": t, "variant": v, "reason": why} for t, v, why in collapsed],
        "ignores_input": sorted({str(r["test"]) for r in results if r.get("ignores_input")}),
        "lint": lint_findings(results),
    }


def finding_lines(results: Sequence[Result], limit: int = 10) -> list[str]:
    """The findings that come first in the terminal summary: noise, collapses, inputs ignored."""
    lines: list[str] = []
    controls = control_summary(results)
    if controls["failed"]:
        lines.append(
            f"PROVIDER NOISE: control failed in {controls['failed']} of {controls['tests']}"
            " tests (the unchanged prompt asked again gave another answer); "
            f"{controls['noise_failures']} variant failure"
            f"{'s' * (controls['noise_failures'] != 1)} in those tests are within provider"
            " noise and not counted in the robustness score"
        )
    collapsed = collapsed_items(results)
    originals = [c for c in collapsed if c[1] == ORIGINAL]
    if collapsed:
        lines.append(
            f"COLLAPSED OUTPUTS: {len(originals)} original, {len(collapsed) - len(originals)}"
            " variant (empty, blank or a unit repeated to the end):"
        )
        for test, variant, reason in collapsed[:limit]:
            lines.append(f"  {test} [{variant}]: {reason}")
        if len(collapsed) > limit:
            lines.append(f"  ... and {len(collapsed) - limit} more")
    ignored = summary_fields(results)["ignores_input"]
    if ignored:
        lines.append(
            f"INPUT IGNORED? {len(ignored)} tests got one and the same output for every variant"
            " and for each other: they look robust because the model is not reading the prompt"
        )
        lines += [f"  {test}" for test in ignored[:limit]]
    lint = lint_findings(results)
    if lint:
        lines.append(f"RISKY PROMPT FORMATTING (lint): {len(lint)} finding{'s' * (len(lint) != 1)}")
        prompt = None
        for finding in lint[: limit * 2]:
            if finding["prompt"] != prompt:
                prompt = finding["prompt"]
                lines.append(f"  {finding['test']}: {prompt[:60]!r}")
            lines.append(f"    {finding['message']}")
            if finding.get("effect"):
                lines.append(f"      measured: {finding['effect']}")
    return lines
