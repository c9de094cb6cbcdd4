"""The end of a run: collected results turned into files, a gate verdict and summary lines.

No pytest here: the plugin feeds in each item's record and the workers' statistics, and prints
or applies what comes back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
from .settings import Settings
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
        """The JSON and HTML reports, the step summary and the baseline, as configured."""
        settings = self.settings
        self.results = annotate(self.results)
        if settings.report is not None or settings.html is not None:
            data = build_json(self.results, stats, settings)
            if settings.report is not None:
                _write(settings.report, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
                self.written.append(f"JSON report: {settings.report}")
            if settings.html is not None:
                _write(settings.html, render_html(data))
                self.written.append(f"HTML report: {settings.html}")
        if step_summary and self.results:
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(markdown_summary(self.results, stats) + "\n")
        if update_baseline and self.results:
            keep = load_baseline(settings.baseline) if self.partial else None
            write_baseline(settings.baseline, self.results, keep=keep)
            self.written.append(f"baseline written: {settings.baseline}")

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
        if self.gate_line:
            lines.append(self.gate_line)
        return lines


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
