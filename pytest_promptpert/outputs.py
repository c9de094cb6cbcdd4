"""The end of a run: collected results turned into files, a gate verdict and summary lines.

No pytest here: the plugin feeds in each item's record and the workers' statistics, and prints
or applies what comes back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .baseline import changes, changes_lines, load_baseline, write_baseline
from .client import Stats
from .findings import annotate, finding_lines, lint_findings
from .html_report import render_html
from .report import build_json, plan_lines, terminal_summary
from .request import Request
from .scoring import GateVerdict, judge_gate
from .settings import Settings, SettingsError
from .step_summary import markdown_summary


def count_keys(processes: Iterable[Mapping[str, bool]]) -> tuple[int, int]:
    """(hits, misses) over the distinct requests the processes of a run looked up.

    Each process (xdist worker) records every request it looked up and whether it was in the
    cache; a request that any of them had to wait for (a miss) is a miss of the run.
    """
    found: dict[str, bool] = {}
    for process in processes:
        for key, hit in process.items():
            found[key] = found.get(key, True) and bool(hit)
    hits = sum(found.values())
    return hits, len(found) - hits


@dataclass
class RunResults:
    """Every item's record, merged across xdist workers, and what the run made of them."""

    settings: Settings
    #: node id -> the item's record; a later attempt's (pytest-rerunfailures) replaces it
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: every node id that reported, marked or not: how much of the run ran
    seen: set[str] = field(default_factory=set)
    worker_stats: list[Mapping[str, float]] = field(default_factory=list)
    #: each worker's distinct requests -> whether each was a cache hit (Stats cannot add up)
    worker_keys: list[Mapping[str, bool]] = field(default_factory=list)
    #: some items were deselected (-k, --lf): a baseline update keeps the tests not run
    partial: bool = False
    written: list[str] = field(default_factory=list)
    #: one line for each output that could not be written (a full disk, a vanished directory)
    write_failures: list[str] = field(default_factory=list)
    gate: GateVerdict | None = None
    #: more of the summary from other parts of the plugin (e.g. the prefetch): JSON fields
    #: and terminal lines
    summary_extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def results(self) -> list[dict[str, Any]]:
        """One record per item, with the run-level findings (noise, ...) added."""
        return annotate(list(self.records.values()))

    def add(self, nodeid: str, when: str, outcome: str, record: Mapping[str, Any] | None) -> None:
        """One report of one item (setup, call or teardown); the last report of a node wins.

        A ``rerun`` report (pytest-rerunfailures: an attempt that is tried again) is no result.
        A failed teardown turns the item's result into an error.
        """
        if outcome == "rerun":
            return
        self.seen.add(nodeid)
        if record is not None:
            self.records[nodeid] = dict(record)
        elif when == "teardown" and outcome == "failed" and nodeid in self.records:
            self.records[nodeid].pop("excused", None)
            self.records[nodeid]["outcome"] = "error"

    def stats(self, own: Stats | None, own_keys: Mapping[str, bool] | None) -> dict[str, float]:
        merged = Stats()
        if own is not None:
            merged.merge(own.as_dict())
        for worker in self.worker_stats:
            merged.merge(worker)
        merged.hits, merged.misses = count_keys([own_keys or {}, *self.worker_keys])
        return merged.as_dict()

    def judge(self, *, collected: int, stopped: str | None) -> GateVerdict | None:
        """The fail_under gate's verdict (None without one); see ``scoring.judge_gate``."""
        self.gate = judge_gate(
            self.results,
            self.settings.fail_under,
            ran=len(self.seen),
            collected=collected,
            stopped=stopped,
        )
        return self.gate

    def write(
        self, stats: Mapping[str, Any], *, update_baseline: bool, step_summary: str | None
    ) -> None:
        """The JSON and HTML reports, the step summary and the baseline, as configured.

        Each is written on its own: one that fails (a full disk) is one line in
        :attr:`write_failures`, and the others are still written.
        """
        settings = self.settings
        results = self.results
        if settings.report is not None or settings.html is not None:
            data = build_json(results, stats, settings, self.gate)
            data["summary"].update(self.summary_extra)
            if settings.report is not None:
                report = settings.report
                text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
                self._attempt("JSON report", report, lambda: _write(report, text))
            if settings.html is not None:
                html = settings.html
                self._attempt("HTML report", html, lambda: _write(html, render_html(data)))
        if step_summary and results:
            summary = markdown_summary(results, stats, self.gate) + "\n"
            self._attempt(
                "$GITHUB_STEP_SUMMARY", Path(step_summary), lambda: _append(step_summary, summary)
            )
        if update_baseline and results:
            keep = load_baseline(settings.baseline) if self.partial else None
            self._attempt(
                "baseline",
                settings.baseline,
                lambda: write_baseline(settings.baseline, results, keep=keep),
                done=f"baseline written: {settings.baseline}",
            )

    def _attempt(
        self, what: str, path: Path, write: Callable[[], object], *, done: str | None = None
    ) -> None:
        try:
            write()
        except OSError as exc:
            self.write_failures.append(
                f"promptpert: could not write the {what} to {path}: {exc.strerror or exc}"
            )
        else:
            if what != "$GITHUB_STEP_SUMMARY":
                self.written.append(done or f"{what}: {path}")

    def summary_lines(
        self,
        stats: Mapping[str, Any],
        verbosity: int,
        baseline: Mapping[str, Any] | None,
        planned: list[tuple[Request, int, float]] | None,
        lint_only: bool = False,
    ) -> list[str]:
        results = self.results
        if lint_only:
            found = lint_findings(results)
            return [
                *finding_lines(results),
                f"promptpert lint: {len(found)} finding{'s' * (len(found) != 1)} in the"
                f" prompts of {len({r['test'] for r in results})} tests; no model was called",
                *self.written,
            ]
        lines = terminal_summary(results, stats, verbosity)
        if baseline is not None and results:
            new, removed = changes(results, baseline)
            lines += changes_lines(new, removed, self.settings.baseline)
        if planned is not None:
            lines += plan_lines(planned)
        lines += self.notes
        lines += self.written
        lines += self.write_failures
        if self.gate is not None:
            lines.append(self.gate.line)
        return lines


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # backslashreplace: a lone surrogate from a model becomes the JSON escape "\\ud83d".
    path.write_text(text, encoding="utf-8", errors="backslashreplace")


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8", errors="backslashreplace") as f:
        f.write(text)


def check_writable(path: Path, where: str) -> None:
    """A SettingsError now, rather than a lost report after the tests ran, if *path* cannot be
    written (a directory, a file in the way of its parent, a read-only place)."""
    problem = None
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if path.is_dir():
        problem = "it is a directory"
    elif existing != path and not existing.is_dir():
        problem = f"{existing} is not a directory"
    elif not os.access(existing, os.W_OK if existing == path else os.W_OK | os.X_OK):
        problem = f"{existing} is not writable"
    if problem:
        raise SettingsError(f"{where}: cannot write {str(path)!r} ({problem})")
