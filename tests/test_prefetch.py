"""Cross-test prefetch from the manifest of the last run (manifest.py, prefetch.py)."""

from __future__ import annotations

import json
from pathlib import Path

import fake_provider
import pytest
from conftest import SENTINEL_KEY
from fake_provider import FakeProvider

from pytest_promptpert.cli import main as promptpert_cli
from pytest_promptpert.manifest import MANIFEST_NAME, CallLog, dumps, load, loads, merge
from pytest_promptpert.redact import Secrets
from pytest_promptpert.request import Request

#: Three tests, each two variants; the first waits in its body until the provider has been
#: asked the last test's prompt, which only a cross-test prefetch asks before that test runs.
SUITE = """
import time

import fake_provider
import pytest


def seen_by_provider(prompt):
    deadline = time.monotonic() + 20  # a bound on a hang, not a timing assertion
    while time.monotonic() < deadline:
        if prompt in fake_provider.CURRENT.prompts():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.promptpert(variants=["add_period", "uppercase"])
def test_first(llm):
    assert seen_by_provider(LAST.upper())
    llm("what is the capital of France")


@pytest.mark.promptpert(variants=["add_period", "uppercase"])
def test_second(llm):
    llm("name three primary colours")


LAST = "who wrote moby dick"


@pytest.mark.promptpert(variants=["add_period", "uppercase"])
def test_third(llm):
    llm(LAST)
"""

#: The same tests without the wait: a first run, which has no manifest to prefetch from.
FIRST_RUN = SUITE.replace("    assert seen_by_provider(LAST.upper())\n", "")

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
    assert [c["messages"][-1]["content"] for c in entries["test_keyed.py::test_keyed"]["original"]] == [
        "a prompt sent plainly"
    ]


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
