"""Settings: marker > command line > environment > ini file / ``[tool.promptpert]`` > defaults.

Each key ``KEY`` can be set as ``KEY`` in ``[tool.promptpert]`` of the rootdir's
``pyproject.toml``, as the ini option ``promptpert_KEY`` (``pytest.ini``, ``tox.ini``,
``setup.cfg``, ``[tool.pytest.ini_options]``, or ``-o``), as the environment variable
``PROMPTPERT_KEY`` and as the option ``--promptpert-KEY``. Every value passes through one
validator that knows where it came from, so a bad value is reported as, e.g.,
``PROMPTPERT_THRESHOLD environment variable: 'high' is not a number``. Nothing here imports
pytest: the plugin gathers the raw values and turns :class:`SettingsError` into a usage error.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .redact import redact_url

CACHE_MODES = ("auto", "replay", "refresh", "off")
INTERCEPT_MODES = ("marked", "all", "off")
ROUTES = ("app", "model")
#: when compared prompts are probed for log-probabilities (logprobs.py): ``auto`` for local
#: models only (llama.cpp returns them; hosted providers may charge for, or refuse, the probe)
LOGPROBS_MODES = ("auto", "on", "off")
DEFAULT_MODEL = "local/gemma-3-270m"
DEFAULT_VARIANTS = ("punctuation", "casing", "whitespace")
#: Settings that are paths; relative ones are anchored where their source says (see resolve).
PATH_KEYS = ("cache_dir", "report", "html", "baseline")


class SettingsError(ValueError):
    """A bad setting, with the place it came from in the message."""


@dataclass(frozen=True)
class Source:
    """Where a value came from."""

    #: for messages: ``PROMPTPERT_THRESHOLD environment variable``
    where: str
    #: for the header: ``PROMPTPERT_THRESHOLD``, ``tests/pytest.ini``, ``--promptpert-model``
    label: str
    #: what a relative path from this source is relative to
    base: Path | None = None


def option_name(key: str) -> str:
    return f"--promptpert-{key.replace('_', '-')}"


def ini_name(key: str) -> str:
    return f"promptpert_{key}"


def env_name(key: str) -> str:
    return f"PROMPTPERT_{key.upper()}"


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL
    api_base: str | None = None
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    # Checked on 399 labelled pairs of Gemma 3 270M outputs, a third held out
    # (scripts/calibrate.py; README "Defaults, and why").
    threshold: float = 0.5
    metric: str | Callable[[str, str], float] = "levenshtein"
    samples: int = 1
    cache_dir: Path = Path(".promptpert_cache")
    cache: str = "auto"
    temperature: float = 0.0
    max_tokens: int = 64
    concurrency: int = 8
    retries: int = 3
    timeout: float = 60.0
    report: Path | None = None
    html: Path | None = None
    fail_under: float | None = None
    baseline: Path = Path("promptpert-baseline.json")
    baseline_tolerance: float = 0.05
    max_cost: float | None = None
    #: which tests' model calls made by the code under test are intercepted
    intercept: str = "marked"
    #: intercepted calls go where the application sent them ("app") or to ``model``
    route: str = "app"
    embedding_model: str | None = None
    judge_model: str | None = None
    #: a shared cache behind the local directory, e.g. ``redis://host:6379/0``
    cache_url: str | None = None
    #: what the metric compares: a regex, ``json:<path>``, an extractor name or a callable
    extract: str | Callable[[str], str] | None = None
    #: probe compared prompts for log-probabilities: local models only, every model, never
    logprobs: str = "auto"
    #: start the calls the last run's manifest lists before their tests (see prefetch.py)
    prefetch: bool = True
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False, repr=False)

    def where(self, key: str) -> str:
        """Where *key*'s value came from, for messages (``built-in default`` if unset)."""
        source = self.sources.get(key)
        return source.where if source else DEFAULT_SOURCE

    def origin(self, key: str) -> str | None:
        """Where *key*'s value came from, in short for the header; None for a default."""
        source = self.sources.get(key)
        return source.label if source else None

    def __repr__(self) -> str:
        # Shown in tracebacks (-l prints locals): URLs without their user:pass@.
        shown = []
        for f in dataclasses.fields(self):
            if f.repr:
                value = getattr(self, f.name)
                if f.name in ("api_base", "cache_url") and isinstance(value, str):
                    value = redact_url(value)
                shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"


DEFAULT_SOURCE = "built-in default"


# --- validators: (value, where) -> value ------------------------------------------------


def _bad(where: str, value: object, why: str) -> SettingsError:
    return SettingsError(f"{where}: {value!r} {why}")


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(where, value, "is not a number")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise _bad(where, value, "is not a number") from None
    if math.isnan(number) or math.isinf(number):
        raise _bad(where, value, "is not a number")
    return number


def _unit_interval(value: object, where: str) -> float:
    number = _number(value, where)
    if not 0.0 <= number <= 1.0:
        raise _bad(where, value, "is outside [0, 1]")
    return number


def _int_at_least(minimum: int) -> Callable[[object, str], int]:
    def validate(value: object, where: str) -> int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise _bad(where, value, "is not a whole number") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(where, value, "is not a whole number")
        if value < minimum:
            raise _bad(where, value, f"must be >= {minimum}")
        return value

    return validate


def _non_negative(value: object, where: str) -> float:
    number = _number(value, where)
    if number < 0:
        raise _bad(where, value, "must be >= 0")
    return number


def _positive(value: object, where: str) -> float:
    number = _number(value, where)
    if number <= 0:
        raise _bad(where, value, "must be > 0")
    return number


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(where, value, "must be a non-empty string")
    return value.strip()


def _optional_text(value: object, where: str) -> str | None:
    if value is None or value == "":
        return None
    return _text(value, where)


def _path(value: object, where: str) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_text(value, where))


def _optional_path(value: object, where: str) -> Path | None:
    if value is None or value == "":
        return None
    return _path(value, where)


def _cache_mode(value: object, where: str) -> str:
    if value not in CACHE_MODES:
        raise _bad(where, value, f"is not a cache mode (choose from {', '.join(CACHE_MODES)})")
    return str(value)


def _choice(choices: tuple[str, ...], what: str) -> Callable[[object, str], str]:
    def validate(value: object, where: str) -> str:
        if value not in choices:
            raise _bad(where, value, f"is not {what} (choose from {', '.join(choices)})")
        return str(value)

    return validate


def _cache_url(value: object, where: str) -> str | None:
    url = _optional_text(value, where)
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        # shown without a password it may carry
        raise _bad(where, redact_url(url), "is not a redis:// (or rediss://, unix://) URL")
    return url


def _extractor(value: object, where: str) -> str | Callable[[str], str] | None:
    if value is None or callable(value):
        return value
    if isinstance(value, str) and value.strip():
        return value
    raise _bad(
        where, value, "must be a regular expression, json:<path>, an extractor name or a callable"
    )


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _boolean(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad(where, value, "is not true or false")


def _variant_names(value: object, where: str) -> tuple[str, ...]:
    # A comma string (command line, environment), a list (TOML) or ini lines that may hold
    # commas themselves ("punctuation, casing" on one line of a pytest.ini).
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise _bad(where, value, "must be a list of variant names")
    names: list[object] = []
    for item in value:
        names += [part.strip() for part in item.split(",")] if isinstance(item, str) else [item]
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise _bad(where, name, "is not a variant name")
    cleaned = tuple(str(n).strip() for n in names)
    if not cleaned:
        raise _bad(where, value, "names no variants")
    return cleaned


def _metric(value: object, where: str) -> str | Callable[[str, str], float]:
    if callable(value):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise _bad(where, value, "must be a metric name or a callable (original, variant) -> float")


def _optional_unit(value: object, where: str) -> float | None:
    return None if value is None else _unit_interval(value, where)


VALIDATORS: dict[str, Callable[[object, str], Any]] = {
    "model": _text,
    "api_base": _optional_text,
    "variants": _variant_names,
    "threshold": _unit_interval,
    "metric": _metric,
    "samples": _int_at_least(1),
    "cache_dir": _path,
    "cache": _cache_mode,
    "temperature": _non_negative,
    "max_tokens": _int_at_least(1),
    "concurrency": _int_at_least(1),
    "retries": _int_at_least(0),
    "timeout": _positive,
    "report": _optional_path,
    "html": _optional_path,
    "fail_under": _optional_unit,
    "baseline": _path,
    "baseline_tolerance": _unit_interval,
    "max_cost": lambda value, where: None if value is None else _non_negative(value, where),
    "intercept": _choice(INTERCEPT_MODES, "an intercept mode"),
    "route": _choice(ROUTES, "a route"),
    "embedding_model": _optional_text,
    "judge_model": _optional_text,
    "cache_url": _cache_url,
    "extract": _extractor,
    "logprobs": _choice(LOGPROBS_MODES, "a logprobs mode"),
    "prefetch": _boolean,
}

#: The keys a marker may set; more may be added, anything else is an error.
MARKER_KEYS = ("variants", "threshold", "metric", "samples", "extract")


#: settings key -> (raw value, where it came from)
Layer = dict[str, tuple[Any, Source]]


def _is_unset(value: object) -> bool:
    # pytest's getini gives "" or [] (not None) for an ini option that is not set.
    return value is None or value == "" or value == []


def _label(path: Path, invocation_dir: Path) -> str:
    return os.path.relpath(path, invocation_dir) if path.is_absolute() else str(path)


def resolve(
    *,
    command_line: Mapping[str, Any],
    pyproject: Mapping[str, Any],
    pyproject_path: Path | None = None,
    rootdir: Path,
    invocation_dir: Path | None = None,
    ini: Mapping[str, Any] | None = None,
    ini_path: Path | None = None,
    ini_overrides: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the sources, validate every value and anchor relative paths.

    *command_line*, *pyproject* and *ini* map settings keys to raw values (``None``, ``""`` or
    ``[]`` for "not given"); *ini* holds what pytest's ini file gave for ``promptpert_KEY``,
    and the keys in *ini_overrides* were given with ``-o promptpert_KEY=...`` instead. *environ*
    is the process environment (only ``PROMPTPERT_*`` is read; an empty value is unset).

    Precedence: ``--promptpert-KEY`` > ``-o promptpert_KEY`` > ``PROMPTPERT_KEY`` > the ini
    file and ``[tool.promptpert]`` > defaults. The ini file and ``[tool.promptpert]`` are one
    level: a key they both set must have the same value there, or neither is clearly meant.

    Relative paths are anchored as pytest anchors its own: from ``[tool.promptpert]`` at
    *rootdir*; from the ini file (and ``-o``) at the ini file's directory; from the environment
    and the command line at *invocation_dir* (where pytest was run, as for ``--junitxml``).
    """
    here = invocation_dir or rootdir
    in_file = f" in {pyproject_path}" if pyproject_path else ""
    unknown = sorted(set(pyproject) - set(VALIDATORS))
    if unknown:
        raise SettingsError(
            f"[tool.promptpert]{in_file}: unknown key {unknown[0]!r}"
            f" (known keys: {', '.join(VALIDATORS)})"
        )
    table_label = _label(pyproject_path, here) if pyproject_path else "[tool.promptpert]"
    files: Layer = {
        key: (value, Source(f"[tool.promptpert] {key}{in_file}", table_label, rootdir))
        for key, value in pyproject.items()
    }
    ini_base = ini_path.parent if ini_path else here  # as pytest does for "paths" ini options
    overrides: Layer = {}
    for key, value in (ini or {}).items():
        name = ini_name(key)
        if _is_unset(value):
            continue
        if name in ini_overrides:
            overrides[key] = (value, Source(f"-o {name}", f"-o {name}", ini_base))
            continue
        where = f"{name} in {ini_path}" if ini_path else name
        source = Source(where, _label(ini_path, here) if ini_path else name, ini_base)
        if key in files:
            _same_in_both(key, (value, source), files[key])
        files[key] = (value, source)
    environment: Layer = {}
    for key in VALIDATORS:
        name = env_name(key)
        value = (environ or {}).get(name)
        if value:  # an empty variable is unset, as CI templates often leave one
            environment[key] = (value, Source(f"{name} environment variable", name, here))
    options: Layer = {
        key: (value, Source(option_name(key), option_name(key), here))
        for key, value in command_line.items()
        if value is not None
    }
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for layer in (files, environment, overrides, options):  # lowest first
        for key, (value, source) in layer.items():
            values[key] = _validated(key, value, source)
            sources[key] = source
    values.setdefault("cache_dir", rootdir / Settings.cache_dir)
    values.setdefault("baseline", rootdir / Settings.baseline)
    return Settings(**values, sources=sources)


def _validated(key: str, value: object, source: Source) -> Any:
    result = VALIDATORS[key](value, source.where)
    if key in PATH_KEYS and isinstance(result, Path) and source.base is not None:
        return source.base / result  # an absolute result stays as it is
    return result


def _same_in_both(key: str, ini: tuple[Any, Source], table: tuple[Any, Source]) -> None:
    if _validated(key, *ini) != _validated(key, *table):
        raise SettingsError(
            f"{ini[1].where} ({ini[0]!r}) and {table[1].where} ({table[0]!r}) disagree;"
            f" set {key} in one place only"
        )


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """``PROMPTPERT_*`` variables that name no setting (a typo is otherwise silently ignored)."""
    known = {env_name(key) for key in VALIDATORS}
    return sorted(n for n in environ if n.startswith("PROMPTPERT_") and n not in known)


def with_marker(base: Settings, kwargs: Mapping[str, Any], where: str) -> Settings:
    """*base* overridden by a marker's keyword arguments (already merged closest-first)."""
    unknown = sorted(set(kwargs) - set(MARKER_KEYS))
    if unknown:
        raise SettingsError(
            f"{where}: unknown argument {unknown[0]!r} (known: {', '.join(MARKER_KEYS)})"
        )
    changes: dict[str, Any] = {}
    sources = dict(base.sources)
    for key, value in kwargs.items():
        if value is None:
            continue
        changes[key] = VALIDATORS[key](value, f"{where}: {key}")
        sources[key] = Source(where, "marker")
    if not changes:
        return base
    return dataclasses.replace(base, **changes, sources=sources)
