"""Good citizenship: errors named at once and explained once, every async library, nothing
left behind in litellm or the environment, pytest's conventions for warnings, skips and JUnit,
and background calls that end with their test."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from fake_provider import FakeProvider

from pytest_promptpert import AuthenticationFailed, CachedLLM
from pytest_promptpert.backend import LiteLLMBackend
from pytest_promptpert.failures import RequestRefused
from pytest_promptpert.request import Request

FAN_OUT = """
import pytest

@pytest.mark.promptpert(variants=["add_period", "uppercase", "exclamation"])
def test_weather(llm):
    llm("what is the weather like")

def test_plain(llm):
    llm("hello there")
"""


def test_missing_api_key_is_an_authentication_error_at_once(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    sleeps: list[float] = []
    with CachedLLM("openai/stable", api_base=provider.url, cache_dir=tmp_path) as llm:
        llm.backend._sleep = sleeps.append
        with pytest.raises(AuthenticationFailed) as info:
            llm("hello")
    message = str(info.value)
    assert "missing API key" in message and "OPENAI_API_KEY" in message
    assert info.value.status is None  # no request was sent, so no "HTTP 500"
    assert sleeps == []  # and nothing was retried
    assert provider.headers_seen == []


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("openai/stable", "AuthenticationFailed"),  # OPENAI_API_KEY unset
        ("nosuchprovider/stable", "UnknownModel"),  # litellm: "LLM Provider NOT provided"
        ("local/no-such-model.gguf", "LocalModelError"),  # no local extra, or no such file
    ],
)
def test_an_error_every_item_meets_is_explained_once(project, provider, monkeypatch, model, error):
    monkeypatch.delenv("OPENAI_API_KEY")
    pytester = project()
    pytester.makefile(
        ".toml", pyproject=f'[tool.promptpert]\nmodel = "{model}"\napi_base = "{provider.url}"\n'
    )
    pytester.makepyfile(test_fan_out=FAN_OUT)
    result = pytester.runpytest("-rN")  # no short summary: each item's error is shown once
    result.assert_outcomes(errors=5)
    lines = result.stdout.lines
    full = [line for line in lines if line.startswith(f"{error}: model ")]
    pointers = [line for line in lines if line.startswith(f"{error}: same error as test_")]
    assert len(full) == 1, result.stdout.str()
    assert len(pointers) == 4
    first = next(lines[i - 1] for i, line in enumerate(lines) if line in full)
    first_id = first.strip("_ ").removeprefix("ERROR at call of ")  # e.g. test_weather[uppercase]
    assert all(f"same error as test_fan_out.py::{first_id}: " in line for line in pointers)
    result.stdout.fnmatch_lines(["promptpert: model '*': * the same error in 5 items*"])
    assert provider.headers_seen == []


def test_an_error_every_item_meets_is_summed_up_across_xdist_workers(
    project, provider, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY")
    pytester = project("stable")
    pytester.makepyfile(test_fan_out=FAN_OUT)
    result = pytester.runpytest("-n", "2", "-rN")
    result.assert_outcomes(errors=5)
    lines = result.stdout.lines
    full = [line for line in lines if line.startswith("AuthenticationFailed: model ")]
    pointers = [line for line in lines if line.startswith("AuthenticationFailed: same error as ")]
    assert 1 <= len(full) <= 2  # once in each worker that met it
    assert len(full) + len(pointers) == 5
    result.stdout.fnmatch_lines(
        [
            "promptpert: model 'openai/stable': missing API key: set OPENAI_API_KEY*"
            " the same error in 5 items*"
        ]
    )


ASYNC_TESTS = """
import pytest

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

@pytest.mark.anyio
@pytest.mark.promptpert(variants=["add_period"])
async def test_marked(llm):
    assert "forty-two" in await llm.acall("what is the weather like")

@pytest.mark.anyio
async def test_plain(llm):
    assert "forty-two" in await llm.acall("what is six times seven")
"""


def test_acall_works_under_asyncio_and_trio(project, provider):
    pytester = project("stable")
    pytester.makepyfile(ASYNC_TESTS)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*test_marked[[]trio-add_period[]] PASSED*"])
    assert provider.calls == 3  # the trio items found the asyncio items' answers in the cache


WARN_ON_IMPORT = """
import importlib.abc
import importlib.machinery
import sys
import warnings


class WarnOnImport(importlib.abc.MetaPathFinder):
    # litellm 1.73 warned on import (PydanticDeprecatedSince20); the one installed here does
    # not, so this finder adds such a warning to the real import.
    def find_spec(self, name, path, target=None):
        if name != "litellm":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        execute = spec.loader.exec_module

        def exec_module(module):
            warnings.warn("class-based config is deprecated", DeprecationWarning)
            execute(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, WarnOnImport())
"""


def test_importing_litellm_leaves_no_warning_and_no_environment_variable(
    project, provider, monkeypatch
):
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP")
    pytester = project("stable")
    pytester.makeconftest(WARN_ON_IMPORT)
    pytester.makepyfile(
        """
        import os
        import sys

        def test_app(llm):
            assert "litellm" not in sys.modules
            assert "forty-two" in llm("what is the weather like")
            assert "litellm" in sys.modules
            assert "LITELLM_LOCAL_MODEL_COST_MAP" not in os.environ
        """
    )
    # A fresh process, so that litellm is imported during the test. litellm 1.110 also loads
    # modules on its first call whose pydantic models warn (UserWarning): none is recorded.
    result = pytester.runpytest_subprocess("-W", "error::DeprecationWarning", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "warnings summary" not in result.stdout.str()


def test_the_application_keeps_its_litellm_settings(project, provider):
    pytester = project("stable", retries=0)
    pytester.makepyfile(
        """
        import litellm
        import pytest
        from pytest_promptpert import ProviderError

        def test_app(llm, monkeypatch, capsys):
            monkeypatch.setattr(litellm, "suppress_debug_info", False, raising=False)
            with pytest.raises(ProviderError):
                llm("this one fails")
            assert "forty-two" in llm("what is the weather like")
            assert litellm.suppress_debug_info is False
            assert "telemetry" not in vars(litellm)
            assert "Give Feedback" not in capsys.readouterr().out  # quiet while we call
        """
    )
    provider.faults = [500]
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_plugin_warnings_are_pytest_warnings(project, provider):
    pytester = project("stable")
    pytester.makepyfile("def test_call(llm):\n    llm('What is the weather like')\n")
    pytester.runpytest().assert_outcomes(passed=1)
    (pytester.path / ".promptpert_cache" / "cache.db").write_bytes(b"not a database" * 100)
    result = pytester.runpytest("-W", "error::pytest.PytestWarning")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CacheWarning: cache directory*was unreadable*"])


NO_OP_VARIANT = """
import pytest

@pytest.mark.promptpert(variants=["add_period", "uppercase"])
def test_sentence(llm):
    llm("The prompt already ends with a period.")
"""


def test_skip_reasons_point_at_the_test(project, provider):
    pytester = project("stable")
    pytester.makepyfile(test_skips=NO_OP_VARIANT)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] test_skips.py:*: variant 'add_period' leaves the prompt unchanged"]
    )
    assert "plugin.py" not in result.stdout.str()


def test_junit_properties_are_omitted_rather_than_none(project, provider):
    pytester = project("stable")
    pytester.makepyfile(test_skips=NO_OP_VARIANT)
    pytester.runpytest("--junitxml=junit.xml").assert_outcomes(passed=2, skipped=1)
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(pytester.path / "junit.xml").iter("testcase")
    }
    assert "None" not in str(properties)
    assert "promptpert_score" not in properties["test_sentence[add_period]"]
    assert properties["test_sentence[add_period]"]["promptpert_variant"] == "add_period"
    assert float(properties["test_sentence[uppercase]"]["promptpert_score"]) > 0.5


RECORDED = """
import pytest

@pytest.mark.vcr
@pytest.mark.promptpert(variants=["add_period", "uppercase", "exclamation"])
def test_weather(llm):
    llm("what is the weather like")
"""


def test_background_calls_end_with_their_test(project, provider):
    # One call at a time, each slow: the variants' calls started by whichever item of the test
    # runs first are still queued when its body returns.
    pytester = project("stable", concurrency=1)
    pytester.makepyfile(test_recorded=RECORDED)
    provider.latency = 0.2
    pytester.runpytest_subprocess("--record-mode=once").assert_outcomes(passed=4)
    recorded = {
        path.name: len(yaml.safe_load(path.read_text())["interactions"])
        for path in (pytester.path / "cassettes").rglob("*.yaml")
    }
    # Every call in the cassette of the item that made it, the first one: all four there.
    assert sorted(recorded.values()) == [4], recorded
    assert provider.calls == 4


def test_a_request_refused_by_a_recorder_is_an_error_at_once(project, provider):
    pytester = project("stable")
    # A host name no earlier test used: litellm keeps clients (and their open keep-alive
    # connections) per api_base, and a reused one would make the outcome depend on test order.
    # In a subprocess: in-process, a background thread left by an earlier test can import while
    # pytest rewrites this module's asserts, which crashes CPython 3.11.7 ("AST constructor
    # recursion depth mismatch").
    fresh = provider.url.replace("127.0.0.1", "localhost")
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.promptpert]\nmodel = "openai/stable"\napi_base = "{fresh}"\n',
    )
    pytester.makepyfile(test_recorded=RECORDED)
    result = pytester.runpytest_subprocess("--record-mode=none", "-rN")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(
        ["RequestRefused: *never left this process: *CannotOverwriteExistingCassetteException*"]
    )
    assert "HTTP 500" not in result.stdout.str()
    assert provider.calls == 0


@pytest.mark.parametrize("refuser", ["vcrpy", "block_network"])
def test_refused_requests_are_not_retried(provider: FakeProvider, tmp_path: Path, refuser):
    import vcr
    from pytest_recording import network

    sleeps: list[float] = []
    backend = LiteLLMBackend(sleep=sleeps.append)
    # A host name no earlier test used: litellm keeps clients (and their open keep-alive
    # connections, which a socket block cannot stop) per api_base.
    api_base = provider.url.replace("127.0.0.1", "localhost") + f"?refuser={refuser}"
    request = Request("openai/stable", [{"role": "user", "content": "hi"}], {"api_base": api_base})
    if refuser == "vcrpy":
        refusing = vcr.VCR(record_mode="none").use_cassette(str(tmp_path / "c.yaml"))
    else:  # pytest-recording's --block-network
        refusing = network.blocking_context()
    with refusing, pytest.raises(RequestRefused) as info:
        backend.call(request)
    assert sleeps == []
    assert info.value.status is None
    assert type(info.value.__cause__).__module__.startswith(("vcr", "builtins"))
    assert provider.calls == 0


HEAVY = ("litellm", "asyncio", "rapidfuzz")


def test_importing_the_plugin_imports_no_heavy_module():
    # A fresh interpreter: pytest imports the plugin on every run, marked tests or not.
    probe = (
        "import sys, pytest; before = set(sys.modules); import pytest_promptpert.plugin;"
        f" print(sorted(m for m in {HEAVY!r} if m in sys.modules and m not in before))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_run_without_marked_tests_imports_no_heavy_module(pytester):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    probe = (
        "import sys, pytest; pytest.main(sys.argv[1:]);"
        f" print('heavy:', sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    # anyio's own pytest plugin imports asyncio, whatever this plugin does: left out here.
    for args in (["--version"], ["-p", "no:anyio", "-p", "no:randomly", "-q"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            text=True,
            cwd=pytester.path,
        )
        assert "heavy: []" in done.stdout, (args, done.stdout, done.stderr)
