"""End-to-end: marked tests whose application calls the model itself, through the real
``openai``, ``anthropic`` and ``litellm`` packages, against the fake provider on loopback."""

from __future__ import annotations

import json

import pytest
from conftest import SENTINEL_KEY

APP = """
import os

import anthropic
import litellm
import openai

BASE = os.environ["FAKE_BASE"]  # http://127.0.0.1:PORT/v1
ROOT = BASE.removesuffix("/v1")
# Module-level clients, built before any test starts.
OPENAI = openai.OpenAI(base_url=BASE)
AOPENAI = openai.AsyncOpenAI(base_url=BASE)
ANTHROPIC = anthropic.Anthropic(base_url=ROOT, api_key=os.environ["OPENAI_API_KEY"])
AANTHROPIC = anthropic.AsyncAnthropic(base_url=ROOT, api_key=os.environ["OPENAI_API_KEY"])
TOOLS = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "escalate", "parameters": {"type": "object"}}},
]


def chat(text, model="case", **kw):
    messages = [{"role": "user", "content": text}]
    r = OPENAI.chat.completions.create(model=model, messages=messages, **kw)
    return r.choices[0].message.content


def chat_stream(text, model="case"):
    chunks = OPENAI.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def tool(text, model="case"):
    r = OPENAI.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], tools=TOOLS
    )
    return r.choices[0].message.tool_calls[0].function.name


def responses(text, model="case", stream=False):
    if stream:
        events = OPENAI.responses.create(model=model, input=text, stream=True)
        return "".join(e.delta for e in events if e.type == "response.output_text.delta")
    return OPENAI.responses.create(model=model, input=text).output_text


def claude(text, model="case", stream=False):
    if stream:
        with ANTHROPIC.messages.stream(
            model=model, max_tokens=50, messages=[{"role": "user", "content": text}]
        ) as s:
            return s.get_final_text()
    m = ANTHROPIC.messages.create(
        model=model, max_tokens=50, messages=[{"role": "user", "content": text}]
    )
    return m.content[0].text


async def achat(text, model="case", stream=False):
    if stream:
        chunks = await AOPENAI.chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    r = await AOPENAI.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}]
    )
    return r.choices[0].message.content


async def aclaude(text, model="case"):
    m = await AANTHROPIC.messages.create(
        model=model, max_tokens=50, messages=[{"role": "user", "content": text}]
    )
    return m.content[0].text


def via_litellm(text, model="case"):
    r = litellm.completion(
        model=f"openai/{model}", api_base=BASE, messages=[{"role": "user", "content": text}]
    )
    return r.choices[0].message.content


async def via_alitellm(text, model="case"):
    r = await litellm.acompletion(
        model=f"openai/{model}", api_base=BASE, messages=[{"role": "user", "content": text}]
    )
    return r.choices[0].message.content
"""


@pytest.fixture
def app(project, provider, monkeypatch):
    """A project with the application module ``app.py`` and the plugin pointed at the fake."""
    monkeypatch.setenv("FAKE_BASE", provider.url)

    def make(model: str = "case", **settings: object) -> pytest.Pytester:
        pytester = project(model, **settings)
        pytester.makepyfile(app=APP)
        pytester.syspathinsert()
        return pytester

    return make


def test_marker_alone_perturbs_and_compares_openai_sdk_calls(app, provider):
    pytester = app()
    pytester.makepyfile(
        """
        import pytest
        from app import chat

        @pytest.mark.promptpert(variants=["lower_first", "add_period"])
        def test_answer():
            assert chat("What is the refund policy")
        """
    )
    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "*test_answer[[]original[]] PASSED*",
            "*test_answer[[]lower_first[]] FAILED*",
            "*test_answer[[]add_period[]] PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*variant 'lower_first' changed the model's behaviour*",
            "*in: OpenAI chat completions, POST http://127.0.0.1:*/v1/chat/completions",
            "*original prompt: 'What is the refund policy'",
            "*variant prompt:  'what is the refund policy'",
            "*original output: 'A careful answer about what is the refund policy.'",
            "*variant output:  'zzz qqq xxx'",
        ]
    )
    assert sorted(provider.prompts()) == sorted(
        ["What is the refund policy", "what is the refund policy", "What is the refund policy."]
    )
    rerun = pytester.runpytest("-p", "no:randomly")
    rerun.assert_outcomes(passed=2, failed=1)
    assert provider.calls == 3  # the rerun made no call


EVERY_SDK = """
import asyncio

import pytest
import app

VARIANTS = ["lower_first", "add_period"]
Q = "What is the refund policy"


@pytest.mark.promptpert(variants=VARIANTS)
@pytest.mark.parametrize(
    "ask",
    [
        app.chat_stream,
        app.responses,
        lambda q: app.responses(q, stream=True),
        app.claude,
        lambda q: app.claude(q, stream=True),
        lambda q: asyncio.run(app.achat(q)),
        lambda q: asyncio.run(app.achat(q, stream=True)),
        lambda q: asyncio.run(app.aclaude(q)),
        app.via_litellm,
        lambda q: asyncio.run(app.via_alitellm(q)),
    ],
    ids=[
        "chat_stream", "responses", "responses_stream", "claude", "claude_stream", "achat",
        "achat_stream", "aclaude", "litellm", "alitellm",
    ],
)
def test_sdk(ask):
    assert "answer" in ask(Q) or ask(Q)


@pytest.mark.promptpert(variants=VARIANTS)
@pytest.mark.anyio
async def test_async_test_function():
    assert await app.achat(Q)


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


def test_every_sdk_sync_async_and_streamed(app, provider):
    pytester = app()
    pytester.makepyfile(test_every=EVERY_SDK)
    result = pytester.runpytest("-v", "-p", "no:randomly")
    ids = [
        "chat_stream",
        "responses",
        "responses_stream",
        "claude",
        "claude_stream",
        "achat",
        "achat_stream",
        "aclaude",
        "litellm",
        "alitellm",
    ]
    for name in ids:
        result.stdout.fnmatch_lines(
            [
                f"*test_sdk[[]{name}-original[]] PASSED*",
                f"*test_sdk[[]{name}-lower_first[]] FAILED*",
                f"*test_sdk[[]{name}-add_period[]] PASSED*",
            ]
        )
    result.stdout.fnmatch_lines(
        [
            "*test_async_test_function[[]original[]] PASSED*",
            "*test_async_test_function[[]lower_first[]] FAILED*",
            "*test_async_test_function[[]add_period[]] PASSED*",
        ]
    )
    result.assert_outcomes(passed=22, failed=11)
    calls = provider.calls
    assert calls > 0
    rerun = pytester.runpytest("-p", "no:randomly", "--promptpert-cache=replay")
    rerun.assert_outcomes(passed=22, failed=11)
    assert provider.calls == calls  # the rerun made no call


def test_tool_calls_and_json_outputs_are_compared_by_structure(app, provider):
    pytester = app()
    pytester.makepyfile(
        """
        import json
        import pytest
        from app import chat, tool

        @pytest.mark.promptpert(variants=["lower_first"])
        def test_tool():
            assert tool("Where is my parcel") in ("lookup", "escalate")

        @pytest.mark.promptpert(variants=["lower_first", "add_period"])
        def test_json():
            out = chat("Where is my parcel", response_format={"type": "json_object"})
            assert "answer" in json.loads(out)
        """
    )
    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*variant 'lower_first' changed the model's behaviour*",
            "*differs: tools called: [[]'lookup'[]] vs [[]'escalate'[]]",
            "*original output: '-> lookup({*query*: *careful answer about where is my parcel.*})'",
        ]
    )
    result.stdout.fnmatch_lines(["*test_json[[]add_period[]] PASSED*"])


def test_calls_keep_the_applications_own_parameters(app, provider):
    pytester = app(temperature=0.7, max_tokens=5)
    pytester.makepyfile(
        """
        import pytest
        from app import chat

        @pytest.mark.promptpert(variants=["add_period"])
        def test_answer():
            chat("Summarise this")
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    bodies = [r["body"] for r in provider.requests]
    assert len(bodies) == 2
    assert all("temperature" not in b and "max_tokens" not in b for b in bodies)


def test_nothing_compared_is_not_a_pass(app, provider):
    pytester = app()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["add_period"])
        def test_no_model_call():
            assert 1 + 1 == 2
        """
    )
    result = pytester.runpytest("-rs", "--promptpert-report=report.json")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*nothing compared: the test made no model call the plugin could see*"]
    )
    report = json.loads((pytester.path / "report.json").read_text())
    assert [r["outcome"] for r in report["results"] if r["variant"] != "original"] == ["skipped"]
    fatal = pytester.runpytest("-W", "error::pytest.PytestWarning")
    fatal.assert_outcomes(passed=1, failed=1)
    fatal.stdout.fnmatch_lines(["*NothingComparedWarning*nothing compared*"])


def test_markers_that_cannot_be_honoured_are_warned_about(app):
    pytester = app()
    pytester.makepyfile(
        """
        import unittest
        import pytest

        class TestOld(unittest.TestCase):
            @pytest.mark.promptpert
            def test_case(self):
                pass

        @pytest.mark.parametrize("q", [pytest.param("x", marks=pytest.mark.promptpert)])
        def test_param(q):
            pass

        @pytest.fixture
        def llm():
            return lambda prompt: "mine"

        @pytest.mark.promptpert(variants=["add_period"])
        def test_shadowed(llm):
            llm("hi")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "*MarkerIgnoredWarning*test_case*ignored on unittest.TestCase methods*",
            "*MarkerIgnoredWarning*test_param*pytest.param*",
            "*MarkerIgnoredWarning*test_shadowed*shadows pytest-promptpert's llm fixture*",
        ]
    )


def test_intercept_all_caches_unmarked_tests_and_replay_needs_no_network(
    app, provider, monkeypatch
):
    pytester = app(intercept="all")
    pytester.makepyfile(
        """
        import os
        from app import chat, claude

        def test_plain():
            assert chat(os.environ.get("Q", "hello")) == claude("hello")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert provider.calls == 2
    pytester.runpytest("--promptpert-cache=replay").assert_outcomes(passed=1)
    assert provider.calls == 2
    os_q = "a question never asked"
    monkeypatch.setenv("Q", os_q)
    result = pytester.runpytest("--promptpert-cache=replay")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"*CacheMissError: cache miss in replay mode: no cached answer for model 'case'**{os_q}*"]
    )
    assert provider.calls == 2


def test_marked_mode_leaves_unmarked_tests_alone(app, provider):
    pytester = app()
    pytester.makepyfile(
        """
        from app import chat

        def test_plain():
            chat("hello")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)
    assert provider.calls == 2  # not cached: interception is for marked tests only


def test_observe_compares_the_applications_result(app, provider):
    pytester = app("stable")
    pytester.makepyfile(
        classify="""
        from app import chat

        def classify(ticket):
            # A case-sensitive guardrail: never reaches the model for lower-case refunds.
            if ticket.startswith("refund"):
                return {"label": "billing", "by": "rule"}
            return {"label": "billing", "by": chat(ticket, model="stable")[:3]}
        """,
        test_classify="""
        import pytest
        from classify import classify

        @pytest.mark.promptpert(variants=["upper_first", "add_period"])
        def test_classify(promptpert):
            result = classify(promptpert.perturb("refund my order"))
            promptpert.observe(result)
            assert result["label"] == "billing"
        """,
    )
    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "*test_classify[[]original[]] PASSED*",
            "*test_classify[[]upper_first[]] FAILED*",
            "*test_classify[[]add_period[]] PASSED*",
            "*variant 'upper_first' changed the application's result*",
            "*in: observe #1",
        ]
    )
    # Run alone, the variant reaches the same verdict from the original's recorded result.
    alone = pytester.runpytest("-v", "-k", "upper_first")
    alone.assert_outcomes(failed=1, deselected=2)


def test_route_model_sends_intercepted_calls_to_the_configured_model(app, provider):
    pytester = app("case", route="model")
    pytester.makepyfile(
        """
        import openai
        import pytest

        # The application's own endpoint is dead: only the configured model can answer.
        DEAD = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0)

        @pytest.mark.promptpert(variants=["lower_first", "add_period"])
        def test_answer():
            r = DEAD.chat.completions.create(
                model="gpt-something", messages=[{"role": "user", "content": "Hello there"}]
            )
            assert r.choices[0].message.content
        """
    )
    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "*test_answer[[]original[]] PASSED*",
            "*test_answer[[]lower_first[]] FAILED*",
            "*test_answer[[]add_period[]] PASSED*",
        ]
    )
    assert {r["model"] for r in provider.requests} == {"case"}


def test_own_calls_are_not_intercepted_twice_and_no_secret_is_written(app, provider, tmp_path):
    pytester = app()
    pytester.makepyfile(
        """
        import pytest
        from app import chat, claude

        @pytest.mark.promptpert(variants=["lower_first"])
        def test_both(llm):
            llm("Hello from the fixture")
            chat("Hello from the app")
            claude("Hello from claude")
        """
    )
    result = pytester.runpytest("--promptpert-report=r.json", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    assert provider.calls == 6
    summary = json.loads((pytester.path / "r.json").read_text())["summary"]
    assert summary["calls"] == 6
    written = b"".join(
        p.read_bytes() for p in pytester.path.rglob("*") if p.is_file() and ".py" not in p.name
    )
    assert b"Hello from claude" in written
    assert SENTINEL_KEY.encode() not in written
    assert SENTINEL_KEY not in result.stdout.str()


def test_unknown_endpoints_go_through_and_are_named_once(app, provider):
    pytester = app()
    pytester.makepyfile(
        """
        import os
        import httpx2
        import pytest
        from app import chat

        @pytest.mark.promptpert(variants=["lower_first"])
        def test_embed():
            for _ in range(2):
                url = os.environ["FAKE_BASE"] + "/embeddings"
                httpx2.post(url, json={"model": "e", "input": "x"})
            chat("Hello")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert text.count("does not understand model calls to POST http://127.0.0.1:") == 1
    assert "/v1/embeddings" in text


def test_xdist(app, provider):
    pytester = app()
    pytester.makepyfile(
        """
        import pytest
        from app import chat

        @pytest.mark.promptpert(variants=["lower_first", "add_period", "uppercase"])
        @pytest.mark.parametrize("q", ["What is up", "Who is there"])
        def test_answer(q):
            chat(q)
        """
    )
    result = pytester.runpytest("-n", "2")
    result.assert_outcomes(passed=6, failed=2)
    assert provider.calls == 8  # one call per distinct prompt across both workers


def test_a_cached_intercepted_run_does_not_import_litellm(project, provider, monkeypatch):
    monkeypatch.setenv("FAKE_BASE", provider.url)
    pytester = project("case")
    pytester.makepyfile(
        """
        import os
        import sys
        import openai
        import pytest

        @pytest.mark.promptpert(variants=["lower_first"])
        def test_answer():
            client = openai.OpenAI(base_url=os.environ["FAKE_BASE"])
            client.chat.completions.create(
                model="case", messages=[{"role": "user", "content": "Hello there"}]
            )

        def test_zz_litellm_is_not_imported():
            print("litellm imported:", "litellm" in sys.modules)
        """
    )
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2, failed=1)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-s")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*litellm imported: False*"])
    assert provider.calls == 2
