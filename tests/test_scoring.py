"""How items count, pure: one result per node id, the gate's verdicts, cache counts per key."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from synthetic import result, suite

from pytest_promptpert.html_report import render_html
from pytest_promptpert.outputs import RunResults, count_keys
from pytest_promptpert.report import build_json
from pytest_promptpert.scoring import GateVerdict, excuse_reason, judge_gate
from pytest_promptpert.settings import Settings
from pytest_promptpert.step_summary import markdown_summary

T = "tests/test_p.py::test_a"


def items(*outcomes: str) -> list[dict[str, object]]:
    return [result(T, "original")] + [
        result(T, f"v{i}", outcome, 0.5) for i, outcome in enumerate(outcomes)
    ]


# --- one result per node id -------------------------------------------------------------------


def test_the_last_report_of_a_node_wins_and_reruns_are_no_results() -> None:
    run = RunResults(Settings())
    first = result(T, "add_period", "failed", 0.2)
    nodeid = str(first["nodeid"])
    run.add(nodeid, "setup", "passed", None)
    run.add(nodeid, "call", "rerun", first)  # pytest-rerunfailures: tried again
    run.add(nodeid, "setup", "passed", None)
    run.add(nodeid, "call", "rerun", first)
    run.add(nodeid, "setup", "passed", None)
    run.add(nodeid, "call", "passed", result(T, "add_period", "passed", 0.9))
    run.add(nodeid, "teardown", "passed", None)
    assert [r["outcome"] for r in run.results] == ["passed"]
    assert len(run.seen) == 1


def test_a_failed_teardown_makes_the_item_an_error() -> None:
    run = RunResults(Settings())
    record = result(T, "add_period", "failed", 0.2, excused=True)
    run.add(str(record["nodeid"]), "call", "skipped", record)
    run.add(str(record["nodeid"]), "teardown", "failed", None)
    assert run.results[0]["outcome"] == "error"
    assert "excused" not in run.results[0]
    assert "excused" in record  # the caller's record is not changed


# --- the gate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "fail_under", "status", "line"),
    [
        (
            ["passed", "passed", "passed", "failed"],
            0.7,
            "passed",
            "promptpert: gate passed: robustness 0.750 >= --promptpert-fail-under=0.7",
        ),
        (
            ["passed", "failed"],
            0.7,
            "failed",
            "promptpert: gate failed: robustness 0.500 < --promptpert-fail-under=0.7",
        ),
        # an expected divergence is left out of the score, so it cannot fail the gate
        (["passed", "xfailed", "xfailed", "xfailed"], 1.0, "passed", None),
        (["skipped"], 0.7, "no score", None),
    ],
)
def test_gate_verdicts(
    outcomes: list[str], fail_under: float, status: str, line: str | None
) -> None:
    gate = judge_gate(items(*outcomes), fail_under, ran=5, collected=5)
    assert gate is not None and gate.status == status
    assert gate.failed == (status == "failed")
    if line is not None:
        assert gate.line == line


def test_no_gate_without_fail_under() -> None:
    assert judge_gate(items("failed"), None, ran=2, collected=2) is None


@pytest.mark.parametrize(
    ("ran", "stopped"), [(8, "stopping after 1 failures"), (8, None), (37, "interrupted")]
)
def test_a_run_that_stopped_early_fails_the_gate_whatever_its_score(
    ran: int, stopped: str | None
) -> None:
    gate = judge_gate(items("passed"), 0.5, ran=ran, collected=37, stopped=stopped)
    assert gate is not None and gate.status == "incomplete" and gate.failed
    assert f"stopped after {ran} of 37 items" in gate.line
    assert "robustness 1.000 so far" in gate.line


def test_the_gate_line_counts_the_excused_divergences() -> None:
    results = items("passed", "passed", "passed")
    results += [result(T, "v9", "failed", 0.1, excused=True)]
    gate = judge_gate(results, 0.7, ran=5, collected=5)
    assert gate is not None
    assert gate.line.endswith("(1 divergence shown as xfailed, counted in the score)")
    assert gate.as_json()["excused"] == 1


def test_excuse_reason_is_one_short_line() -> None:
    reason = excuse_reason("variant 'x' changed the model's behaviour: ratio 0.1 < 0.6\n  more")
    assert reason == (
        "promptpert: divergence within --promptpert-fail-under:"
        " variant 'x' changed the model's behaviour: ratio 0.1 < 0.6"
    )
    assert len(excuse_reason("A" * 1000)) < 240


def test_the_gate_is_in_the_json_the_step_summary_and_the_html() -> None:
    gate = judge_gate(suite(), 0.9, ran=12, collected=12)
    assert isinstance(gate, GateVerdict) and gate.status == "failed"
    data = build_json(suite(), {}, Settings(fail_under=0.9), gate)
    assert data["summary"]["gate"]["status"] == "failed"
    assert "**gate failed: robustness 0.571 < --promptpert-fail-under=0.9**" in markdown_summary(
        suite(), {}, gate
    )
    page = render_html(data)
    assert 'class="gate gate-failed" data-gate="failed">promptpert: gate failed' in page


# --- the HTML does not paint expected divergences as failures ---------------------------------


class Cards(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.card: str | None = None
        self.values: dict[str, str] = {}
        self.cells: dict[str, str] = {}
        self._in_value = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-card"):
            self.card = a["data-card"]
        self._in_value = a.get("class") == "value"
        if "cell" in (a.get("class") or "").split():
            self.cells[str(a["data-variant"])] = str(a["class"])

    def handle_data(self, data: str) -> None:
        if self._in_value and self.card:
            self.values[self.card] = data
            self._in_value = False


def test_html_shows_one_failure_and_nine_expected_divergences_apart() -> None:
    results = [result(T, "original"), result(T, "v0", "failed", 0.1)]
    results += [result(T, f"x{i}", "xfailed", 0.2) for i in range(9)]
    page = Cards()
    page.feed(render_html(build_json(results, {}, Settings())))
    assert (page.values["failed"], page.values["expected"]) == ("1", "9")
    assert "o-failed" in page.cells["v0"]
    assert all("o-xfailed" in page.cells[f"x{i}"] for i in range(9))
    assert not any("o-failed" in page.cells[f"x{i}"] for i in range(9))


# --- cache counts per distinct request --------------------------------------------------------


def test_cache_counts_are_per_distinct_request_across_processes() -> None:
    worker_a = {"k1": False, "k2": True, "k3": False}
    worker_b = {"k1": False, "k2": True, "k3": True, "k4": True}  # k3 landed while b waited
    assert count_keys([worker_a, worker_b]) == (2, 2)  # k2, k4 hits; k1, k3 misses
    run = RunResults(Settings())
    run.worker_stats += [{"hits": 1, "misses": 2, "calls": 2}, {"hits": 3, "misses": 1}]
    run.worker_keys += [worker_a, worker_b]
    stats = run.stats(None, None)
    assert (stats["hits"], stats["misses"], stats["calls"]) == (2, 2, 2)
