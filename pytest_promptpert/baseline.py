"""Baselines: every variant's recorded score, so a later run can tell when one fell.

The file is meant to be committed and reviewed in pull requests, so it is written with sorted
keys, one score per line and rounded scores; a changed score is a one-line diff::

    {
      "scores": {
        "tests/test_prompts.py::test_sign": {
          "add_period": 0.9412,
          "lowercase": 1.0
        }
      },
      "version": 1
    }

Nothing here imports pytest.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

BASELINE_VERSION = 1
#: Digits kept in the file: enough for any tolerance, few enough to read.
DIGITS = 4
#: Scores are rounded to DIGITS in the file; do not fail on the rounding.
SLACK = 0.5 * 10**-DIGITS

Scores = dict[str, dict[str, float]]


class BaselineError(ValueError):
    """A baseline file that cannot be used, with its path in the message."""


def baseline_data(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"version": 1, "scores": {test: {variant: score}}}`` of every compared variant item."""
    scores: Scores = {}
    for result in results:
        score = result.get("score")
        if result.get("variant") == "original" or score is None:
            continue
        scores.setdefault(str(result["test"]), {})[str(result["variant"])] = round(
            float(score), DIGITS
        )
    return {"version": BASELINE_VERSION, "scores": _sorted(scores)}


def _sorted(scores: Mapping[str, Mapping[str, float]]) -> Scores:
    return {test: dict(sorted(scores[test].items())) for test in sorted(scores)}


def write_baseline(
    path: Path,
    results: Iterable[Mapping[str, Any]],
    *,
    keep: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the baseline of *results* to *path* atomically, and return what was written.

    With *keep* (a loaded baseline), every score it records that *results* does not replace is
    kept, variant by variant, so updating from a partial run (``-k``, ``--lf``, a node id) does
    not forget the rest.
    """
    data = baseline_data(results)
    if keep is not None:
        merged = {test: dict(v) for test, v in keep["scores"].items()}
        for test, variants in data["scores"].items():
            merged.setdefault(test, {}).update(variants)
        data["scores"] = _sorted(merged)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a crash never leaves a half-written baseline behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return data


def load_baseline(path: Path) -> dict[str, Any] | None:
    """The baseline at *path*, None when there is no such file; BaselineError if malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"cannot read the baseline {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"the baseline {path} is not valid JSON: {exc}") from None
    return {"version": BASELINE_VERSION, "scores": _validated_scores(data, path)}


def _validated_scores(data: object, path: Path) -> Scores:
    fix = "fix it or rewrite it with --promptpert-update-baseline"
    if not isinstance(data, dict) or not isinstance(data.get("scores"), dict):
        raise BaselineError(f'the baseline {path} has no "scores" object; {fix}')
    if data.get("version") != BASELINE_VERSION:
        raise BaselineError(
            f"the baseline {path} has version {data.get('version')!r}; this plugin reads"
            f" version {BASELINE_VERSION}; {fix}"
        )
    scores: Scores = {}
    for test, variants in data["scores"].items():
        if not isinstance(variants, dict):
            raise BaselineError(f"the baseline {path}: scores of {test!r} are not an object; {fix}")
        for variant, score in variants.items():
            if (
                isinstance(score, bool)
                or not isinstance(score, (int, float))
                or not math.isfinite(score)
                or not 0.0 <= score <= 1.0
            ):
                # json.loads reads NaN and Infinity; a NaN score would never regress.
                raise BaselineError(
                    f"the baseline {path}: the score of {test!r} variant {variant!r}"
                    f" is {score!r}, not a number in [0, 1]; {fix}"
                )
            scores.setdefault(test, {})[variant] = float(score)
    return scores


def recorded_score(baseline: Mapping[str, Any], test: str, variant: str) -> float | None:
    score = baseline["scores"].get(test, {}).get(variant)
    return None if score is None else float(score)


def check(result: Mapping[str, Any], baseline: Mapping[str, Any], tolerance: float) -> str | None:
    """A failure message when *result*'s score fell more than *tolerance* below its record.

    *result* needs ``test``, ``variant`` and ``score``. None when the score held, when nothing
    was compared, or when the baseline has no record of this test and variant.
    """
    score = result.get("score")
    if score is None or result.get("variant") == "original":
        return None
    recorded = recorded_score(baseline, str(result["test"]), str(result["variant"]))
    if recorded is None or recorded - float(score) <= tolerance + SLACK:
        return None
    metric = result.get("metric", "similarity")
    return (
        f"variant {result['variant']!r} regressed against the baseline:"
        f" {metric} score {float(score):.3f} is {recorded - float(score):.3f} below"
        f" the recorded {recorded:.3f} (tolerance {tolerance:g})"
    )


def changes(
    results: Iterable[Mapping[str, Any]], baseline: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """(tests this run compared that the baseline lacks, tests it records that were not run)."""
    run = set(baseline_data(results)["scores"])
    recorded = set(baseline["scores"])
    return sorted(run - recorded), sorted(recorded - run)


def changes_lines(new: list[str], removed: list[str], path: Path) -> list[str]:
    """Terminal lines reporting new and removed tests (they are reported, never failed)."""
    lines = []
    if new:
        lines.append(
            f"baseline: {len(new)} test(s) not in {path.name} yet"
            f" (record them with --promptpert-update-baseline):"
        )
        lines += [f"  + {test}" for test in new]
    if removed:
        lines.append(f"baseline: {len(removed)} test(s) in {path.name} were not run:")
        lines += [f"  - {test}" for test in removed]
    return lines
