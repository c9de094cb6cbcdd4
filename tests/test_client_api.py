"""CachedLLM for pipelines: complete/acomplete, tool calls, map/amap, per-call cache modes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from fake_provider import FakeProvider

from pytest_promptpert import CachedLLM, CacheMissError, Completion

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "search the web",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


def client(
    provider: FakeProvider, tmp_path: Path, model: str = "stable", **kw: object
) -> CachedLLM:
    return CachedLLM(f"openai/{model}", api_base=provider.url, cache_dir=tmp_path / "c", **kw)  # type: ignore[arg-type]


def test_complete_returns_the_whole_answer_and_whether_it_was_cached(
    provider: FakeProvider, tmp_path: Path
) -> None:
    with client(provider, tmp_path) as llm:
        first = llm.complete("What is 6 x 7?")
        again = llm.complete("What is 6 x 7?")
    assert first.output == "The answer to 'what is 6 x 7' is forty-two."
    assert not first.cached and again.cached
    assert (first.prompt_tokens, first.completion_tokens) == (5, 10)  # the fake counts words
    assert first.tool_calls is None
    with client(provider, tmp_path) as llm:
        later = asyncio.run(llm.acomplete("What is 6 x 7?"))
    assert later.cached and later.output == first.output and later.tokens == 15
    assert provider.calls == 1


def test_tool_calls_come_back_and_survive_the_cache(provider: FakeProvider, tmp_path: Path) -> None:
    with client(provider, tmp_path, model="tools") as llm:
        called = llm.complete("refund order A17", tools=TOOLS)
    with client(provider, tmp_path, model="tools") as llm:
        cached = llm.complete("refund order A17", tools=TOOLS)
    assert provider.calls == 1 and cached.cached and not called.cached
    assert called.tool_calls is not None and len(called.tool_calls) == 1
    call = called.tool_calls[0]
    assert call["name"] == "search"
    assert json.loads(call["arguments"]) == {
        "order_id": "A17",
        "priority": "high",
        "note": "customer wants a refund",
    }
    assert cached.tool_calls == called.tool_calls


def test_an_entry_written_before_tool_calls_were_kept_still_reads() -> None:
    old = json.dumps({"output": "hi", "model": "m", "prompt_tokens": 1, "created": 5.0})
    completion = Completion.from_json(old)
    assert completion.output == "hi" and completion.tool_calls is None and completion.cached


def test_map_keeps_order_limits_concurrency_and_counts_progress(
    provider: FakeProvider, tmp_path: Path
) -> None:
    provider.latency = 0.05
    prompts = [f"question {i}" for i in range(6)] + ["question 0"]
    seen: list[tuple[int, int]] = []
    with client(provider, tmp_path, concurrency=2) as llm:
        answers = llm.map(prompts, progress=lambda done, total: seen.append((done, total)))
    assert [a.output for a in answers] == [
        f"The answer to 'question {i}' is forty-two." for i in [0, 1, 2, 3, 4, 5, 0]
    ]
    assert provider.calls == 6  # the repeated prompt shares its call
    assert provider.max_in_flight <= 2
    assert seen[-1] == (7, 7) and sorted(seen) == seen
    with client(provider, tmp_path, concurrency=2) as llm:
        again = asyncio.run(llm.amap(prompts, progress=False))
    assert [a.output for a in again] == [a.output for a in answers]
    assert all(a.cached for a in again) and provider.calls == 6


def test_map_errors_raise_or_take_their_prompts_place(
    provider: FakeProvider, tmp_path: Path
) -> None:
    with client(provider, tmp_path) as llm:
        llm("known")
    with client(provider, tmp_path, cache="replay") as llm:
        with pytest.raises(CacheMissError, match="'unknown'"):
            llm.map(["known", "unknown"])
        known, missing = llm.map(["known", "unknown"], return_exceptions=True)
    assert isinstance(known, Completion) and known.cached
    assert isinstance(missing, CacheMissError)
    assert provider.calls == 1


def test_cache_mode_per_call(provider: FakeProvider, tmp_path: Path) -> None:
    with client(provider, tmp_path, model="noisy") as llm:
        first = llm.complete("tell me")
    with client(provider, tmp_path, model="noisy") as llm:  # a later run
        assert llm.complete("tell me").output == first.output  # auto: from the cache
        fresh = llm.complete("tell me", cache="refresh")  # asks again, once in this run
        assert not fresh.cached and fresh.output != first.output
        assert llm.complete("tell me").output == fresh.output  # refresh wrote it
        assert llm.complete("tell me", cache="refresh").output == fresh.output
        uncached = llm.complete("tell me", cache="off")
        assert not uncached.cached and uncached.output != fresh.output
        assert llm.complete("tell me").output == fresh.output  # off wrote nothing
        with pytest.raises(CacheMissError):
            llm.complete("never asked", cache="replay")
        with pytest.raises(ValueError, match="cache='sometimes' is not a cache mode"):
            llm.complete("tell me", cache="sometimes")
    assert provider.calls == 3
