"""Unit tests for settings resolution.

Marker > command line (--promptpert-KEY, then -o promptpert_KEY) > environment (PROMPTPERT_KEY)
> the ini file and [tool.promptpert] > defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_promptpert.config_files import hidden_tables, read_pyproject, table_line
from pytest_promptpert.report import header_line
from pytest_promptpert.settings import (
    VALIDATORS,
    Settings,
    SettingsError,
    resolve,
    unknown_environment,
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
        ({}, {"prefetch": "maybe"}, "--promptpert-prefetch: 'maybe' is not true or false"),
        ({"prefetch": 2}, {}, f"[tool.promptpert] prefetch in {PYPROJECT}: 2 is not true or"),
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
            f"{MARKER}: unknown argument 'thresold'"
            " (known: variants, threshold, metric, samples, extract)",
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


# --- ini options and environment variables ---------------------------------------------

TOX = ROOT / "tox.ini"


def _from(
    *,
    pyproject: Mapping[str, Any] | None = None,
    ini: Mapping[str, Any] | None = None,
    overrides: tuple[str, ...] = (),
    environ: Mapping[str, str] | None = None,
    command_line: Mapping[str, Any] | None = None,
    ini_path: Path | None = TOX,
    invocation_dir: Path = ROOT / "sub",
) -> Settings:
    return resolve(
        command_line=command_line or {},
        pyproject=pyproject or {},
        pyproject_path=PYPROJECT,
        ini=ini or {},
        ini_path=ini_path,
        ini_overrides=overrides,
        environ=environ or {},
        rootdir=ROOT,
        invocation_dir=invocation_dir,
    )


#: A valid value, as text, for every setting: each must work from ini and from the environment.
TEXT_VALUES = {
    "model": "openai/x",
    "api_base": "http://127.0.0.1:1/v1",
    "variants": "casing, add_period",
    "threshold": "0.7",
    "metric": "ratio",
    "samples": "3",
    "cache_dir": "/abs/cache",
    "cache": "replay",
    "temperature": "0.2",
    "max_tokens": "9",
    "concurrency": "2",
    "retries": "0",
    "timeout": "5",
    "report": "/abs/r.json",
    "html": "/abs/r.html",
    "fail_under": "0.9",
    "baseline": "/abs/b.json",
    "baseline_tolerance": "0.1",
    "max_cost": "1.5",
    "intercept": "all",
    "route": "model",
    "embedding_model": "openai/e",
    "judge_model": "openai/j",
    "cache_url": "redis://127.0.0.1:6379/0",
    "extract": "first_line",
    "logprobs": "on",
    "prefetch": "false",
}


def test_every_setting_works_from_ini_environment_and_command_line() -> None:
    assert set(TEXT_VALUES) == set(VALIDATORS)  # a new setting needs a value here
    from_command_line = _from(command_line=TEXT_VALUES)
    from_ini = _from(ini=TEXT_VALUES)
    from_env = _from(environ={f"PROMPTPERT_{k.upper()}": v for k, v in TEXT_VALUES.items()})
    for key in VALIDATORS:
        assert getattr(from_ini, key) == getattr(from_command_line, key), key
        assert getattr(from_env, key) == getattr(from_command_line, key), key
        assert from_ini.where(key) == f"promptpert_{key} in {TOX}"
        assert from_env.where(key) == f"PROMPTPERT_{key.upper()} environment variable"
    assert from_env.variants == ("casing", "add_period")
    assert (from_env.threshold, from_env.samples, from_env.cache) == (0.7, 3, "replay")


def test_precedence_command_line_over_environment_over_ini() -> None:
    files = {"pyproject": {"metric": "ratio"}, "ini": {"threshold": "0.1", "samples": "2"}}
    environ = {"PROMPTPERT_THRESHOLD": "0.2", "PROMPTPERT_SAMPLES": "3"}
    settings = _from(**files, environ=environ, command_line={"threshold": "0.3"})
    assert (settings.threshold, settings.samples, settings.metric) == (0.3, 3, "ratio")
    assert settings.where("threshold") == "--promptpert-threshold"
    assert settings.where("samples") == "PROMPTPERT_SAMPLES environment variable"
    assert settings.where("metric") == f"[tool.promptpert] metric in {PYPROJECT}"
    # -o promptpert_KEY is given on the command line: over the environment, under the option
    overridden = {"ini": {"threshold": "0.4"}, "overrides": ("promptpert_threshold",)}
    assert _from(**overridden, environ=environ).threshold == 0.4
    assert _from(**overridden, environ=environ).where("threshold") == "-o promptpert_threshold"
    assert _from(**overridden, command_line={"threshold": "0.3"}).threshold == 0.3


def test_unset_ini_options_and_empty_environment_variables_are_ignored() -> None:
    settings = _from(
        pyproject={"threshold": 0.6},
        ini={"threshold": None, "variants": [], "model": ""},
        environ={"PROMPTPERT_THRESHOLD": "", "PROMPTPERT_MODEL": ""},
    )
    assert settings.threshold == 0.6
    assert settings.where("model") == "built-in default"
    assert settings.origin("model") is None


def test_ini_and_pyproject_must_agree_on_a_key_they_both_set() -> None:
    agreed = _from(pyproject={"threshold": 0.7, "variants": ["casing"]}, ini={"threshold": "0.70"})
    assert agreed.threshold == 0.7
    message = (
        f"promptpert_threshold in {TOX} ('0.8') and [tool.promptpert] threshold in {PYPROJECT}"
        " (0.7) disagree; set threshold in one place only"
    )
    with pytest.raises(SettingsError, match=re.escape(message)):
        _from(pyproject={"threshold": 0.7}, ini={"threshold": "0.8"})
    # -o is a command-line override, not a second file: it wins without a conflict
    overridden = _from(
        pyproject={"threshold": 0.7}, ini={"threshold": "0.8"}, overrides=("promptpert_threshold",)
    )
    assert overridden.threshold == 0.8


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (
            {"environ": {"PROMPTPERT_THRESHOLD": "x"}},
            "PROMPTPERT_THRESHOLD environment variable: 'x' is not a number",
        ),
        (
            {"environ": {"PROMPTPERT_SAMPLES": "2.5"}},
            "PROMPTPERT_SAMPLES environment variable: '2.5' is not a whole number",
        ),
        ({"ini": {"threshold": "1.5"}}, f"promptpert_threshold in {TOX}: '1.5' is outside [0, 1]"),
        ({"ini": {"cache": "never"}}, f"promptpert_cache in {TOX}: 'never' is not a cache mode"),
        ({"ini": {"variants": ["casing,"]}}, f"promptpert_variants in {TOX}: '' is not a variant"),
        (
            {"ini": {"intercept": "some"}, "overrides": ("promptpert_intercept",)},
            "-o promptpert_intercept: 'some' is not an intercept mode",
        ),
        (
            {"environ": {"PROMPTPERT_CACHE_URL": "http://user:hunter2@x/0"}},
            "PROMPTPERT_CACHE_URL environment variable: 'http://x/0' is not a redis://",
        ),
    ],
)
def test_bad_ini_and_environment_values_name_their_source(
    sources: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        _from(**sources)


def test_ini_variants_may_be_lines_or_commas() -> None:
    assert _from(ini={"variants": ["casing", "add_period, lower_first+strip_period"]}).variants == (
        "casing",
        "add_period",
        "lower_first+strip_period",
    )


def test_relative_paths_are_anchored_where_their_source_says(tmp_path: Path) -> None:
    ini_path = ROOT / "tests" / "pytest.ini"
    settings = _from(
        pyproject={"report": "table.json"},
        ini={"html": "ini.html", "baseline": "b.json"},
        overrides=("promptpert_baseline",),
        environ={"PROMPTPERT_CACHE_DIR": "env-cache"},
        ini_path=ini_path,
    )
    assert settings.report == ROOT / "table.json"  # [tool.promptpert]: the rootdir
    assert settings.html == ROOT / "tests" / "ini.html"  # ini file: its directory, as pytest
    assert settings.baseline == ROOT / "tests" / "b.json"  # -o: as pytest, the ini's directory
    assert settings.cache_dir == ROOT / "sub" / "env-cache"  # environment: where pytest ran
    # no ini file at all (-o alone): relative to where pytest ran, as pytest does
    alone = _from(ini={"html": "o.html"}, overrides=("promptpert_html",), ini_path=None)
    assert alone.html == ROOT / "sub" / "o.html"
    absolute = tmp_path / "abs.json"
    assert _from(environ={"PROMPTPERT_REPORT": str(absolute)}).report == absolute


def test_unknown_environment_variables_are_listed() -> None:
    environ = {"PROMPTPERT_THRESHHOLD": "1", "PROMPTPERT_MODEL": "x", "PATH": "/bin"}
    assert unknown_environment(environ) == ["PROMPTPERT_THRESHHOLD"]


# --- the header ------------------------------------------------------------------------


def test_header_names_where_each_setting_came_from() -> None:
    settings = _from(
        pyproject={"threshold": 0.7},
        ini={"model": "openai/x", "cache_url": "redis://user:hunter2@host:6379/0"},
        ini_path=ROOT / "tests" / "pytest.ini",
        environ={"PROMPTPERT_FAIL_UNDER": "0.8", "PROMPTPERT_CACHE": "replay"},
        command_line={"metric": "exact"},
        invocation_dir=ROOT,
    )
    line = header_line(settings)
    assert line.startswith("promptpert: model=openai/x (tests/pytest.ini), cache=")
    assert f"cache={ROOT / '.promptpert_cache'} (replay; PROMPTPERT_CACHE)," in line
    assert "variants=punctuation,casing,whitespace, " in line  # a default: no source
    assert "metric=exact (--promptpert-metric)" in line
    assert "threshold=0.7 (pyproject.toml)" in line
    assert "fail_under=0.8 (PROMPTPERT_FAIL_UNDER)" in line  # not shown unless set
    assert "cache_url=redis://host:6379/0 (tests/pytest.ini)" in line  # no credentials
    assert "hunter2" not in line
    assert "samples" not in line
    assert header_line(_from()).startswith(
        "promptpert: model=local/gemma-3-270m (built-in default),"
    )


# --- [tool.promptpert] tables that are not read ----------------------------------------


def _table(directory: Path, body: str = 'model = "openai/x"') -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pyproject.toml"
    path.write_text(f'[project]\nname = "p"\n\n[tool.promptpert]\n{body}\n', encoding="utf-8")
    return path


def test_hidden_tables_nearer_and_farther_than_the_rootdir(tmp_path: Path) -> None:
    mono, rootdir = tmp_path / "mono", tmp_path / "mono" / "pkg"
    farther = _table(mono)
    nearer = _table(rootdir / "tests" / "unit")
    (rootdir / "tests" / "unit" / "test_x.py").write_text("", encoding="utf-8")
    (rootdir / "pyproject.toml").write_text("[tool.ruff]\n", encoding="utf-8")
    starts = [rootdir, rootdir / "tests" / "unit" / "test_x.py"]
    assert hidden_tables(rootdir, starts) == [nearer, farther]
    assert hidden_tables(rootdir, [rootdir]) == [farther]
    assert table_line(farther) == 4
    # a table in the rootdir's own pyproject.toml is read: nothing is hidden
    _table(rootdir)
    assert hidden_tables(rootdir, starts) == []


def test_hidden_tables_skip_files_that_are_not_ours_to_judge(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.promptpert\nbroken", encoding="utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pyproject.toml").write_text("[tool.other]\nx = 1\n", encoding="utf-8")
    assert hidden_tables(tmp_path / "a" / "b", [tmp_path / "a" / "b"]) == []
