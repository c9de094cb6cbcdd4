"""Settings: marker > command line > ``[tool.promptpert]`` > built-in defaults.

Every value passes through one validator that knows where it came from, so a bad value is
reported as, e.g., ``[tool.promptpert] threshold in /repo/pyproject.toml: 'high' is not a
number``. Nothing here imports pytest; the plugin turns :class:`SettingsError` into a usage error.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CACHE_MODES = ("auto", "replay", "refresh", "off")
INTERCEPT_MODES = ("marked", "all", "off")
ROUTES = ("app", "model")
DEFAULT_MODEL = "local/gemma-3-270m"
DEFAULT_VARIANTS = ("punctuation", "casing", "whitespace")


class SettingsError(ValueError):
    """A bad setting, with the place it came from in the message."""


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL
    api_base: str | None = None
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    # Calibrated on Gemma 3 270M outputs (scripts/calibrate_metrics.py; README "Defaults").
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
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def where(self, key: str) -> str:
        return self.sources.get(key, "built-in default")


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
        raise _bad(where, value, "is not a redis:// (or rediss://, unix://) URL")
    return url


def _extractor(value: object, where: str) -> str | Callable[[str], str] | None:
    if value is None or callable(value):
        return value
    if isinstance(value, str) and value.strip():
        return value
    raise _bad(
        where, value, "must be a regular expression, json:<path>, an extractor name or a callable"
    )


def _variant_names(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)):
        names = list(value)
    else:
        raise _bad(where, value, "must be a list of variant names")
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise _bad(where, name, "is not a variant name")
    cleaned = tuple(n.strip() for n in names)
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
}

#: The keys a marker may set; more may be added, anything else is an error.
MARKER_KEYS = ("variants", "threshold", "metric", "samples", "extract")


def read_pyproject(path: Path) -> dict[str, Any]:
    """The ``[tool.promptpert]`` table of *path*, empty if there is none."""
    where = f"[tool.promptpert] in {path}"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None
    tool = data.get("tool", {})
    table = tool.get("promptpert", {}) if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise SettingsError(f"{where}: must be a table, not {type(table).__name__}")
    return table


def resolve(
    *,
    command_line: Mapping[str, Any],
    pyproject: Mapping[str, Any],
    pyproject_path: Path | None = None,
    rootdir: Path,
    invocation_dir: Path | None = None,
) -> Settings:
    """Merge the sources, validate every value and anchor relative paths.

    Paths from ``pyproject.toml`` are relative to *rootdir*; paths given on the command line
    are relative to *invocation_dir* (where pytest was run), as ``--junitxml`` paths are.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    in_file = f" in {pyproject_path}" if pyproject_path else ""
    unknown = sorted(set(pyproject) - set(VALIDATORS))
    if unknown:
        raise SettingsError(
            f"[tool.promptpert]{in_file}: unknown key {unknown[0]!r}"
            f" (known keys: {', '.join(VALIDATORS)})"
        )
    for key, value in pyproject.items():
        where = f"[tool.promptpert] {key}{in_file}"
        values[key] = VALIDATORS[key](value, where)
        sources[key] = where
    for key, value in command_line.items():
        if value is None:
            continue
        where = f"--promptpert-{key.replace('_', '-')}"
        values[key] = VALIDATORS[key](value, where)
        sources[key] = where
    for key in ("cache_dir", "report", "html", "baseline"):
        if isinstance(values.get(key), Path) and not values[key].is_absolute():
            from_cli = sources.get(key, "").startswith("--")
            values[key] = ((invocation_dir or rootdir) if from_cli else rootdir) / values[key]
    values.setdefault("cache_dir", rootdir / Settings.cache_dir)
    values.setdefault("baseline", rootdir / Settings.baseline)
    return Settings(**values, sources=sources)


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
        sources[key] = where
    if not changes:
        return base
    return dataclasses.replace(base, **changes, sources=sources)
