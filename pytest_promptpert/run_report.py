"""The run's reporting, registered as a plugin by ``pytest_configure``: it collects each item's
result (on the xdist controller too), judges the ``fail_under`` gate and writes the reports.

pytest wiring only: what a result counts for and what the gate decides is in ``scoring`` and
``outputs``, which import no pytest.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from .outputs import RunResults
from .session import PromptpertSession


def _narrowed(config: pytest.Config) -> bool:
    """Whether this run may leave out tests (so a baseline update must keep the others)."""
    option = config.option
    return bool(
        config.args_source == pytest.Config.ArgsSource.ARGS
        or getattr(option, "keyword", "")
        or getattr(option, "markexpr", "")
        or getattr(option, "lf", False)
        or getattr(option, "deselect", None)
    )


class RunReport:
    """Hooks that collect the run's records (on the xdist controller too) and finish it."""

    def __init__(self, config: pytest.Config, session: PromptpertSession) -> None:
        self.config = config
        self.session = session
        self.run = RunResults(session.settings, partial=_narrowed(config))

    def _stats(self) -> dict[str, float]:
        if not self.session.has_client:
            return self.run.stats(None, None)
        client = self.session.client
        return self.run.stats(client.stats, client.counted())

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.run.partial = self.run.partial or bool(items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "promptpert", None)
        self.run.add(report.nodeid, report.when, report.outcome, record)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["promptpert_run"] = self.session.run_id

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        if output.get("promptpert_stats"):
            self.run.worker_stats.append(output["promptpert_stats"])
        if output.get("promptpert_keys"):
            self.run.worker_keys.append(output["promptpert_keys"])

    def pytest_keyboard_interrupt(self) -> None:
        if self.session.has_client:
            self.session.client.cancel()  # no queued call or retry goes out after Ctrl-C

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # tryfirst: the gate is judged before JUnit XML is written and the summary printed.
        if self.session.has_client:
            if session.exitstatus == pytest.ExitCode.INTERRUPTED:
                self.session.client.cancel()
            self.session.client.drain()  # prefetched calls still landing count in the stats
        if hasattr(self.config, "workerinput"):
            workeroutput = self.config.workeroutput  # type: ignore[attr-defined]
            workeroutput["promptpert_stats"] = self._stats()
            if self.session.has_client:
                workeroutput["promptpert_keys"] = self.session.client.counted()
            return
        gate = None
        if not self.config.option.collectonly:  # nothing ran, so there is nothing to judge
            gate = self.run.judge(collected=session.testscollected, stopped=_stopped(session))
        self.run.write(
            self._stats(),
            update_baseline=self.config.getoption("promptpert_update_baseline"),
            step_summary=os.environ.get("GITHUB_STEP_SUMMARY"),
        )
        if self.run.write_failures and session.exitstatus == pytest.ExitCode.OK:
            # As when pytest cannot write its JUnit XML, but said in one line, summary kept.
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        if gate is None or not gate.failed:
            return  # the gate never turns pytest's own verdict into a pass
        ended_normally = session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        if ended_normally and (gate.status == "failed" or session.exitstatus == 0):
            # One failed entry for the gate, so that pytest's summary line and JUnit XML say
            # why the run failed even though its excused divergences show as xfailed.
            session.testscollected += 1  # counted as one more entry: progress stays at 100%
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.ensure_newline()
            self.config.hook.pytest_runtest_logreport(report=_gate_report(gate.line))
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        client = self.session.client if self.session.has_client else None
        lint_only = self.session.lint_only
        planned = (
            list(client.planned.values()) if client and client.planning and not lint_only else None
        )
        lines = self.run.summary_lines(
            self._stats(), self.config.get_verbosity(), self.session.baseline, planned, lint_only
        )
        if lines:
            terminalreporter.write_sep("-", "promptpert")
            for line in lines:
                terminalreporter.write_line(line)


def _stopped(session: pytest.Session) -> str | None:
    """Why the run ended before all its items ran, if it did."""
    for reason in (session.shouldfail, session.shouldstop):
        if reason:
            return reason if isinstance(reason, str) else "stopped early"
    if session.exitstatus == pytest.ExitCode.INTERRUPTED:
        return "interrupted"
    return None


def _gate_report(line: str) -> pytest.TestReport:
    explanation = (
        "The robustness score is the share of variant items that held. With"
        " --promptpert-fail-under, each divergence is shown as xfailed and counted here instead;"
        " this entry fails the run."
    )
    return pytest.TestReport(
        nodeid="promptpert::fail-under",
        location=("promptpert", None, "promptpert gate (--promptpert-fail-under)"),
        keywords={},
        outcome="failed",
        longrepr=f"{line}\n{explanation}",
        when="call",
    )
