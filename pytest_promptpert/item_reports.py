"""Each item's report: our errors shown briefly, results recorded, secrets scrubbed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .client import CacheMissError
from .compare import NothingToCompare, failure_context
from .extract import ExtractCallableError
from .failures import ProviderError
from .item_run import ItemRun
from .metrics import MetricError
from .redact import Secrets
from .request import PromptError
from .scoring import excusable, excuse_reason
from .stash import ITEM_RUN, PLAN, RUN_WIDE, SESSION
from .variants import ORIGINAL, VariantError

#: skips raised by the plugin's hooks point here; they are moved to the test's own line
PLUGIN_FILE = Path(__file__).with_name("plugin.py")


def run_wide(item: pytest.Item, error: ProviderError, report: pytest.TestReport) -> str:
    """The first item meeting a run-wide failure shows it in full; the others point to it."""
    first = error.first or error
    report.user_properties.append(
        ("promptpert_run_wide", f"model {first.model!r}: {first.headline}")
    )
    shown = item.config.stash[RUN_WIDE]
    where = shown.setdefault((type(first).__name__, first.model, first.headline), item.nodeid)
    if where == item.nodeid:
        return f"{type(first).__name__}: {first}"
    return f"{type(first).__name__}: same error as {where}: {first.headline}; see above"


def skip_at_test(item: pytest.Item, report: pytest.TestReport) -> None:
    """A skip raised by this plugin is reported at the test's line, not at this file's."""
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and Path(longrepr[0]) == PLUGIN_FILE:
        path, line = item.reportinfo()[:2]
        report.longrepr = (os.fspath(path), (line or 0) + 1, longrepr[2])


def scrub(report: pytest.TestReport, secrets: Secrets) -> None:
    """No credential in what pytest prints or keeps (JUnit XML), whatever raised with what
    locals (``-l``, ``--tb=long``): the last line of defence behind the reprs that hide them."""
    if not len(secrets):
        return
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        report.longrepr = (*longrepr[:2], secrets.scrub(str(longrepr[2])))
    elif longrepr is not None:
        text = str(longrepr)
        if secrets.found_in(text):
            report.longrepr = secrets.scrub(text)
    report.sections = [(name, secrets.scrub(text)) for name, text in report.sections]


def record(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Attach the item's result to its report, explain or excuse a variant's failure."""
    session = item.config.stash[SESSION]
    run = item.stash.get(ITEM_RUN, None) if call.when == "call" else None
    if run is None:
        run = ItemRun(item.stash[PLAN], session)  # never asked for llm, or setup did not finish
    compared = [c for c in run.records if c is not None]
    record = run.result(item.nodeid, _outcome(report, run.variant, compared))
    error = call.excinfo.value if call.excinfo is not None else None
    ours = isinstance(error, pytest.fail.Exception) and error.msg == run.verdict().message
    own_failure = record["outcome"] in ("failed", "error") and error is not None and not ours
    if call.when == "call" and own_failure and run.variant != ORIGINAL and not _our_error(report):
        # The test's own check failed: say what the variant did, beside its traceback.
        _add_section(report, "promptpert", failure_context(run.variant, compared))
    if session.settings.fail_under is not None and excusable(record):
        # The gate judges the run's score at the end; this item alone does not fail the run.
        failure = str(error) if ours else call.excinfo.exconly() if call.excinfo else ""
        report.outcome = "skipped"
        report.wasxfail = excuse_reason(failure)
        record["excused"] = True
    # A plain attribute travels with the report to the xdist controller.
    report.promptpert = record  # type: ignore[attr-defined]
    # As record_property does: JUnit XML writes them from the item's teardown report.
    item.user_properties[:] = [
        p for p in item.user_properties if not str(p[0]).startswith("promptpert_")
    ]
    item.user_properties += [
        (f"promptpert_{name}", record[name])
        for name in ("variant", "score", "threshold")
        if record[name] is not None  # JUnit would write the string 'None'
    ]


def _add_section(report: pytest.TestReport, title: str, text: str) -> None:
    """Text after the failure's traceback, in the terminal and in JUnit XML alike."""
    longrepr = report.longrepr
    addsection = getattr(longrepr, "addsection", None)
    if addsection is not None:
        addsection(title, text)
    else:
        report.longrepr = f"{longrepr}\n\n{text}" if longrepr else text


def _our_error(report: pytest.TestReport) -> bool:
    return any(name == "promptpert_error" for name, _ in report.user_properties)


def _outcome(report: pytest.TestReport, variant: str, compared: list[Any]) -> str:
    if _our_error(report):
        return "error"
    if report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):
        return "xpassed"  # the variant no longer diverges: a pass, but the run still fails
    if hasattr(report, "wasxfail"):
        return "xpassed" if report.passed else "xfailed"
    if report.failed and (report.when != "call" or (variant != ORIGINAL and not compared)):
        # A setup or fixture error, or a failure before any variant output was compared
        # (e.g. pytest's "async def functions are not natively supported"): not behaviour.
        return "error"
    return report.outcome


def finish_report(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> None:
    """Our errors shown briefly, the item's result recorded, secrets scrubbed from the report."""
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(
        error, (ProviderError, CacheMissError, PromptError, NothingToCompare, ExtractCallableError)
    ):
        # Our own errors say all there is to say; the traceback through the client does not.
        report.longrepr = f"{type(error).__name__}: {error}"
        if isinstance(error, ProviderError) and error.run_wide:
            report.longrepr = run_wide(item, error, report)
        # Not a change of behaviour: kept out of the robustness score's passes and excuses.
        kind = "provider" if isinstance(error, ProviderError) else "setup"
        report.user_properties.append(("promptpert_error", kind))
    elif isinstance(error, (MetricError, VariantError)):
        # The user's metric or variant broke: an error of the item (its traceback kept), never
        # a divergence.
        kind = "metric" if isinstance(error, MetricError) else "variant"
        report.user_properties.append(("promptpert_error", kind))
    if PLAN in item.stash and (call.when == "call" or (call.when == "setup" and not report.passed)):
        record(item, call, report)
    if SESSION in item.config.stash:
        scrub(report, item.config.stash[SESSION].secrets)
    if call.when == "teardown" and ITEM_RUN in item.stash:
        del item.stash[ITEM_RUN]  # a rerun (pytest-rerunfailures) starts afresh
    skip_at_test(item, report)
