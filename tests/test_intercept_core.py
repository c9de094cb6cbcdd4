"""The interception core without pytest: adapters, structural comparison, the entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from fake_provider import FakeProvider

from pytest_promptpert import CachedLLM
from pytest_promptpert.intercept import (
    ADAPTERS,
    Answer,
    CallCache,
    Interception,
    ToolCall,
    adapter_for,
    intercepting,
    internal,
)
from pytest_promptpert.intercept.verdicts import tool_differences, value_metric
from pytest_promptpert.metrics import builtin_metrics


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_every_adapter_reads_back_what_it_writes(adapter, stream):
    answer = Answer("Forty-two, of course.", model="m", prompt_tokens=3, completion_tokens=4)
    content_type, body = adapter.write(answer, stream=stream)
    assert adapter.answer(body, content_type).text == answer.text


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/chat/completions", "OpenAI chat completions"),
        ("/openai/deployments/gpt/chat/completions", "OpenAI chat completions"),
        ("/v1/completions", "OpenAI text completions"),
        ("/v1/responses", "OpenAI responses"),
        ("/v1/messages", "Anthropic messages"),
        ("/v1/embeddings", None),
        ("/v1/messages/count_tokens", None),
    ],
)
def test_adapters_are_chosen_by_path(path, name):
    adapter = adapter_for(path)
    assert (adapter.name if adapter else None) == name


def test_only_the_last_user_text_is_perturbed_and_all_text_is_restored():
    _, _, responses, anthropic = ADAPTERS
    body = {
        "model": "m",
        "system": "Be brief",
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
    }
    upper = str.upper
    changed = anthropic.map_text(body, upper, last_user_only=True)
    assert changed["messages"][0]["content"] == "first"
    assert changed["messages"][2]["content"][0]["text"] == "SECOND"
    assert body["messages"][2]["content"][0]["text"] == "second"  # the app's body untouched
    everything = anthropic.map_text(body, upper, last_user_only=False)
    assert everything["system"] == "BE BRIEF"
    assert everything["messages"][1]["content"] == "OK"
    given = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}
    assert responses.map_text(given, upper, last_user_only=True)["input"][0]["content"][0] == {
        "type": "input_text",
        "text": "HI",
    }


def test_tool_call_differences_name_the_tool_and_the_argument():
    lookup = ToolCall("lookup", {"id": 7, "q": "parcel"})
    assert tool_differences([lookup], [ToolCall("escalate", {})]) == [
        "tools called: ['lookup'] vs ['escalate']"
    ]
    assert tool_differences([lookup], [ToolCall("lookup", {"id": 8, "q": "parcel"})]) == [
        "tool 'lookup' arguments differ: $.id: 7 vs 8"
    ]
    assert tool_differences([lookup], [ToolCall("lookup", {"q": "parcel", "id": 7})]) == []


def test_json_outputs_need_the_same_structure_and_similar_text():
    metric = value_metric(builtin_metrics()["levenshtein"], "levenshtein")
    a = json.dumps({"label": "billing", "urgent": True, "note": "refund asked"})
    assert metric(a, json.dumps({"note": "refund asked", "urgent": True, "label": "billing"})) == 1
    assert metric(a, json.dumps({"label": "billing", "urgent": False, "note": "refund asked"})) == 0
    assert (
        metric(a, json.dumps({"label": "technical", "urgent": True, "note": "refund asked"})) < 0.5
    )
    assert metric("", "") == 1.0


def _ask(provider: FakeProvider, text: str) -> str:
    reply = httpx2.post(
        f"{provider.url}/chat/completions",
        json={"model": "stable", "messages": [{"role": "user", "content": text}]},
    )
    return str(reply.json()["choices"][0]["message"]["content"])


def test_intercepting_without_pytest_caches_every_call(provider: FakeProvider, tmp_path: Path):
    original = httpx2.Client._transport_for_url
    client = CachedLLM("unused", cache_dir=tmp_path / "c")
    with intercepting(Interception(CallCache(client))):
        assert httpx2.Client._transport_for_url is not original
        first = _ask(provider, "Hello")
        assert _ask(provider, "Hello") == first
        with internal():  # the plugin's own calls go straight through
            _ask(provider, "Hello")
    assert httpx2.Client._transport_for_url is original
    assert provider.calls == 2
    assert client.stats.calls == 1  # and the repeat was a hit (each key counted once a run)
    client.close()
    replay = CachedLLM("unused", cache_dir=tmp_path / "c", cache="replay")
    with intercepting(Interception(CallCache(replay))):
        assert _ask(provider, "Hello") == first
        failed = httpx2.post(
            f"{provider.url}/chat/completions",
            json={"model": "stable", "messages": [{"role": "user", "content": "never asked"}]},
        )
    assert failed.status_code == 400
    assert "cache miss in replay mode" in failed.json()["error"]["message"]
    assert "'never asked'" in failed.json()["error"]["message"]
    assert provider.calls == 2
    replay.close()


def test_a_client_library_imported_inside_is_intercepted_and_none_is_imported_before(
    provider: FakeProvider,
):
    # A fresh interpreter: here httpx is imported already. The handler answers every request.
    script = f"""
import sys
from pytest_promptpert.intercept import Reply, intercepting

def flow(method, url, content):
    yield from ()
    return Reply(200, "application/json", b'{{"answered": "here"}}')

class Handler:
    def flow(self, method, url, content):
        return flow(method, url, content)

with intercepting(Handler()):
    print("imported before:", sorted(m for m in ("httpx", "httpx2") if m in sys.modules))
    import httpx
    print("answer:", httpx.post("{provider.url}/chat/completions", json={{}}).json())
print("after:", httpx.post("{provider.url}/chat/completions", json={{}}).status_code)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "imported before: []" in done.stdout
    assert "answer: {'answered': 'here'}" in done.stdout
    assert provider.calls == 1  # only the request made after interception ended went out
