"""Cross-test prefetch, registered as a plugin by ``pytest_configure``: reads the manifest,
starts the selected tests' known calls when the test loop starts, and at the end writes the
manifest (on the xdist controller, from the workers' records) and reports unused prefetches.

pytest wiring only: the manifest is ``manifest.py``, the prefetch ``prefetch.py``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from .manifest import MANIFEST_NAME, CallSpec, Entries, load, merge, requests_for, write
from .outputs import RunResults
from .prefetch import Outcome, Prefetcher, summary_lines
from .pytest_warnings import ManifestWarning
from .request import Request
from .session import PromptpertSession
from .stash import PLAN

#: markers and options of pytest-recording: each test's calls must happen inside that test
_RECORDER_MARKERS = ("vcr", "block_network")


class PrefetchRun:
    """The prefetch of one pytest process, and the manifest's upkeep on the controller."""

    def __init__(self, config: pytest.Config, session: PromptpertSession, run: RunResults) -> None:
        self.config = config
        self.session = session
        self.run = run
        settings = session.settings
        self.path = settings.cache_dir / MANIFEST_NAME
        self.workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        self.planning = bool(config.getoption("promptpert_plan"))
        self.enabled = (
            settings.prefetch and settings.cache in ("auto", "refresh") and not session.lint_only
        )
        session.call_log.enabled = self.enabled and not self.planning
        self.entries, problem = load(self.path) if self.enabled else ({}, None)
        if problem and self.workerinput is None:  # said once, by the controller
            config.issue_config_time_warning(
                ManifestWarning(
                    f"pytest-promptpert: the prefetch manifest {self.path} {problem}; it was"
                    " ignored (no calls prefetched), and this run writes a new one"
                ),
                stacklevel=2,
            )
        self.prefetcher: Prefetcher | None = None
        self.planned = 0
        self.parts: list[dict[str, Any]] = []
        self.worker_lost = False  # an xdist worker crashed: its records are missing

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Start the prefetch as the tests start: after collection, never blocking it."""
        option = self.config.option
        if not self.entries or option.collectonly:
            return
        if session.testsfailed and not option.continue_on_collection_errors:
            return  # pytest stops on collection errors
        selected = [
            (plan.test, plan.variant)
            for item in session.items
            if (plan := item.stash.get(PLAN, None)) is not None
        ]
        if not selected or _recorded(self.config, session.items):
            return
        client = self.session.client

        def build(spec: CallSpec) -> Request:
            return client.request(spec["messages"], sample=spec["sample"], **spec["params"])

        requests = requests_for(self.entries, selected, build)
        if self.planning:
            self.planned = Prefetcher(client, requests, client.concurrency).plan()
            return
        if self.workerinput is not None:
            # Each worker starts its share; a test on another worker waits on the key's lock.
            index = int(str(self.workerinput.get("workerid", "gw0")).removeprefix("gw") or 0)
            count = int(self.workerinput.get("workercount", 1))
            requests = requests[index::count]
        self.prefetcher = Prefetcher(client, requests, client.concurrency)
        self.prefetcher.start()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        part = getattr(node, "workeroutput", {}).get("promptpert_prefetch")
        if part:
            self.parts.append(part)
        if error is not None or not part:
            self.worker_lost = True

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        # Before the run's report is written (it includes what the prefetch did).
        self._finish(session)
        return (yield)

    def _finish(self, session: pytest.Session) -> None:
        called = self.prefetcher.finish() if self.prefetcher is not None else {}
        log = self.session.call_log
        part = Outcome.part(self.prefetcher is not None, called, log.asked, self.planned)
        part["entries"] = log.entries
        if self.workerinput is not None:
            self.config.workeroutput["promptpert_prefetch"] = part  # type: ignore[attr-defined]
            return
        outcome = Outcome()
        entries: Entries = {}
        for each in (part, *self.parts):
            outcome.add(each)
            for test, items in each.get("entries", {}).items():
                entries.setdefault(test, {}).update(items)
        if self.parts:
            outcome.planned = 0  # under xdist the controller lists no plan to count into
        if outcome.ran or outcome.planned:
            self.run.summary_extra["prefetch"] = outcome.as_json()
        self.run.notes += summary_lines(outcome, str(self.path))
        if entries and self.enabled and not self.planning:
            self._write(session, entries)

    def _write(self, session: pytest.Session, entries: Entries) -> None:
        stopped = bool(
            session.shouldfail
            or session.shouldstop
            or session.exitstatus == pytest.ExitCode.INTERRUPTED
            or self.worker_lost
        )
        if not self.path.parent.is_dir():
            return  # no call reached the cache (nothing to prefetch next time)
        complete = not (self.run.partial or stopped)
        try:
            write(self.path, merge(self.entries, entries, complete=complete))
        except OSError as exc:
            self.run.notes.append(
                f"promptpert: could not write the prefetch manifest {self.path}:"
                f" {exc.strerror or exc}"
            )


def _recorded(config: pytest.Config, items: list[pytest.Item]) -> bool:
    """Whether the run records or blocks each test's HTTP calls (pytest-recording).

    A cassette holds what its test asked for: a call made for a later test while another runs
    would land in the wrong cassette, or get past ``--block-network`` before any test ran.
    """
    if getattr(config.option, "block_network", False):
        return True
    return any(item.get_closest_marker(name) for item in items for name in _RECORDER_MARKERS)
