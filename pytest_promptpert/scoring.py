"""How a run's items count: outcomes, the robustness score and the ``fail_under`` gate.

No pytest here. Each item of a marked test ends as one result with one of these outcomes:

- ``passed`` / ``xpassed``: the variant held (an ``xfail`` that passed held too);
- ``failed``: the variant changed the behaviour: its output diverged from the original's, or
  the test's own check failed after comparing a variant's output;
- ``xfailed``: an expected divergence (``@pytest.mark.xfail``): known, not news;
- ``error``: the item judged no behaviour: a setup or fixture error, a provider or cache
  error, a test that failed before any variant output was compared (e.g. an ``async def``
  test with no async plugin);
- ``skipped``: nothing to compare (the variant leaves the prompt unchanged, a skip).

The robustness score is passed / (passed + failed + error) over variant items: a skip and an
expected divergence are left out, an error is not a pass.

The gate (``--promptpert-fail-under=X``): with it set, a variant item that ``failed`` is reported
to pytest as xfailed ("excused"), so pytest's summary, JUnit XML and the exit status follow the
gate rather than each divergence. The excused divergences still count against the score, and at
the end of the run the gate judges it (:func:`judge_gate`). The gate only ever makes a run fail:
it never turns pytest's own failure (an original, an error, a strict XPASS, a stopped run) into
a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ORIGINAL = "original"
CONTROL = "control"
PASSED_OUTCOMES = frozenset({"passed", "xpassed"})
FAILED_OUTCOMES = frozenset({"failed"})
EXPECTED_OUTCOMES = frozenset({"xfailed"})
ERROR_OUTCOMES = frozenset({"error"})
SKIPPED_OUTCOMES = frozenset({"skipped"})
#: the prefix of the xfail reason of an excused divergence
EXCUSED = "promptpert: divergence within --promptpert-fail-under"

Result = Mapping[str, Any]


def variant_results(results: Iterable[Result]) -> list[Result]:
    """The items of variants, without the ``original`` items."""
    return [r for r in results if r.get("variant") != ORIGINAL]


def measures_robustness(result: Result) -> bool:
    """Not the control (it measures the provider) and not a failure within provider noise."""
    return result.get("variant") != CONTROL and not result.get("noise")


def robustness_score(results: Iterable[Result]) -> float | None:
    """The share of variant items that passed, over those passed, failed or in error; None if
    there are none. Skipped items, expected divergences (xfailed), controls and failures within
    provider noise are left out."""
    counted = [
        r["outcome"]
        for r in variant_results(results)
        if r.get("outcome") in PASSED_OUTCOMES | FAILED_OUTCOMES | ERROR_OUTCOMES
        and measures_robustness(r)
    ]
    if not counted:
        return None
    return sum(o in PASSED_OUTCOMES for o in counted) / len(counted)


def below_fail_under(score: float | None, fail_under: float | None) -> bool:
    """Whether a score misses the gate. A run with nothing compared does not miss it."""
    return fail_under is not None and score is not None and score < fail_under


def excusable(record: Result) -> bool:
    """Whether the gate may excuse this item's failure: a variant's changed behaviour only."""
    return record.get("variant") != ORIGINAL and record.get("outcome") in FAILED_OUTCOMES


def excuse_reason(failure: str) -> str:
    """The xfail reason of an excused divergence: the failure's first line, shortened."""
    first = next((line.strip() for line in failure.splitlines() if line.strip()), "")
    if len(first) > 160:
        first = first[:159] + "…"
    return f"{EXCUSED}: {first}" if first else EXCUSED


@dataclass(frozen=True)
class GateVerdict:
    """What ``--promptpert-fail-under`` made of a run."""

    fail_under: float
    score: float | None
    #: "passed", "failed", "no score" (nothing compared: pytest's verdict stands) or
    #: "incomplete" (the run stopped before all its items ran: the gate fails it)
    status: str
    line: str
    excused: int = 0

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "incomplete")

    def as_json(self) -> dict[str, Any]:
        return {
            "fail_under": self.fail_under,
            "score": None if self.score is None else round(self.score, 6),
            "status": self.status,
            "excused": self.excused,
            "line": self.line,
        }


def judge_gate(
    results: Iterable[Result],
    fail_under: float | None,
    *,
    ran: int,
    collected: int,
    stopped: str | None = None,
) -> GateVerdict | None:
    """The gate's verdict on a run (None without ``fail_under``).

    *ran* items of *collected* reported; *stopped* says why the run ended early (``-x``,
    ``--maxfail``, Ctrl-C, a collection error), if it did. A run that did not run all its items
    fails the gate: its divergences were excused on the promise of a score over the whole run.
    """
    if fail_under is None:
        return None
    results = list(results)
    score = robustness_score(results)
    excused = sum(excusable(r) and bool(r.get("excused")) for r in results)
    bound = f"--promptpert-fail-under={fail_under:g}"
    shown = "" if score is None else f" (robustness {score:.3f} so far)"
    if stopped or ran < collected:
        why = f": {stopped}" if stopped else ""
        line = (
            f"promptpert: gate failed: the run stopped after {ran} of {collected} items{why};"
            f" a score over part of a run{shown} is no verdict for {bound}"
        )
        return GateVerdict(fail_under, score, "incomplete", line, excused)
    if score is None:
        line = (
            f"promptpert: gate not applied: no variant item was compared, so there is no"
            f" robustness score to hold to {bound}"
        )
        return GateVerdict(fail_under, score, "no score", line, excused)
    note = _excused_note(excused)
    if below_fail_under(score, fail_under):
        line = f"promptpert: gate failed: robustness {score:.3f} < {bound}{note}"
        return GateVerdict(fail_under, score, "failed", line, excused)
    line = f"promptpert: gate passed: robustness {score:.3f} >= {bound}{note}"
    return GateVerdict(fail_under, score, "passed", line, excused)


def _excused_note(excused: int) -> str:
    if not excused:
        return ""
    divergences = f"{excused} divergence{'s' * (excused != 1)}"
    return f" ({divergences} shown as xfailed, counted in the score)"
