"""What is sent to a model and what comes back, with a stable cache key."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .logprobs import Logprobs, logprobs_from_json
from .redact import public_params

Message = dict[str, Any]
Prompt = str | Sequence[Mapping[str, Any]]

#: Parameters that change how a call is made but never what it returns.
TRANSPORT_PARAMS = frozenset(
    {"timeout", "num_retries", "max_retries", "metadata", "stream", "mock_response", "caching"}
)
KEY_VERSION = 1


class PromptError(TypeError):
    """A prompt that is neither a string nor a list of chat messages."""


def to_messages(prompt: object) -> list[Message]:
    """A str becomes one user message; a list of ``{"role", "content"}`` dicts is checked."""
    if isinstance(prompt, str):
        check_text(prompt, "prompt")
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, (bytes, bytearray)) or not isinstance(prompt, Sequence):
        raise PromptError(
            f"prompt must be a str or a list of chat messages, not {type(prompt).__name__}:"
            f" {prompt!r:.80}"
        )
    messages: list[Message] = []
    for i, message in enumerate(prompt):
        if not isinstance(message, Mapping) or "role" not in message:
            raise PromptError(
                f"prompt[{i}] must be a dict with 'role' and 'content', not {message!r:.80}"
            )
        _check_content(message.get("content"), f"prompt[{i}]['content']", message["role"])
        messages.append(dict(message))
    if not messages:
        raise PromptError("prompt is an empty list of messages")
    return messages


def _check_content(content: object, where: str, role: object) -> None:
    """Text, or a list of content parts whose text parts are text; checked before sending."""
    if content is None and role != "user":
        return  # an assistant message that only calls tools
    if isinstance(content, str):
        check_text(content, where)
        return
    if not isinstance(content, list):
        raise PromptError(
            f"{where} must be a str or a list of content parts, not"
            f" {type(content).__name__}: {content!r:.80}"
        )
    for j, part in enumerate(content):
        if not isinstance(part, Mapping):
            raise PromptError(f"{where}[{j}] must be a dict content part, not {part!r:.80}")
        if part.get("type") == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise PromptError(
                    f"{where}[{j}]['text'] must be a str, not {type(text).__name__}: {text!r:.80}"
                )
            check_text(text, f"{where}[{j}]['text']")


def check_text(text: str, where: str) -> None:
    """*text* can be sent as UTF-8 (no lone surrogate), or a PromptError naming *where*."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PromptError(
            f"{where} holds {text[exc.start : exc.end]!r} at position {exc.start}, which is not"
            " valid Unicode text (a lone surrogate) and cannot be sent"
        ) from None


def last_user_index(messages: Sequence[Mapping[str, Any]]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return -1


def map_last_user_text(messages: list[Message], transform: Callable[[str], str]) -> list[Message]:
    """A copy of *messages* with *transform* applied to the last user message's text.

    Content given as a list of parts (text and images) has its last text part transformed.
    """
    i = last_user_index(messages)
    if i < 0:
        raise PromptError(
            "the messages have no user message for the variant to change"
            f" (roles: {[m.get('role') for m in messages]})"
        )
    out = [dict(m) for m in messages]
    content = out[i].get("content")
    if isinstance(content, str):
        out[i]["content"] = transform(content)
        check_text(out[i]["content"], "the changed user message")
    elif isinstance(content, list):
        parts = [dict(p) if isinstance(p, Mapping) else p for p in content]
        for j in range(len(parts) - 1, -1, -1):
            part = parts[j]
            if isinstance(part, dict) and part.get("type") == "text":
                part["text"] = transform(str(part.get("text", "")))
                break
        out[i]["content"] = parts
    else:
        raise PromptError(f"the last user message's content is not text: {content!r:.80}")
    return out


def map_all_text(messages: list[Message], transform: Callable[[str], str]) -> list[Message]:
    """A copy of *messages* with *transform* applied to every text content."""
    out = [dict(m) for m in messages]
    for message in out:
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = transform(content)
        elif isinstance(content, list):
            message["content"] = [
                {**p, "text": transform(str(p.get("text", "")))}
                if isinstance(p, Mapping) and p.get("type") == "text"
                else p
                for p in content
            ]
    return out


def prompt_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The last user message's text, for messages and reports."""
    i = last_user_index(messages)
    content = messages[i].get("content") if i >= 0 else messages[-1].get("content")
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p
        )
    return str(content)


def _canonical(value: Any, *, ascii: bool = False) -> str:
    return json.dumps(
        value, sort_keys=True, ensure_ascii=ascii, separators=(",", ":"), default=repr
    )


def key_of(public: Mapping[str, Any]) -> str:
    """The cache key of a request given as :meth:`Request.public` (as entries store it)."""
    payload = {"v": KEY_VERSION, **public}
    # surrogatepass: a prompt holding a lone surrogate still has a key (it fails to send).
    return hashlib.sha256(_canonical(payload).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, eq=False, repr=False)
class Request:
    """One model call. ``params`` may hold credentials; :meth:`key` and the repr never show them.

    A traceback shown with ``-l`` or kept in JUnit XML prints the requests in its frames, so
    the repr shows only what a cache entry would: no ``api_key``, no ``user:pass@``.
    """

    model: str
    messages: list[Message]
    params: Mapping[str, Any] = field(default_factory=dict)
    sample: int = 0
    #: "chat" (a completion) or "embedding" (the embedding of the last user message's text)
    kind: str = "chat"

    def public(self) -> dict[str, Any]:
        params = {k: v for k, v in public_params(self.params).items() if k not in TRANSPORT_PARAMS}
        public = {
            "model": self.model,
            "messages": self.messages,
            "params": params,
            "sample": self.sample,
        }
        if self.kind != "chat":  # chat requests keep the keys they had before kinds existed
            public["kind"] = self.kind
        return public

    def key(self) -> str:
        return key_of(self.public())

    def __repr__(self) -> str:
        public = self.public()
        return (
            f"Request(model={self.model!r}, prompt={self.prompt!r:.200},"
            f" params={public['params']!r}, sample={self.sample})"
        )

    @property
    def prompt(self) -> str:
        return prompt_text(self.messages)


@dataclass(frozen=True)
class Completion:
    """A model's answer and what a report needs about it."""

    output: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0
    cost: float = 0.0
    created: float = field(default_factory=time.time)
    #: the run that wrote it: lets ``refresh`` tell this run's answers from older ones
    run: str = ""
    #: log-probability of the best first token minus the second best's, when asked for
    margin: float | None = None
    #: each generated token's log-probability and best alternatives, when asked for and sent
    #: (``()``: sent for an answer with no token)
    logprobs: Logprobs | None = field(default=None, hash=False)
    cached: bool = field(default=False, compare=False)
    #: the tool calls the model made, each ``{"name": ..., "arguments": "<JSON text>"}``
    tool_calls: tuple[dict[str, Any], ...] | None = field(default=None, hash=False)
    #: an embedding request's vector
    embedding: tuple[float, ...] | None = field(default=None, hash=False)
    #: an intercepted call's HTTP answer as the application got it (status, content_type,
    #: body text), replayed on a hit; None for the plugin's own calls
    raw: dict[str, Any] | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_json(self, request: Request) -> str:
        data = asdict(self)
        data.pop("cached")
        for optional in ("tool_calls", "embedding", "logprobs"):
            if data[optional] is None:
                data.pop(optional)
        if self.logprobs is not None:
            data["logprobs"] = [position.as_json() for position in self.logprobs]
        data["request"] = request.public()
        # ASCII: any string the provider returned, lone surrogates included, can be stored.
        return _canonical(data, ascii=True)

    @classmethod
    def from_json(cls, text: str) -> Completion:
        data = json.loads(text)
        return cls(
            output=str(data["output"]),
            model=str(data.get("model", "")),
            prompt_tokens=int(data.get("prompt_tokens", 0)),
            completion_tokens=int(data.get("completion_tokens", 0)),
            latency=float(data.get("latency", 0.0)),
            cost=float(data.get("cost", 0.0)),
            run=str(data.get("run", "")),
            created=float(data.get("created", 0.0)),
            margin=None if data.get("margin") is None else float(data["margin"]),
            cached=True,
            # Entries written before these fields existed have neither.
            tool_calls=_tool_calls(data.get("tool_calls")),
            embedding=_vector(data.get("embedding")),
            logprobs=logprobs_from_json(data.get("logprobs")),
            raw=data["raw"] if isinstance(data.get("raw"), dict) else None,
        )


def _tool_calls(value: Any) -> tuple[dict[str, Any], ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(
        {"name": str(c.get("name", "")), "arguments": c.get("arguments", "")}
        for c in value
        if isinstance(c, dict)
    )


def _vector(value: Any) -> tuple[float, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(float(x) for x in value)
