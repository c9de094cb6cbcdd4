"""Command-line options, ini keys and the marker's documentation; settings read from them.

The checks at start (outputs writable, cache directory creatable) fail before any test runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .config_files import read_pyproject
from .settings import (
    Settings,
    SettingsError,
    env_name,
    ini_name,
    resolve,
)

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
    "logprobs": (
        "probe each compared prompt for its first answer tokens' log-probabilities: for local"
        " models only (auto), for every model (on: an OpenAI-compatible provider that returns"
        " logprobs), or never (off)",
        {"choices": ("auto", "on", "off")},
    ),
    "prefetch": (
        "start the model calls the last run made (the cache directory's manifest.json) at"
        " session start, before their tests; true (default) or false",
        {"metavar": "BOOL"},
    ),
}


def add_options(parser: pytest.Parser) -> None:
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


def option_keys() -> list[str]:
    return [name.replace("-", "_") for name in OPTIONS]


def resolve_settings(config: pytest.Config) -> Settings:
    """Gather every source's raw values; settings.resolve merges and validates them."""
    pyproject = config.rootpath / "pyproject.toml"
    overridden = {entry.split("=", 1)[0] for entry in config.getoption("override_ini") or ()}
    return resolve(
        command_line={key: config.getoption(f"promptpert_{key}") for key in option_keys()},
        ini={key: config.getini(ini_name(key)) for key in option_keys()},
        ini_path=config.inipath,
        ini_overrides=overridden,
        environ=os.environ,
        pyproject=read_pyproject(pyproject),
        pyproject_path=pyproject,
        rootdir=config.rootpath,
        invocation_dir=config.invocation_params.dir,
    )


def check_outputs(settings: Settings, update_baseline: bool) -> None:
    """Fail early, not after the tests ran, when a report could not be written."""
    from .outputs import check_writable  # with the report writers: only when configuring

    for key in ("report", "html"):
        path = getattr(settings, key)
        if path is not None:
            check_writable(path, settings.where(key))
    if update_baseline:
        check_writable(settings.baseline, settings.where("baseline"))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        check_writable(Path(step_summary), "$GITHUB_STEP_SUMMARY")


def check_cache_dir(settings: Settings) -> None:
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
