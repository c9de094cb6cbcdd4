"""CachedLLM against the fake provider over real HTTP: cache, modes, keys, concurrency, faults."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from conftest import SENTINEL_KEY
from fake_provider import FakeProvider

from pytest_promptpert import AuthenticationFailed, CachedLLM, CacheMissError, ProviderError


def client(
    provider: FakeProvider, tmp_path: Path, model: str = "stable", **kw: object
) -> CachedLLM:
    kw.setdefault("backoff", 0.01)
    return CachedLLM(f"openai/{model}", api_base=provider.url, cache_dir=tmp_path / "c", **kw)  # type: ignore[arg-type]


def test_second_call_is_answered_from_disk(provider: FakeProvider, tmp_path: Path) -> None:
    with client(provider, tmp_path) as llm:
        first = llm("What is 6 x 7?")
    with client(provider, tmp_path) as llm:
        second = llm("What is 6 x 7?")
        assert llm.stats.hits == 1 and llm.stats.calls == 0
    assert first == second == "The answer to 'what is 6 x 7' is forty-two."
    assert provider.calls == 1


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": 0.7},
        {"max_tokens": 5},
        {"seed": 3},
        {"stop": ["\n"]},
        {"top_p": 0.5},
        {"response_format": {"type": "json_object"}},
        {"api_base": "http://127.0.0.1:1/v1"},
    ],
    ids=lambda p: next(iter(p)),
)
def test_every_output_changing_param_is_in_the_key(
    tmp_path: Path, params: dict[str, object]
) -> None:
    llm = CachedLLM("openai/x", cache_dir=tmp_path)
    assert llm.request("hi").key() != llm.request("hi", **params).key()


def test_key_ignores_credentials_order_and_transport(tmp_path: Path) -> None:
    llm = CachedLLM("openai/x", cache_dir=tmp_path)
    base = llm.request("hi", temperature=0, max_tokens=3).key()
    assert llm.request("hi", max_tokens=3, temperature=0).key() == base
    assert llm.request("hi", temperature=0, max_tokens=3, api_key="sk-a", timeout=9).key() == base
    with_user = CachedLLM("openai/x", cache_dir=tmp_path, api_base="https://u:pw@h/v1")
    without = CachedLLM("openai/x", cache_dir=tmp_path, api_base="https://h/v1")
    assert with_user.request("hi").key() == without.request("hi").key()
    assert llm.request("hi", sample=1).key() != llm.request("hi").key()


def test_replay_miss_fails_naming_model_and_prompt_without_calling(
    provider: FakeProvider, tmp_path: Path
) -> None:
    with client(provider, tmp_path, cache="replay") as llm, pytest.raises(CacheMissError) as info:
        llm("Never asked before?")
    assert "openai/stable" in str(info.value)
    assert "'Never asked before?'" in str(info.value)
    assert provider.calls == 0


def test_refresh_calls_again_and_overwrites(provider: FakeProvider, tmp_path: Path) -> None:
    with client(provider, tmp_path, model="noisy") as llm:
        first = llm("tell me")
    with client(provider, tmp_path, model="noisy", cache="refresh") as llm:
        refreshed = llm("tell me")
        assert llm("tell me") == refreshed  # refreshed once per run, not once per ask
    with client(provider, tmp_path, model="noisy", cache="replay") as llm:
        assert llm("tell me") == refreshed
    assert refreshed != first
    assert provider.calls == 2


def test_off_neither_reads_nor_writes(provider: FakeProvider, tmp_path: Path) -> None:
    with client(provider, tmp_path, cache="off") as llm:
        llm("a")
        llm("a")  # one call: answers are shared within the run
    with client(provider, tmp_path, cache="off") as llm:
        llm("a")
    assert provider.calls == 2
    assert not (tmp_path / "c").exists()


def test_no_credential_reaches_the_cache(provider: FakeProvider, tmp_path: Path) -> None:
    host = provider.url.replace("http://", "http://admin:hunter2secret@")
    with CachedLLM("openai/stable", api_base=host, cache_dir=tmp_path / "c") as llm:
        llm("secret test", api_key=SENTINEL_KEY)
    assert provider.calls == 1
    blobs = b"".join(p.read_bytes() for p in (tmp_path / "c").rglob("*") if p.is_file())
    assert b"secret test" in blobs  # the entry is there...
    assert SENTINEL_KEY.encode() not in blobs  # ...without the key
    assert b"hunter2secret" not in blobs


def test_acall_shares_the_cache(provider: FakeProvider, tmp_path: Path) -> None:
    async def main(llm: CachedLLM) -> list[str]:
        return await asyncio.gather(*(llm.acall(f"q{i % 3}") for i in range(9)))

    with client(provider, tmp_path) as llm:
        answers = asyncio.run(main(llm))
        assert llm("q0") == answers[0]
    assert provider.calls == 3


def test_concurrent_asks_for_one_key_make_one_call(provider: FakeProvider, tmp_path: Path) -> None:
    provider.latency = 0.3
    results: list[str] = []
    with client(provider, tmp_path) as llm:
        threads = [threading.Thread(target=lambda: results.append(llm("same"))) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(set(results)) == 1 and len(results) == 6
    assert provider.calls == 1


def test_concurrency_bounds_calls_in_flight(provider: FakeProvider, tmp_path: Path) -> None:
    provider.latency = 0.2
    with client(provider, tmp_path, concurrency=3) as llm:
        llm.fetch_many([llm.request(f"p{i}") for i in range(9)])
    assert provider.calls == 9
    assert provider.max_in_flight == 3


def test_rate_limit_is_retried_honouring_retry_after(
    provider: FakeProvider, tmp_path: Path
) -> None:
    provider.faults = [429, 503]
    provider.retry_after = "0"
    with client(provider, tmp_path) as llm:
        assert llm("retry me") == "The answer to 'retry me' is forty-two."
        assert llm.stats.calls == 1 and llm.stats.errors == 0
    assert len(provider.headers_seen) == 3


def test_persistent_failure_is_a_provider_error_and_not_cached(
    provider: FakeProvider, tmp_path: Path
) -> None:
    provider.faults = [500] * 3
    with client(provider, tmp_path, retries=2) as llm, pytest.raises(ProviderError) as info:
        llm("doomed")
    assert info.value.status == 500
    assert "server trouble" in str(info.value)
    with client(provider, tmp_path) as llm:
        assert llm("doomed")  # not cached: called again, and now it works
    assert provider.calls == 1


def test_authentication_error_names_the_setting_not_the_key(
    provider: FakeProvider, tmp_path: Path
) -> None:
    provider.required_key = "sk-the-right-one"
    with client(provider, tmp_path) as llm, pytest.raises(AuthenticationFailed) as info:
        llm("let me in")
    message = str(info.value)
    assert "OPENAI_API_KEY" in message
    assert SENTINEL_KEY not in message
    assert len(provider.headers_seen) == 1  # not retried


@pytest.mark.parametrize("prompt", [None, 42, b"bytes", [{"content": "no role"}], []])
def test_bad_prompts_are_rejected_before_any_call(
    provider: FakeProvider, tmp_path: Path, prompt: object
) -> None:
    with client(provider, tmp_path) as llm, pytest.raises(TypeError, match="prompt"):
        llm(prompt)  # type: ignore[arg-type]
    assert provider.calls == 0


def test_authentication_failure_is_not_retried_for_every_request(
    provider: FakeProvider, tmp_path: Path
) -> None:
    provider.required_key = "sk-the-right-one"
    with client(provider, tmp_path) as llm:
        for prompt in ("one", "two", "three"):
            with pytest.raises(AuthenticationFailed):
                llm(prompt)
    assert len(provider.headers_seen) == 1


def test_secret_looking_params_stay_out_of_the_cache(
    provider: FakeProvider, tmp_path: Path
) -> None:
    with client(provider, tmp_path) as llm:
        llm(
            "hello",
            api_token="tok-aaaa-secret-1",
            extra_body={"key": "tok-bbbb-secret-2", "mode": "fast"},
        )
        assert "max_tokens" in llm.request("x", max_tokens=3).public()["params"]
    blobs = b"".join(p.read_bytes() for p in (tmp_path / "c").rglob("*") if p.is_file())
    assert b"tok-aaaa" not in blobs and b"tok-bbbb" not in blobs
    assert b"fast" in blobs  # the rest of extra_body does shape the key and the entry
