"""Provider faults, durability, damaged caches, secrets and hostile input, end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import SENTINEL_KEY

ONE_CALL = """
def test_call(llm):
    llm("What is the weather like")
"""


def test_provider_failure_is_an_error_with_status_and_is_not_cached(project, provider):
    pytester = project("stable", retries=1)
    pytester.makepyfile(ONE_CALL)
    provider.faults = [500, 500]
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*ProviderError: model 'openai/stable' failed (HTTP 500)*server trouble*"]
    )
    assert provider.calls == 0
    pytester.runpytest().assert_outcomes(passed=1)
    assert provider.calls == 1


def test_rate_limit_then_success_passes(project, provider):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    provider.faults = [429]
    provider.retry_after = "0"
    pytester.runpytest().assert_outcomes(passed=1)
    assert len(provider.headers_seen) == 2


def test_timeout_and_dropped_connection_are_errors(project, provider):
    pytester = project("stable", retries=0, timeout=0.5)
    pytester.makepyfile(ONE_CALL)
    provider.latency = 1.5
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ProviderError*"])
    provider.latency = 0
    provider.faults = ["drop"]
    # A generous timeout: on a loaded machine a 0.5 s one may expire first, and a timeout is
    # (truthfully) not reported as a connection error.
    result = pytester.runpytest("--promptpert-timeout=30")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*failed (no HTTP status): connection error*"])


def test_sigkill_loses_no_answer_already_fetched(project, provider):
    pytester = project("stable", concurrency=1)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("i", range(12))
        def test_call(llm, i):
            llm(f"question number {i}")
        """
    )
    provider.latency = 0.25
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while provider.calls < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    paid = provider.calls
    assert 4 <= paid < 12
    provider.latency = 0
    pytester.runpytest().assert_outcomes(passed=12)
    # At most the one call in flight at the kill is paid for twice.
    assert provider.calls - 12 in (0, 1)
    assert provider.calls <= 13


@pytest.mark.parametrize("damage", ["garbage", "truncated", "unopenable"])
def test_damaged_cache_is_moved_aside_with_a_warning(project, provider, damage):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    pytester.runpytest().assert_outcomes(passed=1)
    db = pytester.path / ".promptpert_cache" / "cache.db"
    if damage == "garbage":
        db.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[:1000])
    else:  # what unreadable permissions look like to SQLite, reproducible as root
        db.unlink()
        db.mkdir()
    result = pytester.runpytest("-W", "always")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*CacheWarning*cache directory*was unreadable*moved it to*damaged*"]
    )
    assert list(pytester.path.glob(".promptpert_cache.damaged-*"))
    pytester.runpytest().assert_outcomes(passed=1)
    assert provider.calls == 2


def test_cache_dir_that_cannot_be_created_is_a_usage_error(project):
    pytester = project("stable", cache_dir="blocker/cache")
    (pytester.path / "blocker").write_text("a file, not a directory")
    pytester.makepyfile(ONE_CALL)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*[[]tool.promptpert[]] cache_dir in *: cache directory*cannot be created*"]
    )


def test_no_secret_in_anything_the_run_writes_or_prints(project, provider, tmp_path):
    url_with_password = provider.url.replace("http://", "http://admin:hunter2secret@")
    pytester = project("period")
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.promptpert]\nmodel = "openai/period"\napi_base = "{url_with_password}"\n',
    )
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_sign(llm):
            llm("create a sign", api_key="{SENTINEL_KEY}")
        """
    )
    result = pytester.runpytest(
        "-v", "-rA", "--promptpert-report=r.json", "--promptpert-html=r.html", "--junitxml=j.xml"
    )
    result.assert_outcomes(passed=1, failed=1)
    shown = result.stdout.str() + result.stderr.str()
    written = b"".join(
        p.read_bytes()
        for p in pytester.path.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc", ".toml")  # the user's own files
    )
    assert b"create a sign" in written  # the reports and the cache are there...
    for secret in (SENTINEL_KEY, "hunter2secret"):
        assert secret not in shown
        assert secret.encode() not in written
    assert "api_base=http://127.0.0.1" in shown  # the header shows where, not who


HOSTILE = {
    "empty": "",
    "whitespace": "   \n\t ",
    "huge": "word " * 20_000,
    "no_letters": "12345 67 89",
    "emoji": "🙂🙃 what is this 🙂",
    "rtl": "مرحبا كيف حالك",
    "combining": "E\u0301cole de\u0301ja\u0300",
    "eszett": "ßtraße",
    "dotted_i": "İstanbul is big",
    "punctuation_only": "?!...",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_odd_prompts_work_without_crashing(project, provider, name):
    pytester = project("echo")
    (pytester.path / "prompt.json").write_text(json.dumps(HOSTILE[name]))
    pytester.makepyfile(
        """
        import json
        import pytest

        @pytest.mark.promptpert(variants=["punctuation", "casing", "whitespace"], threshold=0.0)
        def test_odd(llm, promptpert):
            prompt = json.load(open("prompt.json"))
            out = llm(prompt)
            assert out == promptpert.perturb(prompt) or promptpert.variant != "original"
        """
    )
    result = pytester.runpytest()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == 15


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("None", "*PromptError: prompt must be a str or a list of chat messages, not NoneType*"),
        (
            "[{'role': 'system', 'content': 'x'}]",
            "*PromptError: the messages have no user message*",
        ),
        ("[]", "*PromptError: prompt is an empty list of messages*"),
    ],
)
def test_bad_prompts_fail_the_item_with_a_clear_message(project, prompt, expected):
    pytester = project("echo")
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_bad(llm, promptpert):
            if promptpert.variant == "add_period":
                llm({prompt})
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines([expected])
    result.assert_outcomes(passed=1, failed=1)
