"""Hostile input and faults, end to end: what an attacker or an unlucky user can throw at a run.

Each case names the class it belongs to (cache, secrets, disk, provider, crash, prompt,
settings, kill) in its test name's first word. The cases that need to mount a file system
(a full disk, a read-only mount) run as root and are skipped elsewhere.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import diskcache
import pytest
from conftest import SENTINEL_KEY

from pytest_promptpert import CachedLLM, cli
from pytest_promptpert.backend import Cancelled, LiteLLMBackend
from pytest_promptpert.cache import ResponseCache
from pytest_promptpert.request import Completion, Request
from pytest_promptpert.settings import Settings

#: the key the cache reads first when it opens (cache.PROBE_KEY)
PROBE_KEY = "__probe__"

ONE_CALL = """
def test_call(llm):
    llm("What is the weather like")
"""

MARKED = """
import pytest

@pytest.mark.promptpert(variants=["add_period"])
def test_q(llm):
    llm("What is the weather like")
"""


class Planted:
    """A pickle that creates *path* when loaded: what a hostile cache would hold."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _answer_keys(cache_dir: Path) -> list[str]:
    with diskcache.Cache(str(cache_dir)) as cache:
        return [k for k in cache.iterkeys() if k != PROBE_KEY and not k.startswith("lock:")]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[list[Path]]:
    """Mount points to unmount at the end; a test that cannot mount is skipped."""
    mounted: list[Path] = []
    yield mounted
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _mount(mounted: list[Path], target: Path, *args: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *args, str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (needs root): {done.stderr.decode().strip()}")
    mounted.append(target)


# --- cache: data only -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "replay", "refresh"])
def test_cache_pickles_planted_in_the_cache_never_run(project, provider, tmp_path, mode):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    pytester.runpytest().assert_outcomes(passed=1)
    cache_dir = pytester.path / ".promptpert_cache"
    (key,) = _answer_keys(cache_dir)
    marker = tmp_path / "pwned"
    with diskcache.Cache(str(cache_dir)) as cache:  # diskcache's own Disk: pickle mode
        cache.set(PROBE_KEY, Planted(marker))
        cache.set(key, Planted(marker))
        cache.set(f"lock:{key}", Planted(marker), expire=5)
    result = pytester.runpytest(f"--promptpert-cache={mode}", "-W", "always")
    assert not marker.exists()
    if mode == "replay":
        result.assert_outcomes(failed=1)  # the planted entry is a miss, and replay calls nothing
        result.stdout.fnmatch_lines(["*CacheMissError*"])
    else:
        result.assert_outcomes(passed=1)
    if mode != "refresh":  # refresh never reads an older answer
        result.stdout.fnmatch_lines(["*CacheWarning: cache entry*damaged*stored as pickle*"])
        assert result.stdout.str().count("CacheWarning: cache entry") == 1
    # The planted objects are live: diskcache's own reader would have run one.
    with diskcache.Cache(str(cache_dir)) as cache:
        cache.get(PROBE_KEY)
    assert marker.exists()


def test_cache_values_kept_in_files_or_under_pickled_keys_are_never_loaded(tmp_path):
    directory = tmp_path / "c"
    marker = tmp_path / "pwned"
    request = Request("m", [{"role": "user", "content": "hi"}])
    with diskcache.Cache(str(directory), disk_min_file_size=0) as cache:
        cache.set(request.key(), Planted(marker))  # a pickle in a .val file
        cache.set(("a", "tuple", "key"), "text under a pickled key")
    cache = ResponseCache(directory)
    with pytest.warns(UserWarning, match="stored as pickle"):
        assert cache.read(request) is None
    keys = list(cache._open().iterkeys())
    assert "damaged" in repr([k for k in keys if not isinstance(k, str)])
    cache.close()
    assert not marker.exists()


def test_cache_planted_file_name_cannot_make_an_overwrite_delete_elsewhere(tmp_path):
    directory = tmp_path / "c"
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    request = Request("m", [{"role": "user", "content": "hi"}])
    cache = ResponseCache(directory)
    assert cache.set(request, Completion("first", "m"))
    cache.close()
    with diskcache.Cache(str(directory)) as raw:  # point the entry's file at the victim
        raw._sql(
            "UPDATE Cache SET filename = ?, mode = 3 WHERE key = ?", (str(victim), request.key())
        )
    cache = ResponseCache(directory)
    with pytest.warns(UserWarning, match="damaged"):
        assert cache.read(request) is None
    assert cache.set(request, Completion("second", "m"))
    assert cache.read(request).output == "second"
    cache.close()
    assert victim.read_text() == "keep me"


def test_cache_commands_list_planted_entries_as_unreadable_and_never_run_them(
    project, provider, tmp_path
):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    pytester.runpytest().assert_outcomes(passed=1)
    cache_dir = pytester.path / ".promptpert_cache"
    (key,) = _answer_keys(cache_dir)
    marker = tmp_path / "pwned"
    planted = "ab" * 32  # shaped like an entry's key, so the one-scan listing reads it
    with diskcache.Cache(str(cache_dir)) as cache:  # diskcache's own Disk: pickle mode
        cache.set(planted, Planted(marker))
    texts = dict(ResponseCache(cache_dir).entry_texts())
    assert texts[planted] is None and json.loads(texts[key] or "")["output"]
    args = ["--cache-dir", str(cache_dir), "--json"]
    out = io.StringIO()
    assert cli.main(["cache", "stats", *args], out=out) == 0
    assert json.loads(out.getvalue())["unreadable"] == 1
    out = io.StringIO()
    assert cli.main(["cache", "ls", *args], out=out) == 0
    assert [row["key"] for row in json.loads(out.getvalue())] == [key]
    assert cli.main(["cache", "export", "-", "--cache-dir", str(cache_dir)], out=out) == 0
    assert not marker.exists()


def test_cache_directory_is_tagged_and_ignored_by_git_unless_the_user_untags_it(project):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    pytester.runpytest().assert_outcomes(passed=1)
    cache_dir = pytester.path / ".promptpert_cache"
    assert (cache_dir / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (
        (cache_dir / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    (cache_dir / ".gitignore").unlink()  # the user commits this cache on purpose
    pytester.runpytest().assert_outcomes(passed=1)
    assert not (cache_dir / ".gitignore").exists()


def test_cache_entry_that_is_not_a_completion_is_a_miss_with_one_warning(project, provider):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    pytester.runpytest().assert_outcomes(passed=1)
    cache_dir = pytester.path / ".promptpert_cache"
    (key,) = _answer_keys(cache_dir)
    with diskcache.Cache(str(cache_dir)) as cache:
        cache.set(key, '{"no": "output"}')
    result = pytester.runpytest("-W", "always")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*cache entry*damaged*not a readable completion*"])
    assert provider.calls == 2
    pytester.runpytest().assert_outcomes(passed=1)  # rewritten
    assert provider.calls == 2


@pytest.mark.parametrize("mode", ["replay", "auto"])
def test_disk_complete_cache_on_a_read_only_mount_replays(project, provider, mounts, mode):
    pytester = project("stable")
    pytester.makepyfile(MARKED)
    pytester.runpytest().assert_outcomes(passed=2)
    cache_dir = pytester.path / ".promptpert_cache"
    _mount(mounts, cache_dir, "--bind", str(cache_dir))
    _mount(mounts, cache_dir, "-o", "remount,bind,ro")
    result = pytester.runpytest(f"--promptpert-cache={mode}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*model calls 0, cache hits 2*"])
    assert provider.calls == 2


def test_disk_refresh_on_a_read_only_mount_is_a_usage_error(project, mounts):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    pytester.runpytest().assert_outcomes(passed=1)
    cache_dir = pytester.path / ".promptpert_cache"
    _mount(mounts, cache_dir, "--bind", str(cache_dir))
    _mount(mounts, cache_dir, "-o", "remount,bind,ro")
    result = pytester.runpytest("--promptpert-cache=refresh")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cache directory*is not writable*"])


def test_disk_cache_commands_read_a_read_only_mount_and_refuse_to_write(
    project, provider, mounts, capsys
):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    pytester.runpytest().assert_outcomes(passed=1)
    cache_dir = pytester.path / ".promptpert_cache"
    (key,) = _answer_keys(cache_dir)
    _mount(mounts, cache_dir, "--bind", str(cache_dir))
    _mount(mounts, cache_dir, "-o", "remount,bind,ro")
    out = io.StringIO()
    assert cli.main(["cache", "ls", "--json", "--cache-dir", str(cache_dir)], out=out) == 0
    assert [row["key"] for row in json.loads(out.getvalue())] == [key]
    assert cli.main(["cache", "clear", "--yes", "--cache-dir", str(cache_dir)], out=out) == 2
    assert f"cannot write to the cache {cache_dir}" in capsys.readouterr().err
    assert list(ResponseCache(cache_dir).entry_keys()) == [key]


def test_disk_full_keeps_paid_answers_for_the_run_and_says_so_once(
    project, provider, tmp_path, mounts
):
    small = tmp_path / "small"
    _mount(mounts, small, "-t", "tmpfs", "-o", "size=1m", "tmpfs")
    pytester = project("stable", cache_dir=str(small / "cache"))
    pytester.makepyfile(
        f"""
        from disk_fill import fill

        def test_a(llm):
            llm("first question")
            fill({str(small)!r})
            assert llm("second question") == llm("second question")

        def test_b(llm):
            llm("second question")
        """
    )
    result = pytester.runpytest("-W", "always", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert provider.calls == 2
    out = result.stdout.str()
    assert out.count("cannot write to the cache") == 1, out
    result.stdout.fnmatch_lines(["*model calls 2,*"])


def test_disk_full_at_the_end_loses_only_the_report_with_one_line(
    project, provider, tmp_path, mounts
):
    small = tmp_path / "small"
    _mount(mounts, small, "-t", "tmpfs", "-o", "size=256k", "tmpfs")
    pytester = project("stable")
    pytester.makepyfile(
        f"""
        from disk_fill import fill

        def test_fills_the_disk(llm):
            llm("a question")
            fill({str(small)!r})
        """
    )
    result = pytester.runpytest(
        f"--promptpert-report={small / 'r.json'}", f"--promptpert-html={pytester.path / 'r.html'}"
    )
    result.stdout.fnmatch_lines(
        ["*model calls 1*", "HTML report: *r.html", "promptpert: could not write the JSON report*"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    assert (pytester.path / "r.html").exists()


@pytest.mark.parametrize("output", ["report", "html", "baseline", "step_summary"])
def test_disk_unwritable_output_paths_are_usage_errors_before_any_test(project, provider, output):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    (pytester.path / "blocker").write_text("a file where a directory should be")
    target = pytester.path / "blocker" / "out.json"
    args = {
        "report": [f"--promptpert-report={target}"],
        "html": [f"--promptpert-html={target}"],
        "baseline": [f"--promptpert-baseline={target}", "--promptpert-update-baseline"],
        "step_summary": [],
    }[output]
    if output == "step_summary":
        os.environ["GITHUB_STEP_SUMMARY"] = str(target)
    try:
        result = pytester.runpytest(*args)
    finally:
        os.environ.pop("GITHUB_STEP_SUMMARY", None)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot write*out.json*blocker is not a directory*"])
    assert provider.calls == 0


# --- secrets ---------------------------------------------------------------------------------

PASSWORD = "hunter2-sentinel-pass"


def _secret_project(project, provider, body: str):
    url = provider.url.replace("http://", f"http://admin:{PASSWORD}@")
    pytester = project("stable")
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.promptpert]\nmodel = "openai/stable"\napi_base = "{url}"\nretries = 0\n',
    )
    pytester.makepyfile(body)
    return pytester


def _assert_nothing_leaked(pytester, result) -> None:
    shown = result.stdout.str() + result.stderr.str()
    written = b"".join(
        p.read_bytes()
        for p in pytester.path.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc", ".toml")  # the user's own files
    )
    for secret in (SENTINEL_KEY, PASSWORD):
        assert secret not in shown, shown
        assert secret.encode() not in written


@pytest.mark.parametrize("fault", ["empty_choices", "surrogate", "malformed", "echo_key"])
@pytest.mark.parametrize("tb", ["long", "auto"])
def test_secrets_stay_out_of_tracebacks_with_locals(project, provider, fault, tb):
    pytester = _secret_project(
        project,
        provider,
        f"""
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_q(llm):
            out = llm("What is the weather like", api_key={SENTINEL_KEY!r})
            assert out == "something else", out
        """,
    )
    provider.faults = [fault] * 4
    result = pytester.runpytest(
        "-l",
        f"--tb={tb}",
        "-rA",
        "--junitxml=j.xml",
        "--promptpert-report=r.json",
        "--promptpert-html=r.html",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "api_key" in result.stdout.str() or fault != "surrogate"  # the locals were printed
    _assert_nothing_leaked(pytester, result)


def test_secrets_of_the_environment_stay_out_of_a_crash_in_the_client(
    project, provider, monkeypatch
):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-sentinel-secret-0123")
    pytester = _secret_project(
        project,
        provider,
        """
        import pytest

        def broken(original, variant):
            raise RuntimeError("metric bug")

        @pytest.mark.promptpert(variants=["add_period"], metric=broken)
        def test_q(llm):
            llm("What is the weather like")
        """,
    )
    result = pytester.runpytest("-l", "--tb=long", "--junitxml=j.xml")
    result.assert_outcomes(passed=1, errors=1)
    assert "aws-sentinel-secret-0123" not in result.stdout.str()
    assert b"aws-sentinel-secret-0123" not in (pytester.path / "j.xml").read_bytes()
    _assert_nothing_leaked(pytester, result)


def test_secrets_reprs_hide_credentials(monkeypatch):
    from pytest_promptpert.redact import Params, secret_values

    monkeypatch.setenv("SOME_TOKEN", "token-sentinel-0123456")
    url = f"http://admin:{PASSWORD}@127.0.0.1:1/v1"
    request = Request(
        "openai/x", [{"role": "user", "content": "hi"}], {"api_key": SENTINEL_KEY, "api_base": url}
    )
    settings = Settings(api_base=url, cache_url=f"redis://u:{PASSWORD}@host:6379/0")
    params = Params(api_key=SENTINEL_KEY, api_base=url, temperature=0.5)
    secrets = secret_values(params)
    client = CachedLLM("openai/x", api_key=SENTINEL_KEY, api_base=url, cache="off")
    shown = " ".join(map(repr, [request, settings, params, secrets, client, client.defaults]))
    for secret in (SENTINEL_KEY, PASSWORD, "token-sentinel-0123456"):
        assert secret not in shown
        assert secrets.scrub(f"x{secret}x") == "x***x"
    assert "temperature" in repr(params) and "127.0.0.1:1" in repr(request)
    client.close()


# --- provider faults and odd outputs ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("empty_choices", "*ProviderError*(no HTTP status): the answer has an empty 'choices'*"),
        ("malformed", "*ProviderError*(no HTTP status): the answer from 127.0.0.1:*not a valid*"),
        ("nonstring", "*ProviderError*(no HTTP status)*not a valid completion*"),
        ("drop", "*ProviderError*(no HTTP status): connection error: no answer from 127.0.0.1:*"),
    ],
)
def test_provider_broken_answers_are_errors_labelled_truthfully(project, provider, fault, message):
    pytester = project("stable", retries=0)
    pytester.makepyfile(MARKED)
    provider.faults = [fault] * 4
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([message])
    assert "HTTP 500" not in result.stdout.str()


def test_provider_refused_connection_names_the_host(project):
    pytester = project("stable", retries=0)
    pytester.makefile(
        ".toml",
        pyproject='[tool.promptpert]\nmodel = "openai/stable"\n'
        'api_base = "http://127.0.0.1:9/v1"\nretries = 0\n',
    )
    pytester.makepyfile(ONE_CALL)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*connection error: no answer from 127.0.0.1:9*"])


def test_provider_missing_key_is_an_authentication_error_not_http_500(
    project, provider, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY")
    pytester = project("stable")
    pytester.makepyfile(MARKED)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*AuthenticationFailed*(no HTTP status)*set OPENAI_API_KEY*"])
    assert "HTTP 500" not in result.stdout.str()
    assert provider.calls == 0


def test_provider_client_side_timeout_is_not_called_http_408(project, provider):
    pytester = project("stable", retries=0, timeout=0.5)
    pytester.makepyfile(ONE_CALL)
    provider.latency = 2
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*(no HTTP status): timed out: no complete answer from *0.5 s*"])
    assert "HTTP 408" not in result.stdout.str()


def test_provider_dripping_one_byte_at_a_time_meets_the_deadline(project, provider):
    pytester = project("stable", retries=0, timeout=1)
    pytester.makepyfile(ONE_CALL)
    provider.faults = ["drip"]
    # A ~300-byte answer would take 25 minutes. The slow drip also keeps the abandoned call's
    # thread asleep while the inner run ends (CPython 3.11 can fail "AST constructor recursion
    # depth mismatch" when a thread imports while pytest rewrites assertions).
    provider.drip_interval = 5
    result = pytester.runpytest()
    provider.reset()  # stop dripping
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*timed out: no complete answer from 127.0.0.1:* within 1 s*"])


def test_provider_lone_surrogate_answer_is_stored_and_replayed(project, provider):
    pytester = project("stable")
    pytester.makepyfile(
        """
        def test_call(llm):
            assert llm("What is the weather like") == "half an emoji: \\ud83d"
        """
    )
    provider.faults = ["surrogate"]
    result = pytester.runpytest("--promptpert-report=r.json", "--promptpert-html=r.html")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*model calls 1,*"])
    assert json.loads((pytester.path / "r.json").read_text())["summary"]
    replay = pytester.runpytest("--promptpert-cache=replay")
    replay.assert_outcomes(passed=1)
    assert provider.calls == 1


# --- crashes are not divergences -------------------------------------------------------------

CRASHING_METRICS = {
    "raises": "def metric(a, b):\n    raise ZeroDivisionError('metric bug')\n",
    "nan": "def metric(a, b):\n    return float('nan')\n",
}


@pytest.mark.parametrize("kind", sorted(CRASHING_METRICS))
def test_crash_of_a_metric_is_an_error_that_fail_under_does_not_excuse(project, provider, kind):
    pytester = project("period")
    pytester.makepyfile(
        CRASHING_METRICS[kind]
        + """
import pytest

@pytest.mark.promptpert(variants=["add_period", "uppercase"], metric=metric)
def test_q(llm):
    llm("create a sign")
"""
    )
    result = pytester.runpytest("--promptpert-fail-under=0.0", "--promptpert-report=r.json")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*MetricError: metric 'metric'*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = {
        r["variant"]: r["outcome"]
        for r in json.loads((pytester.path / "r.json").read_text())["results"]
    }
    assert outcomes == {"original": "passed", "add_period": "error", "uppercase": "error"}


VARIANT_HOOKS = {
    "raises": "lambda text: 1 / 0",
    "returns_none": "lambda text: None",
}


@pytest.mark.parametrize("kind", sorted(VARIANT_HOOKS))
def test_crash_of_a_custom_variant_errors_its_item_never_the_original(project, provider, kind):
    pytester = project("stable")
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.hookimpl(optionalhook=True)
        def pytest_promptpert_add_variants(config):
            return {{"broken": {VARIANT_HOOKS[kind]}}}
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["broken", "add_period"])
        def test_q(llm):
            llm("What is the weather like")
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, errors=1, warnings=result.parseoutcomes().get("warnings", 0))
    result.stdout.fnmatch_lines(["*VariantError: variant 'broken'*"])
    assert "test_q[original] PASSED" in result.stdout.str()


@pytest.mark.parametrize(
    ("hook", "body", "message"),
    [
        (
            "pytest_promptpert_add_variants",
            "return ['shout']",
            "*pytest_promptpert_add_variants in *conftest.py returned list*not a mapping*",
        ),
        (
            "pytest_promptpert_add_metrics",
            "raise RuntimeError('no metrics today')",
            "*pytest_promptpert_add_metrics in *conftest.py raised RuntimeError: no metrics today*",
        ),
    ],
)
def test_crash_of_a_hook_is_a_usage_error_naming_it(project, hook, body, message):
    pytester = project("stable")
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.hookimpl(optionalhook=True)
        def {hook}(config):
            {body}
        """
    )
    pytester.makepyfile(ONE_CALL)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


# --- prompts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("[{'role': 'user', 'content': 42}]", "*prompt[[]0[]][[]'content'[]] must be a str*int*"),
        (
            "[{'role': 'user', 'content': [{'type': 'text', 'text': None}]}]",
            "*[[]'text'[]] must be a str, not NoneType*",
        ),
        ("'half an emoji \\ud83d'", "*prompt holds '\\ud83d' at position 14*lone surrogate*"),
    ],
)
def test_prompt_that_cannot_be_sent_is_rejected_before_sending(project, provider, prompt, message):
    pytester = project("echo")
    pytester.makepyfile(
        f"""
        def test_bad(llm):
            llm({prompt})
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*PromptError: {message}"])
    assert provider.calls == 0


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize("score", ["NaN", "Infinity", "-Infinity", "1.5"])
def test_settings_baseline_score_that_is_not_a_similarity_is_rejected(project, score):
    pytester = project("stable")
    (pytester.path / "promptpert-baseline.json").write_text(
        f'{{"version": 1, "scores": {{"t.py::test_q": {{"add_period": {score}}}}}}}'
    )
    pytester.makepyfile(ONE_CALL)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*baseline*'add_period' is *not a number in [[]0, 1[]]*"])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("timeout", '"nan"', "*timeout*'nan' is not a number*"),
        ("threshold", "inf", "*threshold*inf is not a number*"),
        ("concurrency", "0", "*concurrency*0 must be >= 1*"),
        ("cache", '"pickle"', "*cache*'pickle' is not a cache mode*"),
    ],
)
def test_settings_hostile_values_are_usage_errors_naming_their_source(project, key, value, message):
    pytester = project("stable")
    pyproject = pytester.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"\n{key} = {value}\n")
    pytester.makepyfile(ONE_CALL)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*[[]tool.promptpert[]] {message}"])


# --- kills, locks, Ctrl-C --------------------------------------------------------------------


def test_kill_on_another_host_leaves_a_lock_that_expires_in_seconds(project, provider):
    pytester = project("stable", concurrency=1)
    pytester.makepyfile(ONE_CALL)
    provider.latency = 30
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not provider.headers_seen and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cache_dir = pytester.path / ".promptpert_cache"
    with diskcache.Cache(str(cache_dir)) as cache:
        (name,) = [k for k in cache.iterkeys() if k.startswith("lock:")]
        _, expires = cache.get(name, expire_time=True)
        # Seen from elsewhere: the holder is on another host, so its pid cannot be checked.
        cache.set(name, "another-host:1:1", expire=expires - time.time())
    assert expires - time.time() <= 15  # a lease, not the old 600 s
    provider.reset()
    result = pytester.runpytest("-W", "always")
    result.assert_outcomes(passed=1)
    assert provider.calls == 1


def test_kill_planted_lock_that_never_expires_does_not_block(project, provider):
    pytester = project("stable")
    pytester.makepyfile(ONE_CALL)
    pytester.runpytest().assert_outcomes(passed=1)
    cache_dir = pytester.path / ".promptpert_cache"
    (key,) = _answer_keys(cache_dir)
    with diskcache.Cache(str(cache_dir)) as cache:
        cache.delete(key)
        cache.set(f"lock:{key}", "another-host:1:1")  # no expiry at all
    pytester.runpytest().assert_outcomes(passed=1)
    assert provider.calls == 2


def test_kill_with_ctrl_c_sends_no_queued_call_and_no_retry(project, provider):
    pytester = project("stable", concurrency=1, retries=3)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["punctuation", "casing"])
        def test_q(llm):
            llm("what is the weather like")
        """
    )
    provider.latency = 5
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # A suite started in the background by a shell without job control (`cmd &` in a
        # script) runs with SIGINT ignored, and the child would inherit that: Ctrl-C, as a
        # terminal sends it, reaches a process whose SIGINT has its default action.
        preexec_fn=_default_sigint,
    )

    def asked() -> int:
        # This run's requests only: a call abandoned by an earlier test may still arrive.
        return sum("weather" in json.dumps(body).lower() for body in list(provider.arrived))

    deadline = time.monotonic() + 120
    while not asked() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    provider.latency = 0
    time.sleep(6)  # let an answer in flight land, so a later request would be seen
    assert asked() == 1, out.decode()
    assert b"KeyboardInterrupt" in out


def test_kill_close_ends_the_call_abandoned_on_ctrl_c(provider):
    # A call thread still running when Python finalizes is stopped wherever it stands (CPython
    # gh-87135: crashes and memory corruption are possible). close() ends it first: its socket
    # is shut, and it is waited for (a bounded moment).
    provider.latency = 60  # the answer would come long after the test
    backend = LiteLLMBackend(retries=0)
    prompt = "a call that Ctrl-C abandons"
    request = Request(
        "openai/stable", [{"role": "user", "content": prompt}], {"api_base": provider.url}
    )
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(backend.call, request)
        deadline = time.monotonic() + 120
        # This test's request (a call abandoned by an earlier test may arrive too)
        while prompt not in json.dumps(provider.arrived) and time.monotonic() < deadline:
            time.sleep(0.05)
        backend.cancel()
        assert isinstance(future.exception(timeout=60), Cancelled)

    def calls_running() -> int:  # threads inside this request's call (idle ones wait for the next)
        return sum(
            any(
                f.f_code.co_qualname == "LiteLLMBackend._send"
                and f.f_locals.get("request") is request
                for f in _stack(top)
            )
            for top in sys._current_frames().values()
        )

    assert calls_running() == 1  # abandoned, still waiting for the server
    backend.close()
    assert calls_running() == 0


def _stack(frame: FrameType | None) -> Iterator[FrameType]:
    while frame is not None:
        yield frame
        frame = frame.f_back


def test_kill_lock_held_on_another_host_is_waited_out_with_a_warning(tmp_path):
    cache = ResponseCache(tmp_path / "c")
    request = Request("m", [{"role": "user", "content": "hi"}])
    cache._open().add(f"lock:{request.key()}", "another-host:1:1", expire=4)
    waiting = r"waiting for another run \(another-host:1:1\)"
    with pytest.warns(UserWarning, match=waiting), cache.lock(request):
        pass
    cache.close()


def test_kill_lock_key_is_a_lease_and_breaks_a_lock_that_never_expires(tmp_path):
    cache = ResponseCache(tmp_path / "c", lease=3.0)
    key = "ab" * 32
    name = f"lock:{key}"
    cache._open().set(name, "another-host:1:1")  # no expiry: no lock this version takes
    with cache.lock_key(key):
        holder, expires = cache._open().get(name, expire_time=True)
        assert holder.startswith(f"{socket.gethostname()}:{os.getpid()}:")
        assert expires is not None and expires <= time.time() + 3.0
    assert cache._open().get(name) is None
    cache.close()
