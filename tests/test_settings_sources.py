"""End-to-end: settings from ini files and the environment, the header, unread tables.

Runs of the plugin with pytester against the fake provider on loopback. The fake model's name
decides its answers, and the provider records which model each request named, so every test
checks which source won by the model that was really called.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from fake_provider import FakeProvider

from pytest_promptpert.settings import VALIDATORS

MARKED = """
import pytest

@pytest.mark.promptpert(variants=["add_period"])
def test_q(llm):
    llm("hello")
"""

UNMARKED = """
def test_plain():
    pass
"""


@pytest.fixture
def sources(
    pytester: pytest.Pytester, provider: FakeProvider, litellm_preloaded: None
) -> pytest.Pytester:
    return pytester


def _called(provider: FakeProvider) -> list[str]:
    return sorted({request["model"] for request in provider.requests})


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("config_file", "section", "args", "label"),
    [
        ("tests/pytest.ini", "[pytest]", ["tests"], "tests/pytest.ini"),
        ("tox.ini", "[pytest]", [], "tox.ini"),
        ("setup.cfg", "[tool:pytest]", [], "setup.cfg"),
        ("pyproject.toml", "[tool.pytest.ini_options]", [], "pyproject.toml"),
        pytest.param(
            "pyproject.toml",
            "[tool.pytest]",  # pytest 9's native TOML table: a number may be a TOML number
            [],
            "pyproject.toml",
            marks=pytest.mark.skipif(pytest.version_tuple < (9, 2), reason="pytest >= 9.2"),
        ),
    ],
)
def test_ini_options_work_in_every_pytest_config_file(
    sources: pytest.Pytester,
    provider: FakeProvider,
    config_file: str,
    section: str,
    args: list[str],
    label: str,
) -> None:
    quote = '"' if config_file.endswith(".toml") else ""
    number = "0.9" if section == "[tool.pytest]" else f"{quote}0.9{quote}"
    _write(
        sources.path / config_file,
        f"{section}\n"
        f"promptpert_model = {quote}openai/stable{quote}\n"
        f"promptpert_api_base = {quote}{provider.url}{quote}\n"
        f"promptpert_threshold = {number}\n",
    )
    _write(sources.path / "tests" / "test_q.py", MARKED)
    result = sources.runpytest(*args)
    result.assert_outcomes(passed=2)
    assert _called(provider) == ["stable"]
    result.stdout.fnmatch_lines(
        [
            "collected 2 items",
            f"promptpert: model=openai/stable ({label}), api_base=* ({label}),*"
            f" threshold=0.9 ({label})",
        ]
    )


def test_environment_over_ini_and_command_line_over_environment(
    sources: pytest.Pytester, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources.makeini(
        f"[pytest]\npromptpert_model = openai/stable\npromptpert_api_base = {provider.url}"
    )
    sources.makepyfile(MARKED)
    monkeypatch.setenv("PROMPTPERT_MODEL", "openai/period")
    monkeypatch.setenv("PROMPTPERT_CACHE", "off")
    result = sources.runpytest()
    result.assert_outcomes(passed=1, failed=1)  # the period model diverges on add_period
    assert _called(provider) == ["period"]
    result.stdout.fnmatch_lines(["promptpert: model=openai/period (PROMPTPERT_MODEL),*"])
    provider.reset()
    result = sources.runpytest("--promptpert-model=openai/echo")
    assert _called(provider) == ["echo"]
    result.stdout.fnmatch_lines(["promptpert: model=openai/echo (--promptpert-model),*"])


@pytest.mark.parametrize(
    ("files", "environ", "expected"),
    [
        (
            {"tox.ini": "[pytest]\npromptpert_threshold = high\n"},
            {},
            "*promptpert_threshold in */tox.ini: 'high' is not a number*",
        ),
        (
            {},
            {"PROMPTPERT_THRESHOLD": "x"},
            "*PROMPTPERT_THRESHOLD environment variable: 'x' is not a number*",
        ),
        (
            {},
            {"PROMPTPERT_VARIANTS": "add_period,nope"},
            "*PROMPTPERT_VARIANTS environment variable: unknown variant 'nope'*",
        ),
        (
            {
                "pyproject.toml": (
                    '[tool.pytest.ini_options]\npromptpert_metric = "exact"\n\n'
                    '[tool.promptpert]\nmetric = "ratio"\n'
                )
            },
            {},
            "*promptpert_metric in */pyproject.toml ('exact') and [[]tool.promptpert[]] metric in"
            " */pyproject.toml ('ratio') disagree; set metric in one place only*",
        ),
    ],
)
def test_bad_ini_and_environment_values_are_usage_errors_naming_their_source(
    sources: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    environ: dict[str, str],
    expected: str,
) -> None:
    for name, text in files.items():
        _write(sources.path / name, text)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    sources.makepyfile(UNMARKED)
    result = sources.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_help_lists_every_setting_as_an_ini_option(sources: pytest.Pytester) -> None:
    help_text = sources.runpytest("--help").stdout.str()
    scalar = "string | float" if pytest.version_tuple >= (9, 2) else "string"
    for key in VALIDATORS:
        kind = "linelist" if key == "variants" else scalar
        assert f"promptpert_{key} ({kind}):" in help_text, key
    assert "PROMPTPERT_FAIL_UNDER" in help_text


def test_relative_paths_in_an_ini_file_are_relative_to_it(
    sources: pytest.Pytester, provider: FakeProvider
) -> None:
    _write(
        sources.path / "tests" / "pytest.ini",
        f"[pytest]\npromptpert_model = openai/stable\npromptpert_api_base = {provider.url}\n"
        "promptpert_report = out/report.json\npromptpert_cache_dir = .cache\n",
    )
    _write(sources.path / "tests" / "test_q.py", MARKED)
    sources.runpytest("tests").assert_outcomes(passed=2)
    report = json.loads((sources.path / "tests" / "out" / "report.json").read_text("utf-8"))
    assert sorted(r["variant"] for r in report["results"]) == ["add_period", "original"]
    assert (sources.path / "tests" / ".cache").is_dir()


def test_header_only_when_marked_items_are_collected(sources: pytest.Pytester) -> None:
    sources.makeini("[pytest]\npromptpert_model = openai/stable\npromptpert_cache = off\n")
    sources.makepyfile(test_plain=UNMARKED)
    for args in ([], ["-n", "2"]):
        result = sources.runpytest_subprocess(*args)
        result.assert_outcomes(passed=1)
        assert "promptpert: model=" not in result.stdout.str(), args
    sources.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_m():
            pass
        """
    )
    result = sources.runpytest_subprocess()
    result.stdout.fnmatch_lines(["collected 3 items", "promptpert: model=openai/stable (*"])
    result = sources.runpytest_subprocess("-n", "2")
    # test_m makes no model call: its variant compared nothing, which is not a pass.
    result.assert_outcomes(passed=2, skipped=1)
    assert result.stdout.str().count("promptpert: model=openai/stable (tox.ini)") == 1


@pytest.fixture
def no_local_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a venv without the ``local`` extra (as is the test venv; also where it is not)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real(name, *a),
    )


def test_a_monorepo_table_above_the_rootdir_is_named_and_the_error_says_to_configure(
    sources: pytest.Pytester,
    provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    no_local_extra: None,
) -> None:
    # The user's report: [tool.promptpert] at the repository root, the pytest config in the
    # package; run from the package, the table was ignored without a word, the run fell back to
    # the local model, and the error advised installing the local extra.
    table = _write(
        sources.path / "pyproject.toml",
        f'[project]\nname = "mono"\n\n[tool.promptpert]\nmodel = "openai/stable"\n'
        f'api_base = "{provider.url}"\n',
    )
    package = sources.path / "pkg"
    _write(package / "pytest.ini", "[pytest]\n")
    _write(package / "test_q.py", MARKED)
    monkeypatch.chdir(package)
    result = sources.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["promptpert: model=local/gemma-3-270m (built-in default),*"])
    result.stdout.fnmatch_lines(
        [
            "*LocalModelError: *no model was configured, so the built-in default"
            " local/gemma-3-270m was used, and local models need llama-cpp-python*"
            "PROMPTPERT_MODEL=openai/gpt-4o-mini*pip install 'pytest-promptpert[[]local[]]'*"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*UnreadSettingsWarning: pytest-promptpert: [[]tool.promptpert[]] in"
            f" {table} is not read:*Move the table to {package / 'pyproject.toml'},"
            f" run pytest with --rootdir={sources.path}, or set the keys as promptpert_KEY ini"
            f" options in {package / 'pytest.ini'}.",
            "    [[]tool.promptpert[]]",  # the warning points at the table itself
        ]
    )
    assert provider.calls == 0
    # Following the advice: the table is read, and nothing is left to warn about.
    result = sources.runpytest(f"--rootdir={sources.path}")
    result.assert_outcomes(passed=2)
    assert _called(provider) == ["stable"]
    assert "UnreadSettingsWarning" not in result.stdout.str()


def test_a_configured_local_model_without_its_extra_says_only_to_install_it(
    sources: pytest.Pytester, no_local_extra: None
) -> None:
    sources.makeini("[pytest]\npromptpert_model = local/gemma-3-270m\n")
    sources.makepyfile(MARKED)
    result = sources.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*LocalModelError: *local models need llama-cpp-python*pip install 'pytest-promptpert*"]
    )
    assert "no model was configured" not in result.stdout.str()


def test_a_table_between_the_test_paths_and_the_rootdir_is_named(
    sources: pytest.Pytester, provider: FakeProvider
) -> None:
    sources.makeini(
        f"[pytest]\npromptpert_model = openai/stable\npromptpert_api_base = {provider.url}"
    )
    nearer = _write(sources.path / "pkg" / "pyproject.toml", "[tool.promptpert]\nthreshold = 0.9\n")
    _write(sources.path / "pkg" / "test_plain.py", UNMARKED)
    result = sources.runpytest("pkg")
    assert "UnreadSettingsWarning" not in result.stdout.str()  # no marked test: nothing said
    _write(sources.path / "pkg" / "test_q.py", MARKED)
    result = sources.runpytest("pkg", "-W", "error::pytest_promptpert.plugin.UnreadSettingsWarning")
    assert result.ret != pytest.ExitCode.OK  # a warning like any other: -W error makes it fatal
    result = sources.runpytest("pkg")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [f"*UnreadSettingsWarning: *[[]tool.promptpert[]] in {nearer} is not read*"]
    )


def test_an_environment_variable_that_names_no_setting_is_warned_about(
    sources: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTPERT_THRESHHOLD", "0.9")
    sources.makepyfile(UNMARKED)
    result = sources.runpytest()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*UnreadSettingsWarning: *PROMPTPERT_THRESHHOLD names no setting and is not read*"]
    )


def test_a_conftest_header_hook_may_hide_the_line(sources: pytest.Pytester) -> None:
    sources.makeconftest("def pytest_promptpert_header(config, settings):\n    return ''\n")
    sources.makeini("[pytest]\npromptpert_model = openai/stable\npromptpert_cache = off\n")
    sources.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_m():
            pass
        """
    )
    result = sources.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, skipped=1)  # the variant compared nothing: not a pass
    lines = result.stdout.lines
    start = lines.index("collected 2 items")
    assert lines[start + 1] == ""  # no blank line of ours before pytest's own
    assert lines[start + 2].startswith("test_a_conftest_header_hook_may_hide_the_line.py .s")
    assert "promptpert: model=" not in result.stdout.str()
