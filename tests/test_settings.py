"""Unit tests for settings resolution: marker > command line > pyproject.toml > defaults."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_promptpert.settings import (
    Settings,
    SettingsError,
    read_pyproject,
    resolve,
    with_marker,
)

ROOT = Path("/repo")
PYPROJECT = ROOT / "pyproject.toml"
MARKER = "@pytest.mark.promptpert on t"


def _resolve(pyproject: Mapping[str, Any] | None = None, /, **command_line: Any) -> Settings:
    return resolve(
        command_line=command_line,
        pyproject=pyproject or {},
        pyproject_path=PYPROJECT,
        rootdir=ROOT,
    )


def test_defaults_without_configuration() -> None:
    settings = _resolve()
    assert settings.model == "local/gemma-3-270m"
    assert settings.variants == ("punctuation", "casing", "whitespace")
    assert settings.cache == "auto"
    assert settings.samples == 1
    assert settings.cache_dir == ROOT / ".promptpert_cache"
    assert settings.baseline == ROOT / "promptpert-baseline.json"
    assert settings.baseline_tolerance == 0.05
    assert settings.where("threshold") == "built-in default"


def test_precedence_marker_over_command_line_over_pyproject_over_defaults() -> None:
    pyproject = {"threshold": 0.7, "metric": "ratio", "samples": 2, "model": "openai/file"}
    settings = _resolve(pyproject, threshold="0.8", metric="exact", model=None)
    assert (settings.threshold, settings.metric) == (0.8, "exact")  # command line wins
    assert (settings.samples, settings.model) == (2, "openai/file")  # None: not given
    assert settings.cache == "auto"  # default
    assert settings.where("threshold") == "--promptpert-threshold"
    assert settings.where("samples") == f"[tool.promptpert] samples in {PYPROJECT}"

    marked = with_marker(settings, {"threshold": 0.9, "metric": None, "samples": 3}, MARKER)
    assert (marked.threshold, marked.metric, marked.samples) == (0.9, "exact", 3)
    assert marked.where("threshold") == MARKER
    assert marked.where("metric") == "--promptpert-metric"
    assert settings.threshold == 0.8  # the session settings are not mutated
    assert with_marker(settings, {}, MARKER) == settings


@pytest.mark.parametrize(
    ("pyproject", "command_line", "message"),
    [
        (
            {"threshold": "high"},
            {},
            f"[tool.promptpert] threshold in {PYPROJECT}: 'high' is not a number",
        ),
        ({}, {"threshold": "high"}, "--promptpert-threshold: 'high' is not a number"),
        ({}, {"threshold": "nan"}, "--promptpert-threshold: 'nan' is not a number"),
        (
            {"threshold": 1.5},
            {},
            f"[tool.promptpert] threshold in {PYPROJECT}: 1.5 is outside [0, 1]",
        ),
        ({}, {"threshold": "-0.1"}, "--promptpert-threshold: '-0.1' is outside [0, 1]"),
        ({"threshold": True}, {}, "threshold in"),
        ({"cache": "sometimes"}, {}, "[tool.promptpert] cache in"),
        ({}, {"cache": "sometimes"}, "--promptpert-cache: 'sometimes' is not a cache mode"),
        ({"samples": 0}, {}, f"[tool.promptpert] samples in {PYPROJECT}: 0 must be >= 1"),
        ({"samples": 1.5}, {}, "1.5 is not a whole number"),
        ({"concurrency": 0}, {}, "[tool.promptpert] concurrency in"),
        ({"variants": []}, {}, "[tool.promptpert] variants in"),
        ({"variants": ["add_period", 3]}, {}, "3 is not a variant name"),
        ({}, {"variants": "add_period,,casing"}, "--promptpert-variants: '' is not"),
        ({"model": ""}, {}, "[tool.promptpert] model in"),
        ({"metric": 3}, {}, "[tool.promptpert] metric in"),
        ({}, {"cache_dir": ""}, "--promptpert-cache-dir: '' must be a non-empty string"),
        (
            {"thresold": 0.5},
            {},
            f"[tool.promptpert] in {PYPROJECT}: unknown key 'thresold' (known keys: model,",
        ),
    ],
)
def test_bad_values_name_where_they_came_from(
    pyproject: dict[str, Any], command_line: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        _resolve(pyproject, **command_line)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, f"{MARKER}: threshold: 1.5 is outside [0, 1]"),
        ({"samples": 0}, f"{MARKER}: samples: 0 must be >= 1"),
        ({"metric": ""}, f"{MARKER}: metric: '' must be a metric name"),
        ({"variants": []}, f"{MARKER}: variants: [] names no variants"),
        (
            {"thresold": 0.5},
            f"{MARKER}: unknown argument 'thresold' (known: variants, threshold, metric, samples, extract)",
        ),
        ({"cache": "off"}, f"{MARKER}: unknown argument 'cache'"),
    ],
)
def test_bad_marker_arguments_name_the_marker(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        with_marker(_resolve(), kwargs, MARKER)


def test_marker_accepts_a_callable_metric_and_variant_string() -> None:
    def first_line(original: str, variant: str) -> float:
        return float(original.splitlines()[:1] == variant.splitlines()[:1])

    marked = with_marker(_resolve(), {"metric": first_line, "variants": "casing"}, MARKER)
    assert marked.metric is first_line
    assert marked.variants == ("casing",)


@pytest.mark.parametrize(
    "value",
    [
        ["add_period", "casing", "lower_first+strip_period"],
        "add_period, casing,lower_first+strip_period",
    ],
    ids=["list", "comma-string"],
)
def test_variants_accept_a_list_or_a_comma_string(value: object) -> None:
    expected = ("add_period", "casing", "lower_first+strip_period")
    assert _resolve({"variants": value}).variants == expected
    assert _resolve(variants=value).variants == expected


@pytest.mark.parametrize("key", ["cache_dir", "report", "html", "baseline"])
def test_relative_paths_are_anchored_at_the_rootdir(key: str, tmp_path: Path) -> None:
    assert getattr(_resolve({key: "out/x"}), key) == ROOT / "out" / "x"
    assert getattr(_resolve(**{key: "cli/x"}), key) == ROOT / "cli" / "x"
    absolute = tmp_path / "elsewhere"
    assert getattr(_resolve({key: str(absolute)}), key) == absolute


def test_read_pyproject_returns_the_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "x"\n\n[tool.promptpert]\nthreshold = 0.8\nvariants = ["casing"]\n',
        encoding="utf-8",
    )
    assert read_pyproject(path) == {"threshold": 0.8, "variants": ["casing"]}
    path.write_text("[tool.ruff]\nline-length = 99\n", encoding="utf-8")
    assert read_pyproject(path) == {}
    assert read_pyproject(tmp_path / "missing.toml") == {}


@pytest.mark.parametrize(
    "content",
    [
        "[tool.promptpert\nthreshold = 0.8\n",
        "[tool.promptpert]\nthreshold = = 0.8\n",
        b"[tool.promptpert]\nmodel = '\xff'\n",
        'tool = "not a table"\n',
        "[tool]\npromptpert = 3\n",
    ],
    ids=["unclosed-table", "bad-value", "not-utf8", "tool-not-table", "promptpert-not-table"],
)
def test_malformed_pyproject_names_the_file(tmp_path: Path, content: str | bytes) -> None:
    path = tmp_path / "pyproject.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError, match=re.escape(str(path))):
        read_pyproject(path)


def test_command_line_paths_are_relative_to_where_pytest_ran(tmp_path: Path) -> None:
    settings = resolve(
        command_line={"report": "r.json", "cache_dir": "c"},
        pyproject={"html": "h.html"},
        rootdir=tmp_path,
        invocation_dir=tmp_path / "sub",
    )
    assert settings.report == tmp_path / "sub" / "r.json"
    assert settings.cache_dir == tmp_path / "sub" / "c"
    assert settings.html == tmp_path / "h.html"
