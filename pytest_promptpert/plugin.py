"""pytest wiring: options, marker, fixtures and hooks. Each delegates to the core."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any

import pytest

from . import hookspecs
from .backend import ProviderError
from .client import CacheMissError, CachedLLM
from .metrics import MetricCatalog, builtin_metrics
from .report import header_line
from .request import PromptError
from .session import ItemPlan, ItemRun, PromptpertSession, test_id
from .settings import MARKER_KEYS, Settings, SettingsError, read_pyproject, resolve
from .variants import BUILTIN_VARIANTS, ORIGINAL, VariantCatalog

SESSION = pytest.StashKey[PromptpertSession]()
TEST_SETTINGS = pytest.StashKey[dict[str, Settings]]()
PLAN = pytest.StashKey[ItemPlan]()
ITEM_RUN = pytest.StashKey[ItemRun]()
PARAM = "_promptpert_variant"

MARKER_DOC = (
    "promptpert(variants=None, threshold=None, metric=None, samples=None): expand the test into"
    " prompt variants (punctuation, casing, whitespace, ...) and fail a variant whose llm output"
    " is less similar to the original's than threshold. See pytest-promptpert's README."
)

#: command-line option -> settings key; every one can also be set in [tool.promptpert]
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
}


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    try:
        settings = resolve(
            command_line={
                name.replace("-", "_"): config.getoption(f"promptpert_{name.replace('-', '_')}")
                for name in OPTIONS
            },
            pyproject=read_pyproject(config.rootpath / "pyproject.toml"),
            pyproject_path=config.rootpath / "pyproject.toml",
            rootdir=config.rootpath,
        )
        variants = VariantCatalog(())
        for mapping in reversed(config.hook.pytest_promptpert_add_variants(config=config)):
            variants.add_mapping(mapping or {})
        metrics = MetricCatalog(reversed(config.hook.pytest_promptpert_add_metrics(config=config)))
        session = PromptpertSession(settings, variants, metrics)
        session.test_settings({}, "settings")  # every configured name must exist
    except (SettingsError, ValueError) as exc:
        raise pytest.UsageError(f"pytest-promptpert: {exc}") from None
    config.stash[SESSION] = session
    config.stash[TEST_SETTINGS] = {}


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


def pytest_report_header(config: pytest.Config) -> str | None:
    session = config.stash.get(SESSION, None)
    if session is None:
        return None
    line: str | None = config.hook.pytest_promptpert_header(config=config, settings=session.settings)
    return line


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


def _item_run(request: pytest.FixtureRequest) -> ItemRun | None:
    item = request.node
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
    """The current variant: ``.variant`` (its name) and ``.perturb(text)``."""
    run = _item_run(request)
    if run is None:
        session = request.config.stash[SESSION]
        plan = ItemPlan(request.node.nodeid, ORIGINAL, session.settings)
        run = ItemRun(plan, session)
    return run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    run = item.stash.get(ITEM_RUN, None)
    if run is not None:
        verdict = run.verdict()
        if verdict.outcome == "failed":
            pytest.fail(verdict.message, pytrace=False)
        if verdict.outcome == "skipped":
            pytest.skip(verdict.message)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.excinfo is not None and isinstance(
        call.excinfo.value, (ProviderError, CacheMissError, PromptError)
    ):
        # Our own errors say all there is to say; the traceback through the client does not.
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
        if isinstance(call.excinfo.value, ProviderError):
            report.user_properties.append(("promptpert_error", "provider"))
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    if report.when == "call" and ("promptpert_error", "provider") in report.user_properties:
        return "error", "E", "ERROR"
    return None
