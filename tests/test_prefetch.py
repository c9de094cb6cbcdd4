"""Cross-test prefetch from the manifest of the last run (manifest.py, prefetch.py)."""

from __future__ import annotations

import json
from pathlib import Path

import fake_provider
import pytest
from conftest import SENTINEL_KEY
from fake_provider import FakeProvider

from pytest_promptpert.cli import main as promptpert_cli
from pytest_promptpert.client import CachedLLM
from pytest_promptpert.manifest import MANIFEST_NAME, CallLog, dumps, load, loads, merge
from pytest_promptpert.prefetch import Prefetcher
from pytest_promptpert.redact import Secrets
from pytest_promptpert.request import Request

TESTS = """
import pytest

{gate}

@pytest.mark.promptpert(variants=["add_period", "uppercase"])
def test_first(llm):
    {wait}llm("what is the capital of France")


@pytest.mark.promptpert(variants=["add_period", "uppercase"])
def test_second(llm):
    llm("name three primary colours")


@pytest.mark.promptpert(variants=["add_period", "uppercase"])
def test_third(llm):
    llm("who wrote moby dick")
"""

#: In process only (it reads the fake provider's records): the first test waits in its body
#: until the provider has been asked the last test's prompt, which only a cross-test prefetch
#: asks before that test runs.
GATE = """
import time

import fake_provider


def seen_by_provider(prompt):
    deadline = time.monotonic() + 20  # a bound on a hang, not a timing assertion
    while time.monotonic() < deadline:
        if prompt in fake_provider.CURRENT.prompts():
            return True
        time.sleep(0.01)
    return False
"""
SUITE = TESTS.format(gate=GATE, wait='assert seen_by_provider("WHO WROTE MOBY DICK")\n    ')
#: The same tests without the wait: a first run (no manifest yet), or under xdist.
FIRST_RUN = TESTS.format(gate="", wait="")

UNIQUE_CALLS = 9  # 3 prompts x (original, add_period, uppercase)


@pytest.fixture
def suite(project, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(fake_provider, "CURRENT", provider, raising=False)
    pytester = project("stable")
    pytester.makepyfile(test_suite=FIRST_RUN)
    return pytester


def _clear_cache(pytester: pytest.Pytester) -> Path:
    """``promptpert cache clear``: every answer goes, the manifest stays."""
    cache_dir = pytester.path / ".promptpert_cache"
    assert promptpert_cli(["cache", "clear", "--yes", "--cache-dir", str(cache_dir)]) == 0
    return cache_dir / MANIFEST_NAME


def _bodies(provider: FakeProvider) -> list[str]:
    return [json.dumps(r["body"], sort_keys=True) for r in provider.requests]


def test_first_run_writes_a_manifest_with_no_secret(suite, provider):
    suite.makepyfile(
        test_keyed="""
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_keyed(llm):
            llm("a prompt sent with its own key", api_key="sk-own-key-in-the-test-1234")
            llm("a prompt sent plainly")
        """
    )
    suite.runpytest().assert_outcomes(passed=11)
    path = suite.path / ".promptpert_cache" / MANIFEST_NAME
    text = path.read_text("utf-8")
    assert SENTINEL_KEY not in text
    assert "sk-own-key-in-the-test-1234" not in text
    assert "a prompt sent with its own key" not in text  # its call is not recorded at all
    entries, problem = load(path)
    assert problem is None
    assert sorted(entries) == [
        "test_keyed.py::test_keyed",
        "test_suite.py::test_first",
        "test_suite.py::test_second",
        "test_suite.py::test_third",
    ]
    third = entries["test_suite.py::test_third"]
    assert sorted(third) == ["add_period", "original", "uppercase"]
    assert [c["messages"][-1]["content"] for c in third["uppercase"]] == [
        "who wrote moby dick",
        "WHO WROTE MOBY DICK",
    ]
    assert third["original"][0]["params"] == {}  # the run's settings are not the test's
    assert [
        c["messages"][-1]["content"] for c in entries["test_keyed.py::test_keyed"]["original"]
    ] == ["a prompt sent plainly"]


def test_a_cold_run_with_a_manifest_starts_every_call_before_the_tests_ask(suite, provider):
    suite.runpytest().assert_outcomes(passed=9)
    assert provider.calls == UNIQUE_CALLS
    _clear_cache(suite)
    suite.makepyfile(test_suite=SUITE)
    provider.reset()
    result = suite.runpytest("--promptpert-report=report.json")
    result.assert_outcomes(passed=9)
    # Each unique call once: the tests used the prefetched answers.
    assert provider.calls == UNIQUE_CALLS
    assert len(set(_bodies(provider))) == UNIQUE_CALLS
    result.stdout.fnmatch_lines(["promptpert prefetch: 9 calls started before their tests, *"])
    assert "no test asked for" not in result.stdout.str()
    summary = json.loads((suite.path / "report.json").read_text("utf-8"))["summary"]
    assert summary["prefetch"] == {"calls": 9, "unused": 0, "unused_tokens": 0, "unused_cost": 0.0}
    assert (summary["calls"], summary["cache_misses"], summary["cache_hits"]) == (9, 9, 0)


def test_a_changed_prompt_is_not_asked_for_and_its_prefetch_is_reported(suite, provider):
    suite.runpytest().assert_outcomes(passed=9)
    _clear_cache(suite)
    suite.makepyfile(test_suite=SUITE.replace("primary colours", "secondary colours"))
    provider.reset()
    result = suite.runpytest("--promptpert-report=report.json")
    result.assert_outcomes(passed=9)
    # The old prompt's three calls were prefetched, and the new prompt's three made by its test.
    assert provider.calls == UNIQUE_CALLS + 3
    result.stdout.fnmatch_lines(
        [
            "promptpert prefetch: 3 prefetched calls no test asked for (prompts changed since the"
            " manifest, or tests not reached), ~* tokens, est. $0.00; their answers are cached"
        ]
    )
    summary = json.loads((suite.path / "report.json").read_text("utf-8"))["summary"]
    assert summary["prefetch"]["unused"] == 3
    assert summary["prefetch"]["unused_tokens"] > 0
    # The manifest now holds the new prompt only: the next cold run wastes nothing.
    entries, _ = load(suite.path / ".promptpert_cache" / MANIFEST_NAME)
    prompts = [
        c["messages"][-1]["content"] for c in entries["test_suite.py::test_second"]["original"]
    ]
    assert prompts == ["name three secondary colours"]


def test_a_model_change_prefetches_the_new_models_answers(suite, provider):
    suite.runpytest().assert_outcomes(passed=9)
    suite.makepyfile(test_suite=SUITE)
    provider.reset()
    # Another model string (answered as the fake "stable" model is): every key is new.
    result = suite.runpytest("--promptpert-model=openai/v2/stable")
    result.assert_outcomes(passed=9)
    assert provider.calls == UNIQUE_CALLS  # each call mapped to the new model, made once
    assert {r["model"] for r in provider.requests} == {"v2/stable"}
    assert "no test asked for" not in result.stdout.str()


def test_refresh_prefetches_each_answer_once_and_the_tests_use_it(suite, provider):
    suite.runpytest().assert_outcomes(passed=9)
    suite.makepyfile(test_suite=SUITE)
    provider.reset()
    suite.runpytest("--promptpert-cache=refresh").assert_outcomes(passed=9)
    assert provider.calls == UNIQUE_CALLS
    assert len(set(_bodies(provider))) == UNIQUE_CALLS


def test_under_xdist_each_call_is_made_once(suite, provider):
    suite.runpytest("-n", "2").assert_outcomes(passed=9)  # the controller writes the manifest
    entries, problem = load(suite.path / ".promptpert_cache" / MANIFEST_NAME)
    assert problem is None
    assert len(entries) == 3
    assert all(len(items) == 3 for items in entries.values())
    _clear_cache(suite)
    provider.reset()
    provider.latency = 0.05  # so that the workers' prefetches and tests overlap
    suite.runpytest("-n", "2", "--promptpert-report=report.json").assert_outcomes(passed=9)
    assert provider.calls == UNIQUE_CALLS
    assert len(set(_bodies(provider))) == UNIQUE_CALLS
    summary = json.loads((suite.path / "report.json").read_text("utf-8"))["summary"]
    assert "prefetch" in summary  # the workers prefetched
    assert summary["prefetch"]["unused"] == 0
    assert summary["calls"] == UNIQUE_CALLS


TWO_STEPS = """
import pytest

@pytest.mark.promptpert(variants=["add_period"])
def test_two_steps(llm):
    llm("the first step")
    llm("the second step")
"""


def test_plan_shows_the_whole_run_from_the_manifest(project, provider):
    pytester = project("stable")
    pytester.makepyfile(test_steps=TWO_STEPS)
    pytester.runpytest().assert_outcomes(passed=2)
    assert provider.calls == 4
    _clear_cache(pytester)
    provider.reset()
    # Without the manifest the plan stops at each item's first call.
    result = pytester.runpytest("--promptpert-plan", "--promptpert-prefetch=false")
    result.stdout.fnmatch_lines(["promptpert plan: 2 model calls not in the cache, *"])
    result = pytester.runpytest("--promptpert-plan")
    result.stdout.fnmatch_lines(
        [
            "promptpert plan: 4 model calls not in the cache, *",
            "*'the second step.'*",
            "promptpert plan: 4 of these calls are from the last run's manifest *",
        ]
    )
    assert provider.calls == 0


@pytest.mark.parametrize(
    ("text", "problem", "xdist"),
    [
        ("{not json", "is not JSON", []),
        ('{"tests": {}}', "is not a pytest-promptpert manifest", ["-n", "2"]),
    ],
    ids=["damaged", "foreign-xdist"],
)
def test_a_damaged_manifest_is_ignored_with_one_warning(suite, provider, text, problem, xdist):
    path = suite.path / ".promptpert_cache" / MANIFEST_NAME
    path.parent.mkdir()
    path.write_text(text)
    result = suite.runpytest(*xdist)
    result.assert_outcomes(passed=9)
    assert result.stdout.str().count("ManifestWarning") == 1  # once, by the controller
    result.stdout.fnmatch_lines([f"*ManifestWarning: *{MANIFEST_NAME} {problem}*ignored*"])
    entries, problem = load(path)
    assert problem is None and len(entries) == 3  # written anew


def test_a_narrowed_run_keeps_the_other_tests_entries(suite, provider):
    suite.runpytest().assert_outcomes(passed=9)
    suite.makepyfile(test_suite=FIRST_RUN.replace("primary colours", "secondary colours"))
    suite.runpytest("-k", "test_second and uppercase").assert_outcomes(passed=1)
    entries, _ = load(suite.path / ".promptpert_cache" / MANIFEST_NAME)
    assert len(entries) == 3
    second = entries["test_suite.py::test_second"]
    assert [c["messages"][-1]["content"] for c in second["uppercase"]] == [
        "name three secondary colours",
        "NAME THREE SECONDARY COLOURS",
    ]
    # The item that did not run keeps what it asked for last time.
    assert second["original"][0]["messages"][-1]["content"] == "name three primary colours"


def test_prefetch_false_neither_reads_nor_writes_a_manifest(suite, provider):
    suite.runpytest("--promptpert-prefetch=false").assert_outcomes(passed=9)
    path = suite.path / ".promptpert_cache" / MANIFEST_NAME
    assert not path.exists()
    suite.runpytest().assert_outcomes(passed=9)
    assert path.exists()
    _clear_cache(suite)
    provider.reset()
    result = suite.runpytest("--promptpert-report=report.json", "-o", "promptpert_prefetch=no")
    result.assert_outcomes(passed=9)
    assert "prefetch" not in json.loads((suite.path / "report.json").read_text())["summary"]


# --- the manifest, without pytest -------------------------------------------------------------


def _request(text: str, **params: object) -> Request:
    return Request("openai/x", [{"role": "user", "content": text}], params)


def test_the_call_log_keeps_credentials_out():
    log = CallLog()
    secrets = Secrets(["sk-env-secret-123456"])
    log.add("t", "original", [_request("plain")], {"temperature": 0.5}, secrets)
    log.add("t", "original", [_request("keyed")], {"api_key": "sk-x"}, secrets)
    log.add("t", "original", [_request("url")], {"api_base": "http://u:p@h/v1"}, secrets)
    log.add("t", "original", [_request("has sk-env-secret-123456")], {}, secrets)
    log.add("t", "original", [_request("a class")], {"response_format": object}, secrets)
    log.add("t", "original", [_request("plain")], {"temperature": 0.5}, secrets)  # again
    assert log.entries == {
        "t": {
            "original": [
                {
                    "messages": [{"role": "user", "content": "plain"}],
                    "params": {"temperature": 0.5},
                    "sample": 0,
                }
            ]
        }
    }
    assert len(log.asked) == 5  # every key asked for counts, recorded or not


def test_the_manifest_text_round_trips_and_shares_calls_between_items():
    spec = {"messages": [{"role": "user", "content": "q"}], "params": {}, "sample": 0}
    other = {**spec, "sample": 1}
    entries = {"t": {"original": [spec], "add_period": [spec, other]}}
    text = dumps(entries)
    assert json.loads(text)["tests"]["t"]["items"] == {"add_period": [0, 1], "original": [0]}
    assert loads(text) == entries


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "is not a pytest-promptpert manifest"),
        ('{"format": "pytest-promptpert manifest", "version": 99}', "has version 99"),
        ('{"format": "pytest-promptpert manifest", "version": 1, "tests": []}', "is damaged"),
        (
            '{"format": "pytest-promptpert manifest", "version": 1,'
            ' "tests": {"t": {"calls": [], "items": {"original": [3]}}}}',
            "is damaged (the entry of 't'",
        ),
    ],
)
def test_a_foreign_or_damaged_manifest_is_refused_with_the_reason(text, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        loads(text)


def test_merge_replaces_everything_only_after_a_complete_run():
    old = {"gone": {"original": []}, "t": {"original": [], "add_period": []}}
    new = {"t": {"add_period": [{"messages": [], "params": {}, "sample": 0}]}}
    assert merge(old, new, complete=True) == new
    narrowed = merge(old, new, complete=False)
    assert narrowed["gone"] == {"original": []}
    assert narrowed["t"] == {"original": [], **new["t"]}


# --- the prefetcher, without pytest ----------------------------------------------------------


def test_the_prefetcher_starts_only_misses(provider, tmp_path, litellm_preloaded):
    with CachedLLM("openai/stable", cache_dir=tmp_path, api_base=provider.url) as client:
        client("q1")  # already cached
        requests = [client.request(f"q{i}") for i in range(1, 6)]
        prefetcher = Prefetcher(client, requests, window=2)
        prefetcher.start()
        prefetcher.join(timeout=30)
        called = prefetcher.finish()
    assert sorted(called) == sorted(r.key() for r in requests[1:])
    assert provider.prompts().count("q1") == 1
    assert provider.calls == 5
    assert provider.max_in_flight <= 2


def test_the_first_failed_prefetch_stops_the_prefetch(provider, tmp_path, litellm_preloaded):
    provider.faults = [500]
    with CachedLLM("openai/stable", cache_dir=tmp_path, api_base=provider.url, retries=0) as client:
        requests = [client.request(f"q{i}") for i in range(5)]
        prefetcher = Prefetcher(client, requests, window=1)
        prefetcher.start()
        prefetcher.join(timeout=30)
        assert prefetcher.finish() == {}
        assert prefetcher.stopped_by is not None
    assert len(provider.headers_seen) == 1  # the one failed call; nothing after it


def test_no_prefetch_where_pytest_recording_keeps_each_tests_calls(suite, provider):
    recorded = FIRST_RUN.replace(
        "import pytest\n", "import pytest\n\npytestmark = pytest.mark.vcr\n"
    )
    suite.makepyfile(test_suite=recorded)
    suite.runpytest("--record-mode=all").assert_outcomes(passed=9)
    _clear_cache(suite)
    provider.reset()
    result = suite.runpytest("--record-mode=all", "--promptpert-report=report.json")
    result.assert_outcomes(passed=9)
    assert "prefetch" not in json.loads((suite.path / "report.json").read_text())["summary"]
    cassettes = sorted((suite.path / "cassettes").rglob("*.yaml"))
    # Each test's three calls in the cassette of its first item, as without a manifest.
    assert [path.read_text().count("uri:") for path in cassettes] == [3, 3, 3]
