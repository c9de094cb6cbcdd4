"""The end of a run: collected results turned into files, a gate verdict and summary lines.

No pytest here: the plugin feeds in each item's record and the workers' statistics, and prints
or applies what comes back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .baseline import changes, changes_lines, load_baseline, write_baseline
from .client import Stats
from .findings import annotate, finding_lines, lint_findings
from .html_report import render_html
from .report import (
    below_fail_under,
    build_json,
    fail_under_line,
    markdown_summary,
    plan_lines,
    robustness_score,
    terminal_summary,
)
from .request import Request
from .settings import Settings, SettingsError
from .variants import ORIGINAL


@dataclass
class RunResults:
    """Every item's record, merged across xdist workers, and what the run made of them."""

    settings: Settings
    results: list[dict[str, Any]] = field(default_factory=list)
    worker_stats: list[Mapping[str, float]] = field(default_factory=list)
    #: failures that fail_under does not excuse: originals, errors, setup and teardown
    other_failures: int = 0
    #: some items were deselected (-k, --lf): a baseline update keeps the tests not run
    partial: bool = False
    written: list[str] = field(default_factory=list)
    #: one line for each output that could not be written (a full disk, a vanished directory)
    write_failures: list[str] = field(default_factory=list)
    gate_line: str | None = None

    def add(self, record: Mapping[str, Any] | None, *, failed: bool, when: str) -> None:
        if record is not None:
            self.results.append(dict(record))
        robustness_failure = (
            record is not None
            and record["variant"] != ORIGINAL
            and record["outcome"] == "failed"
            and when == "call"
        )
        if failed and not robustness_failure:
            self.other_failures += 1

    def stats(self, own: Stats | None) -> dict[str, float]:
        merged = Stats()
        if own is not None:
            merged.merge(own.as_dict())
        for worker in self.worker_stats:
            merged.merge(worker)
        return merged.as_dict()

    def write(
        self, stats: Mapping[str, Any], *, update_baseline: bool, step_summary: str | None
    ) -> None:
        """The JSON and HTML reports, the step summary and the baseline, as configured.

        Each is written on its own: one that fails (a full disk) is one line in
        :attr:`write_failures`, and the others are still written.
        """
        settings = self.settings
        self.results = annotate(self.results)
        if settings.report is not None or settings.html is not None:
            data = build_json(self.results, stats, settings)
            if settings.report is not None:
                report = settings.report
                text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
                self._attempt("JSON report", report, lambda: _write(report, text))
            if settings.html is not None:
                html = settings.html
                self._attempt("HTML report", html, lambda: _write(html, render_html(data)))
        if step_summary and self.results:
            summary = markdown_summary(self.results, stats) + "\n"
            self._attempt(
                "$GITHUB_STEP_SUMMARY", Path(step_summary), lambda: _append(step_summary, summary)
            )
        if update_baseline and self.results:
            keep = load_baseline(settings.baseline) if self.partial else None
            self._attempt(
                "baseline",
                settings.baseline,
                lambda: write_baseline(settings.baseline, self.results, keep=keep),
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

    def gate(self, tests_failed: bool) -> bool | None:
        """With fail_under: whether the run failed (None: no gate, pytest's verdict stands)."""
        fail_under = self.settings.fail_under
        if fail_under is None:
            return None
        self.results = annotate(self.results)
        score = robustness_score(self.results)
        if below_fail_under(score, fail_under):
            self.gate_line = fail_under_line(score, fail_under)
            return True
        return tests_failed and self.other_failures > 0

    def summary_lines(
        self,
        stats: Mapping[str, Any],
        verbosity: int,
        baseline: Mapping[str, Any] | None,
        planned: list[tuple[Request, int, float]] | None,
        lint_only: bool = False,
    ) -> list[str]:
        self.results = annotate(self.results)
        if lint_only:
            found = lint_findings(self.results)
            return [
                *finding_lines(self.results),
                f"promptpert lint: {len(found)} finding{'s' * (len(found) != 1)} in the"
                f" prompts of {len({r['test'] for r in self.results})} tests; no model was called",
                *self.written,
            ]
        lines = terminal_summary(self.results, stats, verbosity)
        if baseline is not None and self.results:
            new, removed = changes(self.results, baseline)
            lines += changes_lines(new, removed, self.settings.baseline)
        if planned is not None:
            lines += plan_lines(planned)
        lines += self.written
        lines += self.write_failures
        if self.gate_line:
            lines.append(self.gate_line)
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
