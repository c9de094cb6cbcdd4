"""pytest wiring: options, marker, fixtures and hooks. Each delegates to the core.

pytest imports this module on every run, marked tests or not: it imports only what the options
and the configuration need, and each hook imports the core it delegates to when it first runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from . import hookspecs, warning_types
from .ast_guard import guard_ast_parse
from .options import (
    MARKER_DOC,
    add_options,
    check_cache_dir,
    check_outputs,
    option_keys,
    resolve_settings,
)
from .pytest_warnings import (
    ManifestWarning,
    MarkerIgnoredWarning,
    NothingComparedWarning,
    PromptpertWarning,
    UnknownEndpointWarning,
    UnreadSettingsWarning,
)
from .settings import (
    DEFAULT_SOURCE,
    Settings,
    SettingsError,
    env_name,
    unknown_environment,
)
from .stash import ITEM_RUN, PARAM, PLAN, RUN_WIDE, SESSION, TEST_SETTINGS

if TYPE_CHECKING:
    from .client import CachedLLM
    from .item_run import ItemRun
    from .session import PromptpertSession

__all__ = [
    "ManifestWarning",
    "MarkerIgnoredWarning",
    "NothingComparedWarning",
    "PromptpertWarning",
    "UnknownEndpointWarning",
    "UnreadSettingsWarning",
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from .baseline import load_baseline
    from .metrics import MetricCatalog
    from .notes import SettingsNotes
    from .prefetch_run import PrefetchRun
    from .run_report import RunReport
    from .session import PromptpertSession
    from .variants import VariantCatalog

    config.addinivalue_line("markers", MARKER_DOC)
    warning_types.emit_also_as(pytest.PytestWarning)  # so -W error::pytest.PytestWarning works
    guard_ast_parse()  # our call threads format tracebacks while pytest parses source
    try:
        settings = resolve_settings(config)
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
                check_cache_dir(settings)
            check_outputs(settings, update_baseline)
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
    report = RunReport(config, session)
    config.pluginmanager.register(report, "promptpert-report")
    config.pluginmanager.register(PrefetchRun(config, session, report.run), "promptpert-prefetch")
    config.pluginmanager.register(SettingsNotes(config, session), "promptpert-settings-notes")
    if not hasattr(config, "workerinput"):
        for name in unknown_environment(os.environ):
            config.issue_config_time_warning(
                UnreadSettingsWarning(
                    f"pytest-promptpert: the environment variable {name} names no setting and"
                    f" is not read (settings: {', '.join(env_name(k) for k in option_keys())})"
                ),
                stacklevel=2,
            )


def _client_factory(settings: Settings, run_id: str) -> CachedLLM:
    from .session import make_client

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


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


@pytest.hookimpl(trylast=True)
def pytest_promptpert_add_variants(config: pytest.Config) -> Mapping[str, Any]:
    from .variants import BUILTIN_VARIANTS

    return {v.name: v for v in BUILTIN_VARIANTS}


@pytest.hookimpl(trylast=True)
def pytest_promptpert_add_metrics(config: pytest.Config) -> Mapping[str, Callable[..., float]]:
    from .metrics import builtin_metrics

    return builtin_metrics()


@pytest.hookimpl(trylast=True)
def pytest_promptpert_header(config: pytest.Config, settings: Settings) -> str:
    from .report import header_line

    return header_line(settings)


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # trylast: our parametrization comes after the test's own, so the variant is the id's tail.
    from .collection import marker_kwargs
    from .variants import ORIGINAL

    definition = metafunc.definition
    where = f"@pytest.mark.promptpert on {definition.nodeid}"
    try:
        kwargs = marker_kwargs(definition)
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
    from .collection import originals_first, variant_param
    from .variants import ORIGINAL

    session = config.stash.get(SESSION, None)
    if session is not None and session.lint_only:
        # The lint needs each marked test's prompts once: only the original items run.
        keep = [item for item in items if variant_param(item) == ORIGINAL]
        if len(keep) < len(items):
            config.hook.pytest_deselected(items=[item for item in items if item not in keep])
            items[:] = keep
    items[:] = originals_first(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    from .collection import item_plans, unhonoured

    config = session.config
    for item, plan in item_plans(session.items, config.stash.get(TEST_SETTINGS, {})):
        item.stash[PLAN] = plan
    for item in session.items:
        problem = unhonoured(item)
        if problem:
            item.warn(MarkerIgnoredWarning(f"{item.nodeid}: {problem}"))


def _item_run(request: pytest.FixtureRequest) -> ItemRun | None:
    from .item_run import ItemRun

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
    from .item_run import ItemPlan, ItemRun
    from .variants import ORIGINAL

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
    from .client import Planned
    from .item_run import ItemRun

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
    from .intercept import intercepting

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
    from .item_reports import finish_report

    report = yield
    finish_report(item, call, report)
    return report


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    from .failures import run_wide_lines

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
