"""``cached()``: a plain script's model calls (litellm, openai) cached with no pytest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import SENTINEL_KEY
from fake_provider import FakeProvider

from pytest_promptpert import cached

SCRIPT = """
import asyncio, json, sys
import litellm, openai
from pytest_promptpert import cached

URL = sys.argv[1]


@cached(cache_dir="cache")
async def summarize():
    client = openai.AsyncOpenAI(base_url=URL, max_retries=0)
    reply = await client.chat.completions.create(
        model="stable", messages=[{"role": "user", "content": "Summarize the report."}]
    )
    return reply.choices[0].message.content


with cached(cache_dir="cache") as llm:
    sdk = openai.OpenAI(base_url=URL, max_retries=0).chat.completions.create(
        model="period", messages=[{"role": "user", "content": "Make a sign."}]
    )
    via_litellm = litellm.completion(
        model="openai/case", api_base=URL, max_retries=0,
        messages=[{"role": "user", "content": "Say hello."}],
    )
    stats = llm.stats.as_dict()
print(json.dumps({
    "sdk": sdk.choices[0].message.content,
    "litellm": via_litellm.choices[0].message.content,
    "async": asyncio.run(summarize()),
    "calls": stats["calls"], "hits": stats["hits"],
}))
"""


def _run(tmp_path: Path, provider: FakeProvider) -> dict[str, object]:
    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    env = {**os.environ, "OPENAI_API_KEY": SENTINEL_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, str(script), provider.url],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_script_inside_cached_makes_no_call_on_its_second_run(
    provider: FakeProvider, tmp_path: Path
) -> None:
    first = _run(tmp_path, provider)
    assert provider.calls == 3  # the openai SDK (sync and async) and litellm, once each
    assert first["calls"] == 2 and first["hits"] == 0
    second = _run(tmp_path, provider)
    assert provider.calls == 3  # nothing new reached the provider
    assert {k: second[k] for k in ("sdk", "litellm", "async")} == {
        k: first[k] for k in ("sdk", "litellm", "async")
    }
    assert second["calls"] == 0 and second["hits"] == 2
    written = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert SENTINEL_KEY.encode() not in written


def test_replay_mode_makes_no_call_and_bad_modes_are_named(
    provider: FakeProvider, tmp_path: Path
) -> None:
    import openai

    client = openai.OpenAI(base_url=provider.url, max_retries=0)
    with cached(cache_dir=tmp_path / "c", mode="replay"), pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="stable", messages=[{"role": "user", "content": "never cached"}]
        )
    assert provider.calls == 0
    with pytest.raises(ValueError, match=r"cached\(mode='sometimes'\): not a cache mode"):
        cached(mode="sometimes")
