"""Intercepted calls answered through the run's cache: the same cache, modes and statistics as
the ``llm`` fixture's, keyed on the canonical request the application sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..redact import redact_url
from ..request import Completion, Message, Request
from .adapters import Adapter, Answer
from .transport import Blocking, Reply, Send, Step

if TYPE_CHECKING:
    from ..client import CachedLLM

#: Parameters an application's call keeps when it is routed to another model (route = model).
_ROUTED_PARAMS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "stop_sequences": "stop",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "max_output_tokens": "max_tokens",
}


@dataclass(frozen=True)
class Call:
    """One request the application made, as understood by its adapter."""

    adapter: Adapter
    method: str
    url: str  # as sent: may hold a key in its query, so only redacted forms are ever kept
    body: dict[str, Any]

    @property
    def endpoint(self) -> str:
        return f"{self.method} {redact_url(self.url)}"

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def request(self, body: dict[str, Any], sample: int = 0) -> Request:
        """The cache's view of *body*: model, messages, every other field, the endpoint."""
        skip = ("model", *self.adapter.prompt_fields())
        params = {k: v for k, v in body.items() if k not in skip}
        params["http"] = {"endpoint": self.endpoint, "stream": bool(body.get("stream"))}
        return Request(
            model=str(body.get("model") or redact_url(self.url)),
            messages=self.adapter.messages(body),
            params=params,
            sample=sample,
        )

    def content(self, body: dict[str, Any]) -> bytes | None:
        """What to send for *body*: None (the application's own bytes) when it is unchanged."""
        return None if body == self.body else json.dumps(body).encode("utf-8")


@dataclass(frozen=True)
class Fetched:
    """One answer to a call: what goes back to the application, and what it says."""

    request: Request
    reply: Reply
    answer: Answer | None  # None: an error status, or a body the adapter could not read
    completion: Completion | None
    called: bool


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return "" if content is None else json.dumps(content)


def chat_messages(call: Call, body: dict[str, Any]) -> list[Message]:
    """*body*'s conversation as plain-text chat messages (for a call routed to another model)."""
    messages: list[Message] = []
    for field in ("system", "instructions"):
        if body.get(field):
            messages.append({"role": "system", "content": _text(body[field])})
    for message in call.adapter.messages(body):
        if "role" in message:
            messages.append({"role": message["role"], "content": _text(message.get("content"))})
    return messages


class CallCache:
    """Answers :class:`Call` s from the cache, or by making them (where the app sent them, or
    through the run's client to its configured model with ``route = "model"``)."""

    def __init__(self, client: CachedLLM, *, route: str = "app") -> None:
        self.client = client
        self.route = route
        self._memo: dict[str, Completion] = {}  # cache mode "off": this run's answers

    def fetch(
        self, call: Call, body: dict[str, Any], sample: int = 0
    ) -> Generator[Step, Any, Fetched]:
        if self.route == "model":
            return (yield from self._routed(call, body, sample))
        request = call.request(body, sample)
        found = self._lookup(request)
        if found is not None:
            return self._replayed(call, request, found)
        cache = self.client.cache
        with cache.lock(request):
            found = self._lookup(request, again=True)
            if found is not None:
                return self._replayed(call, request, found)
            started = time.perf_counter()
            reply: Reply = yield Send(call.content(body))
            latency = time.perf_counter() - started
            answer = _answer(call.adapter, reply)
            if answer is None:
                return Fetched(request, reply, None, None, called=True)
            completion = Completion(
                output=answer.render(),
                model=answer.model or request.model,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
                latency=latency,
                run=self.client.run_id,
                raw={
                    "status": reply.status,
                    "content_type": reply.content_type,
                    "body": reply.body.decode("utf-8", "replace"),
                },
            )
            if cache.mode == "off":
                self._memo[request.key()] = completion
            cache.set(request, completion)
        self.client.tally(request, completion, called=True)
        return Fetched(request, reply, answer, completion, called=True)

    def _lookup(self, request: Request, *, again: bool = False) -> Completion | None:
        from ..client import CacheMissError, Planned

        cache = self.client.cache
        if cache.mode == "off":
            found = self._memo.get(request.key())
        elif cache.mode == "refresh":
            found = cache.read(request)
            found = found if found is not None and found.run == self.client.run_id else None
        else:
            found = cache.get(request)
        if found is not None and found.raw is not None:
            self.client.tally(request, found, called=False)
            return found
        if not again and cache.mode == "replay":
            self.client.tally(request, None, called=False)
            raise CacheMissError(request)
        if not again and self.client.planning:
            self.client.tally(request, None, called=False)
            raise Planned(request)
        return None

    def _replayed(self, call: Call, request: Request, found: Completion) -> Fetched:
        raw = found.raw or {}
        reply = Reply(
            status=int(raw.get("status", 200)),
            content_type=str(raw.get("content_type", "application/json")),
            body=str(raw.get("body", "")).encode("utf-8"),
            headers=(("x-promptpert-cache", "hit"),),
        )
        return Fetched(request, reply, _answer(call.adapter, reply), found, called=False)

    def _routed(
        self, call: Call, body: dict[str, Any], sample: int
    ) -> Generator[Step, Any, Fetched]:
        """Ask the run's configured model instead, and answer in the application's shape."""
        client = self.client
        params: dict[str, Any] = {
            ours: body[theirs] for theirs, ours in _ROUTED_PARAMS.items() if theirs in body
        }
        if client.defaults.get("api_base"):
            params["api_base"] = client.defaults["api_base"]
        request = Request(client.model, chat_messages(call, body), params, sample)
        completion: Completion = yield Blocking(lambda: client.fetch(request))
        called = client.claim_call(request)
        answer = Answer(
            text=completion.output,
            model=completion.model,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )
        content_type, data = call.adapter.write(answer, stream=bool(body.get("stream")))
        reply = Reply(200, content_type, data, (("x-promptpert-route", "model"),))
        return Fetched(request, reply, answer, completion, called=called)


def _answer(adapter: Adapter, reply: Reply) -> Answer | None:
    if not 200 <= reply.status < 300:
        return None
    try:
        return adapter.answer(reply.body, reply.content_type)
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
