"""pytest wiring: options, marker, fixtures and hooks. Each delegates to the core."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import pytest

from . import hookspecs, warning_types
from .baseline import load_baseline
from .client import CachedLLM, CacheMissError, Planned
from .compare import NothingToCompare, failure_context
from .config_files import hidden_tables, hidden_tables_message, read_pyproject, table_line
from .extract import ExtractCallableError
from .failures import ProviderError, run_wide_lines
from .intercept import intercepting
from .metrics import MetricCatalog, MetricError, builtin_metrics
from .outputs import check_writable
from .redact import Secrets
from .report import header_line
from .request import PromptError
from .run_report import RunReport
from .scoring import excusable, excuse_reason
from .session import ItemPlan, ItemRun, PromptpertSession, make_client, test_id
from .settings import (
    DEFAULT_SOURCE,
    MARKER_KEYS,
    Settings,
    SettingsError,
    env_name,
    ini_name,
    resolve,
    unknown_environment,
)
from .variants import BUILTIN_VARIANTS, ORIGINAL, VariantCatalog, VariantError

SESSION = pytest.StashKey[PromptpertSession]()
TEST_SETTINGS = pytest.StashKey[dict[str, Settings]]()
PLAN = pytest.StashKey[ItemPlan]()
ITEM_RUN = pytest.StashKey[ItemRun]()
#: (error class, model, headline) of each run-wide failure -> the item that showed it in full
RUN_WIDE = pytest.StashKey[dict[tuple[str, str, str], str]]()
PARAM = "_promptpert_variant"

MARKER_DOC = (
    "promptpert(variants=None, threshold=None, metric=None, samples=None): expand the test into"
    " prompt variants (punctuation, casing, whitespace, ...) and fail a variant whose llm output"
    " is less similar to the original's than threshold. See pytest-promptpert's README."
)

#: command-line option -> settings key; every one can also be set in [tool.promptpert], as the
#: ini option promptpert_KEY and as the environment variable PROMPTPERT_KEY
OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "model": ("litellm model string, or local/gemma-3-270m (default)", {}),
    "variants": ("comma-separated variant and family names", {}),
    "threshold": ("least similarity in [0, 1] a variant's output may have", {}),
    "metric": ("similarity metric name", {}),
    "samples": ("outputs drawn per variant (noise floor when > 1)", {}),
    "cache-dir": ("cache directory (default .promptpert_cache in the rootdir)", {}),
    "cache": ("cache mode", {"choices": ("auto", "replay", "refresh", "off")}),
    "api-base": ("base URL of the model's API", {}),
    "concurrency": ("most model calls in flight at once", {}),
    "temperature": ("temperature sent with every call that sets none", {}),
    "max-tokens": ("max_tokens sent with every call that sets none", {}),
    "retries": ("retries of rate limits, server errors, timeouts, dropped connections", {}),
    "timeout": ("seconds per model call", {}),
    "report": ("write a JSON report to this path", {"metavar": "PATH"}),
    "html": ("write a self-contained HTML heatmap report to this path", {"metavar": "PATH"}),
    "fail-under": (
        "exit non-zero when the robustness score (share of variant items that passed) is"
        " below this; variant failures alone then no longer fail the run",
        {"metavar": "X"},
    ),
    "baseline": ("baseline file (default promptpert-baseline.json in the rootdir)", {}),
    "baseline-tolerance": ("how far a score may fall below its baseline (default 0.05)", {}),
    "max-cost": (
        "make no new model call once the estimated spend (USD) would pass this;"
        " the items left are errors that say so",
        {"metavar": "USD"},
    ),
    "intercept": (
        "intercept model calls made by the code under test in marked tests (marked), in every"
        " test (all), or never (off)",
        {"choices": ("marked", "all", "off")},
    ),
    "route": (
        "send intercepted calls where the application sent them (app) or to the configured"
        " model (model)",
        {"choices": ("app", "model")},
    ),
    "embedding-model": ("litellm embedding model for the embedding metric", {}),
    "judge-model": ("litellm model for the judge metric (default: the run's model)", {}),
    "cache-url": ("shared cache behind the local directory, e.g. redis://host:6379/0", {}),
    "extract": (
        "compare what this extracts from each output: a regex, json:<path>, or first_line,"
        " first_word, number, choice, yes_no",
        {},
    ),
}


class UnreadSettingsWarning(pytest.PytestWarning, warning_types.PromptpertWarning):
    """Settings that pytest-promptpert does not read, though they look meant for it.

    A ``[tool.promptpert]`` table in a ``pyproject.toml`` other than the rootdir's, or a
    ``PROMPTPERT_*`` environment variable that names no setting.
    """


class PromptpertWarning(pytest.PytestWarning):
    """Something pytest-promptpert could not do as asked (``-W error::...`` makes it fatal)."""


class NothingComparedWarning(PromptpertWarning):
    """A variant item compared nothing: no model call the plugin could see, nothing observed."""


class MarkerIgnoredWarning(PromptpertWarning):
    """A ``promptpert`` marker the plugin cannot honour on this test."""


class UnknownEndpointWarning(PromptpertWarning):
    """A model call to an API shape the plugin does not understand went through untouched."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promptpert", "prompt-robustness regression testing")
    for name, (help_text, extra) in OPTIONS.items():
        group.addoption(
            f"--promptpert-{name}",
            dest=f"promptpert_{name.replace('-', '_')}",
            default=None,
            help=help_text,
            **extra,
        )
        key = name.replace("-", "_")
        ini_help = f"{help_text} (also --promptpert-{name}, {env_name(key)})"
        if key == "variants":  # one per line or comma-separated; a TOML list works too
            parser.addini(ini_name(key), ini_help, type="linelist", default=None)
        elif pytest.version_tuple >= (9, 2):
            # A union lets pytest 9's native [tool.pytest] table give numbers as TOML numbers;
            # ini files and -o still give strings (the first member).
            parser.addini(ini_name(key), ini_help, type=str | float, default=None)
        else:
            parser.addini(ini_name(key), ini_help, type="string", default=None)
    group.addoption(
        "--promptpert-plan",
        action="store_true",
        default=False,
        help="list the model calls the run would make that are not cached, with estimated"
        " tokens and cost, without calling the model (those items are skipped)",
    )
    group.addoption(
        "--promptpert-lint",
        action="store_true",
        default=False,
        help="only check marked tests' prompts for risky formatting (a trailing space after"
        " 'Answer:', no final punctuation, ...): runs each original item with an llm that"
        " records its prompts and calls no model; a test with findings fails",
    )
    group.addoption(
        "--promptpert-update-baseline",
        action="store_true",
        default=False,
        help="write every variant's score to the baseline file (promptpert-baseline.json)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    warning_types.emit_also_as(pytest.PytestWarning)  # so -W error::pytest.PytestWarning works
    try:
        settings = _resolve_settings(config)
        variants = VariantCatalog(())
        for mapping in _hook_mappings(config, "pytest_promptpert_add_variants"):
            variants.add_mapping(mapping)
        metrics = MetricCatalog(_hook_mappings(config, "pytest_promptpert_add_metrics"))
        session = PromptpertSession(settings, variants, metrics, _client_factory)
        session.test_settings({}, "settings")  # every configured name must exist
        update_baseline = config.getoption("promptpert_update_baseline")
        if not update_baseline:
            session.baseline = load_baseline(settings.baseline)
        if not hasattr(config, "workerinput"):
            if settings.cache != "off":
                _check_cache_dir(settings)
            _check_outputs(settings, update_baseline)
    except (SettingsError, ValueError) as exc:
        raise pytest.UsageError(f"pytest-promptpert: {exc}") from None
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "promptpert_run" in workerinput:
        session.run_id = workerinput["promptpert_run"]
    if config.getoption("promptpert_plan"):
        session.client.planning = True
    if config.getoption("promptpert_lint"):
        session.lint_only = True
        session.client.planning = True  # a call that gets past the lint is refused, not made
    config.stash[SESSION] = session
    config.stash[TEST_SETTINGS] = {}
    config.stash[RUN_WIDE] = {}
    config.pluginmanager.register(RunReport(config, session), "promptpert-report")
    config.pluginmanager.register(SettingsNotes(config, session), "promptpert-settings-notes")
    if not hasattr(config, "workerinput"):
        for name in unknown_environment(os.environ):
            config.issue_config_time_warning(
                UnreadSettingsWarning(
                    f"pytest-promptpert: the environment variable {name} names no setting and"
                    f" is not read (settings: {', '.join(env_name(k) for k in _keys())})"
                ),
                stacklevel=2,
            )


def _keys() -> list[str]:
    return [name.replace("-", "_") for name in OPTIONS]


def _resolve_settings(config: pytest.Config) -> Settings:
    """Gather every source's raw values; settings.resolve merges and validates them."""
    pyproject = config.rootpath / "pyproject.toml"
    overridden = {entry.split("=", 1)[0] for entry in config.getoption("override_ini") or ()}
    return resolve(
        command_line={key: config.getoption(f"promptpert_{key}") for key in _keys()},
        ini={key: config.getini(ini_name(key)) for key in _keys()},
        ini_path=config.inipath,
        ini_overrides=overridden,
        environ=os.environ,
        pyproject=read_pyproject(pyproject),
        pyproject_path=pyproject,
        rootdir=config.rootpath,
        invocation_dir=config.invocation_params.dir,
    )


def _client_factory(settings: Settings, run_id: str) -> CachedLLM:
    client = make_client(settings, run_id)
    if settings.where("model") == DEFAULT_SOURCE:
        # So that a missing local extra is explained as "no model was configured".
        client.backend.default_model = settings.model
    return client


def _hook_mappings(config: pytest.Config, name: str) -> list[Mapping[str, Any]]:
    """Each implementation's answer to the hook *name*, a usage error naming a broken one."""
    results = []
    for impl in getattr(config.hook, name).get_hookimpls():  # in the order pluggy answers
        where = f"{name} in {impl.plugin_name}"
        try:
            result = impl.function(**{arg: config for arg in impl.argnames if arg == "config"})
        except Exception as exc:
            raise SettingsError(f"{where} raised {type(exc).__name__}: {exc}") from None
        if result is None:
            continue
        if not isinstance(result, Mapping):
            raise SettingsError(
                f"{where} returned {type(result).__name__} {result!r:.80},"
                " not a mapping of names to functions"
            )
        results.append(result)
    return results


def _check_outputs(settings: Settings, update_baseline: bool) -> None:
    """Fail early, not after the tests ran, when a report could not be written."""
    for key in ("report", "html"):
        path = getattr(settings, key)
        if path is not None:
            check_writable(path, settings.where(key))
    if update_baseline:
        check_writable(settings.baseline, settings.where("baseline"))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        check_writable(Path(step_summary), "$GITHUB_STEP_SUMMARY")


def _check_cache_dir(settings: Settings) -> None:
    """Fail early if the cache directory could not be made; make it only when first used.

    An existing directory that cannot be written (a read-only mount) is fine for reading: only
    ``refresh``, which writes every answer, needs it writable.
    """
    existing = settings.cache_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK) and (
        existing != settings.cache_dir or settings.cache == "refresh"
    ):
        problem = f"{existing} is not writable"
    if problem:
        raise SettingsError(
            f"{settings.where('cache_dir')}: cache directory {str(settings.cache_dir)!r}"
            f" cannot be created ({problem})"
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


@pytest.hookimpl(trylast=True)
def pytest_promptpert_add_variants(config: pytest.Config) -> Mapping[str, Any]:
    return {v.name: v for v in BUILTIN_VARIANTS}


@pytest.hookimpl(trylast=True)
def pytest_promptpert_add_metrics(config: pytest.Config) -> Mapping[str, Callable[..., float]]:
    return builtin_metrics()


@pytest.hookimpl(trylast=True)
def pytest_promptpert_header(config: pytest.Config, settings: Settings) -> str:
    return header_line(settings)


def _marker_kwargs(definition: pytest.Function | pytest.Item) -> dict[str, Any] | None:
    """The promptpert markers' arguments, the closest marker winning key by key."""
    markers = list(definition.iter_markers("promptpert"))
    if not markers:
        return None
    merged: dict[str, Any] = {}
    for marker in reversed(markers):  # farthest first, so closer ones overwrite
        if len(marker.args) > 1:
            raise SettingsError(
                f"@pytest.mark.promptpert takes at most one positional argument (variants),"
                f" got {marker.args!r}"
            )
        kwargs = dict(marker.kwargs)
        if marker.args:
            kwargs["variants"] = marker.args[0]
        merged.update({k: v for k, v in kwargs.items() if v is not None or k not in MARKER_KEYS})
    return merged


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # trylast: our parametrization comes after the test's own, so the variant is the id's tail.
    definition = metafunc.definition
    where = f"@pytest.mark.promptpert on {definition.nodeid}"
    try:
        kwargs = _marker_kwargs(definition)
        if kwargs is None:
            return
        session = metafunc.config.stash[SESSION]
        settings = session.test_settings(kwargs, where)
    except SettingsError as exc:
        message = str(exc) if str(exc).startswith("@") else f"{where}: {exc}"
        raise pytest.Collector.CollectError(f"pytest-promptpert: {message}") from None
    metafunc.config.stash[TEST_SETTINGS][definition.nodeid] = settings
    metafunc.fixturenames.append(PARAM)
    names = [ORIGINAL, *settings.variants]
    metafunc.parametrize(PARAM, names, ids=names, indirect=True)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Lint runs keep only the originals. Each ``original`` item runs before its variants (after
    any reordering, e.g. random): a variant compares its observed results with the original's."""
    session = config.stash.get(SESSION, None)
    if session is not None and session.lint_only:
        # The lint needs each marked test's prompts once: only the original items run.
        keep = [item for item in items if _variant_param(item) == ORIGINAL]
        if len(keep) < len(items):
            config.hook.pytest_deselected(items=[item for item in items if item not in keep])
            items[:] = keep
    originals: dict[str, pytest.Item] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get(PARAM) == ORIGINAL:
            originals[test_id(item.nodeid, ORIGINAL)] = item
    if not originals:
        return
    ordered: list[pytest.Item] = []
    placed: set[str] = set()
    for item in items:
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get(PARAM) if callspec is not None else None
        test = test_id(item.nodeid, variant) if variant is not None else None
        if test is None or test not in originals:
            ordered.append(item)
        elif test not in placed:
            placed.add(test)
            ordered.append(originals[test])
            if variant != ORIGINAL:
                ordered.append(item)
        elif variant != ORIGINAL:
            ordered.append(item)
    items[:] = ordered


def _variant_param(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get(PARAM) if callspec is not None else None


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    by_definition = config.stash.get(TEST_SETTINGS, {})
    selected: dict[str, list[str]] = {}
    plans: list[tuple[pytest.Item, str, Settings, str]] = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or PARAM not in callspec.params:
            continue
        variant = callspec.params[PARAM]
        definition = f"{item.nodeid.split('[', 1)[0]}"
        test = test_id(item.nodeid, variant)
        plans.append((item, variant, by_definition[definition], test))
        if variant != ORIGINAL:
            selected.setdefault(test, []).append(variant)
    for item, variant, settings, test in plans:
        item.stash[PLAN] = ItemPlan(test, variant, settings, tuple(selected.get(test, ())))
    for item in session.items:
        problem = _unhonoured(item)
        if problem:
            item.warn(MarkerIgnoredWarning(f"{item.nodeid}: {problem}"))


def _unhonoured(item: pytest.Item) -> str | None:
    """Why the promptpert marker on *item* does nothing (or less than asked), if it does."""
    if item.get_closest_marker("promptpert") is None:
        return None
    if PLAN not in item.stash:
        if type(item).__name__ == "TestCaseFunction":
            return (
                "@pytest.mark.promptpert is ignored on unittest.TestCase methods (pytest cannot"
                " parametrize them); write the test as a plain pytest function or class"
            )
        return (
            "@pytest.mark.promptpert is ignored here: it was applied after collection (e.g. in"
            " pytest.param(..., marks=...)); put it on the test function, its class or module"
        )
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    defs = fixtureinfo.name2fixturedefs.get("llm") if fixtureinfo is not None else None
    if defs and getattr(defs[-1].func, "__module__", __name__) != __name__:
        return (
            "a fixture named 'llm' shadows pytest-promptpert's llm fixture: its calls are"
            " perturbed and compared only where they reach the model through litellm, openai or"
            " anthropic (intercepted); rename it, or call promptpert.observe(result)"
        )
    return None


def _item_run(request: pytest.FixtureRequest) -> ItemRun | None:
    item: pytest.Item = request.node
    run = item.stash.get(ITEM_RUN, None)
    if run is None and PLAN in item.stash:
        run = ItemRun(item.stash[PLAN], request.config.stash[SESSION])
        item.stash[ITEM_RUN] = run
    return run


@pytest.fixture
def _promptpert_variant(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def llm(request: pytest.FixtureRequest) -> ItemRun | CachedLLM:
    """The cached model client: ``llm(prompt, **params) -> str``; perturbed in marked tests."""
    run = _item_run(request)
    return run if run is not None else request.config.stash[SESSION].client


@pytest.fixture
def promptpert(request: pytest.FixtureRequest) -> ItemRun:
    """The current variant: ``.variant``, ``.perturb(text)``, ``.observe(result)``."""
    run = _item_run(request)
    if run is None:
        session = request.config.stash[SESSION]
        plan = ItemPlan(request.node.nodeid, ORIGINAL, session.settings)
        run = ItemRun(plan, session)
    return run


#: what a test body may raise on the lint's placeholder answers
_TEST_OUTCOMES: tuple[type[BaseException], ...] = (
    Exception,
    pytest.skip.Exception,
    pytest.fail.Exception,
    pytest.xfail.Exception,
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    if item.config.stash[SESSION].lint_only and PLAN in item.stash:
        with contextlib.suppress(*_TEST_OUTCOMES):
            yield  # the test sees placeholder answers: its own verdict means nothing here
        linted = item.stash.get(ITEM_RUN, None)
        if linted is None:  # the test never asked for llm
            linted = item.stash[ITEM_RUN] = ItemRun(item.stash[PLAN], item.config.stash[SESSION])
        outcome = linted.lint_verdict()
        if outcome.outcome == "failed":
            pytest.fail(outcome.message, pytrace=False)
        pytest.skip(outcome.message)
    session = item.config.stash[SESSION]
    run = item.stash.get(ITEM_RUN, None)
    if run is None and PLAN in item.stash:
        run = item.stash[ITEM_RUN] = ItemRun(item.stash[PLAN], session)
    errors: list[BaseException] = run.errors if run is not None else []
    try:
        with _interception(session, run, errors):
            try:
                result = yield
            except Exception:
                if errors:  # the application failed on our error answer: ours is the cause
                    raise errors[0] from None
                raise
        if errors:
            raise errors[0]
    except Planned as planned:
        pytest.skip(f"promptpert plan: {planned}")
    finally:
        started = item.stash.get(ITEM_RUN, None)
        # Background calls end with their test (recorders then see them in it); not on Ctrl-C.
        if started is not None and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
            started.wait_for_prefetches()
    run = item.stash.get(ITEM_RUN, None)
    if run is not None:
        verdict = run.verdict()
        if verdict.outcome == "failed":
            pytest.fail(verdict.message, pytrace=False)
        if verdict.outcome == "skipped":
            if verdict.compared_nothing:
                warnings.warn(
                    NothingComparedWarning(f"{item.nodeid}: {verdict.message}"), stacklevel=1
                )
            pytest.skip(verdict.message)
    return result


def _interception(
    session: PromptpertSession, run: ItemRun | None, errors: list[BaseException]
) -> contextlib.AbstractContextManager[None]:
    """Interception of the test's own model calls, as the ``intercept`` setting says."""
    mode = session.settings.intercept
    if mode == "off" or (run is None and mode != "all"):
        return contextlib.nullcontext()
    on_error = None if run is not None else errors.append
    return intercepting(session.interception(run, _warn_unknown(session), on_error))


def _warn_unknown(session: PromptpertSession) -> Callable[[str], None]:
    def warn(endpoint: str) -> None:
        if endpoint not in session.unknown_endpoints:
            session.unknown_endpoints.add(endpoint)
            warnings.warn(
                UnknownEndpointWarning(
                    f"pytest-promptpert does not understand model calls to {endpoint}: they went"
                    " through unperturbed and uncached"
                ),
                stacklevel=1,
            )

    return warn


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(
        error, (ProviderError, CacheMissError, PromptError, NothingToCompare, ExtractCallableError)
    ):
        # Our own errors say all there is to say; the traceback through the client does not.
        report.longrepr = f"{type(error).__name__}: {error}"
        if isinstance(error, ProviderError) and error.run_wide:
            report.longrepr = _run_wide(item, error, report)
        # Not a change of behaviour: kept out of the robustness score's passes and excuses.
        kind = "provider" if isinstance(error, ProviderError) else "setup"
        report.user_properties.append(("promptpert_error", kind))
    elif isinstance(error, (MetricError, VariantError)):
        # The user's metric or variant broke: an error of the item (its traceback kept), never
        # a divergence.
        kind = "metric" if isinstance(error, MetricError) else "variant"
        report.user_properties.append(("promptpert_error", kind))
    if PLAN in item.stash and (call.when == "call" or (call.when == "setup" and not report.passed)):
        _record(item, call, report)
    if SESSION in item.config.stash:
        _scrub(report, item.config.stash[SESSION].secrets)
    if call.when == "teardown" and ITEM_RUN in item.stash:
        del item.stash[ITEM_RUN]  # a rerun (pytest-rerunfailures) starts afresh
    _skip_at_test(item, report)
    return report


def _run_wide(item: pytest.Item, error: ProviderError, report: pytest.TestReport) -> str:
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


def _skip_at_test(item: pytest.Item, report: pytest.TestReport) -> None:
    """A skip raised by this plugin is reported at the test's line, not at this file's."""
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and Path(longrepr[0]) == Path(__file__):
        path, line = item.reportinfo()[:2]
        report.longrepr = (os.fspath(path), (line or 0) + 1, longrepr[2])


def _scrub(report: pytest.TestReport, secrets: Secrets) -> None:
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


def _record(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
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


class SettingsNotes:
    """Once marked tests were collected: the header line, and settings that are not read.

    Nothing is shown in runs that collect no marked test, so a project that does not use the
    plugin never hears of it. Under xdist the controller collects nothing itself; it sees the
    workers' node ids, and takes an id that ends in a variant name for a marked test's.
    """

    def __init__(self, config: pytest.Config, session: PromptpertSession) -> None:
        self.config = config
        self.session = session
        self.header_shown = False

    def pytest_report_collectionfinish(self, items: list[pytest.Item]) -> str | None:
        if not any(_is_marked(item) for item in items):
            return None
        return self._header()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Inside pytest's collection-time warning capture (on xdist workers too: their warnings
        # reach the controller), so -W and filterwarnings apply as to any warning.
        if any(_is_marked(item) for item in session.items):
            self._warn_hidden_tables()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # The xdist controller collects nothing itself: the header goes out with the first
        # worker's collection that holds marked items.
        if self.header_shown or not any(self._looks_marked(nodeid) for nodeid in ids):
            return
        self.header_shown = True
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        line = self._header()
        if terminal is not None and line:
            if getattr(terminal, "isatty", False):
                terminal.write("\n")  # off xdist's rewritten status line
            terminal.write_line(line)

    def _header(self) -> str | None:
        if self.config.get_verbosity() < 0 or self.config.getoption("no_header", False):
            return None
        line: str | None = self.config.hook.pytest_promptpert_header(
            config=self.config, settings=self.session.settings
        )
        return line or None  # "" from a conftest hides the line

    def _looks_marked(self, nodeid: str) -> bool:
        if not nodeid.endswith("]") or "[" not in nodeid:
            return False
        tail = nodeid[:-1].rsplit("[", 1)[1].rsplit("-", 1)[-1]
        names = self.session.variants.names()
        return tail == ORIGINAL or all(part in names for part in tail.split("+"))

    def _warn_hidden_tables(self) -> None:
        here = self.config.invocation_params.dir
        starts = [here] + [here / arg.split("::", 1)[0] for arg in self.config.args]
        found = hidden_tables(self.config.rootpath, starts)
        if found:
            message = hidden_tables_message(found, self.config.rootpath, self.config.inipath)
            # Located at the table itself, so the warnings summary points to the file.
            warnings.warn_explicit(
                UnreadSettingsWarning(message),
                UnreadSettingsWarning,
                str(found[0]),
                table_line(found[0]),
                module="pytest_promptpert",
            )


def _is_marked(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and PARAM in callspec.params


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    headlines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", ())
        if name == "promptpert_run_wide"
    ]
    for line in run_wide_lines(headlines):
        terminalreporter.write_line(line, red=True)


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    if report.when != "call":
        return None
    kinds = {value for name, value in report.user_properties if name == "promptpert_error"}
    if kinds & {"provider", "metric", "variant"}:
        return "error", "E", "ERROR"
    return None
