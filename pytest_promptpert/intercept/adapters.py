"""One small adapter per API shape: where the prompt is, what the answer is, how to replay it.

Each adapter knows, for its endpoint: the messages of a request body (for cache keys and
messages), how to rebuild the body with the last user text (or every text) changed, what to
compare in an answer (text, tool calls with parsed arguments) whole or streamed, and how to
write an answer in its shape (when a call is routed to another model).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..request import Message, PromptError
from . import sse

Transform = Callable[[str], str]
TEXT_PARTS = ("text", "input_text")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Any  # parsed JSON where the arguments are JSON, else the text

    def render(self) -> str:
        return f"{self.name}({json.dumps(self.arguments, sort_keys=True, ensure_ascii=False)})"


@dataclass(frozen=True)
class Answer:
    """What an answer says, whatever its shape: what comparisons and reports read."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def render(self) -> str:
        """The text, then one line per tool call: what reports and messages show."""
        lines = [self.text] if self.text else []
        lines += [f"-> {call.render()}" for call in self.tool_calls]
        return "\n".join(lines)


def _arguments(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _map_content(content: Any, transform: Transform, *, last_only: bool) -> Any:
    if isinstance(content, str):
        return transform(content)
    if isinstance(content, list):
        parts = [dict(p) if isinstance(p, dict) else p for p in content]
        indexes = [
            i for i, p in enumerate(parts) if isinstance(p, dict) and p.get("type") in TEXT_PARTS
        ]
        for i in indexes[-1:] if last_only else indexes:
            parts[i]["text"] = transform(str(parts[i].get("text", "")))
        return parts
    if last_only:
        raise PromptError(f"the last user message's content is not text: {content!r:.80}")
    return content


def _map_messages(messages: list[Any], transform: Transform, *, last_user_only: bool) -> list[Any]:
    out = [dict(m) if isinstance(m, dict) else m for m in messages]
    if not last_user_only:
        for message in out:
            if isinstance(message, dict) and "content" in message:
                message["content"] = _map_content(message["content"], transform, last_only=False)
        return out
    for message in reversed(out):
        if isinstance(message, dict) and message.get("role") == "user":
            message["content"] = _map_content(message.get("content"), transform, last_only=True)
            return out
    roles = [m.get("role") for m in out if isinstance(m, dict)]
    raise PromptError(
        f"the messages have no user message for the variant to change (roles: {roles})"
    )


class Adapter:
    """The OpenAI chat completions shape (``POST .../chat/completions``)."""

    name = "OpenAI chat completions"
    suffix = "/chat/completions"
    stream_events = True

    def matches(self, path: str) -> bool:
        return path.rstrip("/").endswith(self.suffix)

    # --- requests ------------------------------------------------------------------------

    def messages(self, body: dict[str, Any]) -> list[Message]:
        messages = body.get("messages")
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    def prompt_fields(self) -> tuple[str, ...]:
        """Body fields that hold the prompt (kept out of a key's other parameters)."""
        return ("messages",)

    def map_text(
        self, body: dict[str, Any], transform: Transform, *, last_user_only: bool
    ) -> dict[str, Any]:
        out = dict(body)
        out["messages"] = _map_messages(
            list(body.get("messages") or []), transform, last_user_only=last_user_only
        )
        return out

    # --- answers -------------------------------------------------------------------------

    def answer(self, body: bytes, content_type: str) -> Answer:
        if sse.is_stream(content_type):
            return self.answer_events(sse.parse(body))
        return self.answer_json(json.loads(body))

    def answer_json(self, data: dict[str, Any]) -> Answer:
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        calls = tuple(
            ToolCall(
                str((c.get("function") or {}).get("name", "")),
                _arguments((c.get("function") or {}).get("arguments")),
            )
            for c in message.get("tool_calls") or []
        )
        usage = data.get("usage") or {}
        return Answer(
            text=message.get("content") or "",
            tool_calls=calls,
            model=str(data.get("model", "")),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def answer_events(self, events: list[sse.Event]) -> Answer:
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        model, usage = "", dict[str, Any]()
        for _, data in events:
            if not isinstance(data, dict):
                continue
            model = str(data.get("model") or model)
            usage = data.get("usage") or usage
            for choice in data.get("choices") or []:
                delta = choice.get("delta") or {}
                text.append(delta.get("content") or "")
                for call in delta.get("tool_calls") or []:
                    slot = calls.setdefault(int(call.get("index", 0)), {"name": "", "args": ""})
                    function = call.get("function") or {}
                    slot["name"] += function.get("name") or ""
                    slot["args"] += function.get("arguments") or ""
        return Answer(
            text="".join(text),
            tool_calls=tuple(
                ToolCall(c["name"], _arguments(c["args"])) for _, c in sorted(calls.items())
            ),
            model=model,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    # --- writing answers (calls routed to another model) -----------------------------------

    def write(self, answer: Answer, *, stream: bool) -> tuple[str, bytes]:
        usage = {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        }
        head = {"id": "promptpert-routed", "created": int(time.time()), "model": answer.model}
        if not stream:
            message = {"role": "assistant", "content": answer.text}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            data = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            return "application/json", json.dumps(data).encode()
        chunk = {**head, "object": "chat.completion.chunk"}
        events: list[sse.Event] = [
            (None, {**chunk, "choices": [{"index": 0, "delta": d, "finish_reason": f}]})
            for d, f in (({"role": "assistant", "content": answer.text}, None), ({}, "stop"))
        ]
        events += [(None, {**chunk, "choices": [], "usage": usage}), (None, "[DONE]")]
        return "text/event-stream", sse.render(events)


class TextCompletions(Adapter):
    """The OpenAI (legacy) text completions shape (``POST .../completions``)."""

    name = "OpenAI text completions"
    suffix = "/completions"

    def matches(self, path: str) -> bool:
        path = path.rstrip("/")
        return path.endswith(self.suffix) and not path.endswith("/chat/completions")

    def messages(self, body: dict[str, Any]) -> list[Message]:
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = prompt[-1] if prompt else ""
        return [{"role": "user", "content": prompt if isinstance(prompt, str) else str(prompt)}]

    def prompt_fields(self) -> tuple[str, ...]:
        return ("prompt",)

    def map_text(
        self, body: dict[str, Any], transform: Transform, *, last_user_only: bool
    ) -> dict[str, Any]:
        out = dict(body)
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            out["prompt"] = transform(prompt)
        elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
            out["prompt"] = [*prompt[:-1], transform(prompt[-1])]
        elif last_user_only:
            raise PromptError(f"the prompt is not text: {prompt!r:.80}")
        return out

    def answer_json(self, data: dict[str, Any]) -> Answer:
        choice = (data.get("choices") or [{}])[0]
        usage = data.get("usage") or {}
        return Answer(
            text=choice.get("text") or "",
            model=str(data.get("model", "")),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def answer_events(self, events: list[sse.Event]) -> Answer:
        text, model = [], ""
        for _, data in events:
            if isinstance(data, dict):
                model = str(data.get("model") or model)
                text += [c.get("text") or "" for c in data.get("choices") or []]
        return Answer(text="".join(text), model=model)

    def write(self, answer: Answer, *, stream: bool) -> tuple[str, bytes]:
        head = {"id": "promptpert-routed", "created": int(time.time()), "model": answer.model}
        choice = {"index": 0, "text": answer.text, "finish_reason": "stop", "logprobs": None}
        if not stream:
            data = {**head, "object": "text_completion", "choices": [choice]}
            return "application/json", json.dumps(data).encode()
        events: list[sse.Event] = [
            (None, {**head, "object": "text_completion", "choices": [choice]})
        ]
        return "text/event-stream", sse.render([*events, (None, "[DONE]")])


class Responses(Adapter):
    """The OpenAI responses shape (``POST .../responses``)."""

    name = "OpenAI responses"
    suffix = "/responses"

    def messages(self, body: dict[str, Any]) -> list[Message]:
        given = body.get("input")
        if isinstance(given, str):
            return [{"role": "user", "content": given}]
        if isinstance(given, list):
            return [m for m in given if isinstance(m, dict)]
        return []

    def prompt_fields(self) -> tuple[str, ...]:
        return ("input",)

    def map_text(
        self, body: dict[str, Any], transform: Transform, *, last_user_only: bool
    ) -> dict[str, Any]:
        out = dict(body)
        given = body.get("input")
        if isinstance(given, str):
            out["input"] = transform(given)
        elif isinstance(given, list):
            out["input"] = _map_messages(given, transform, last_user_only=last_user_only)
        elif last_user_only:
            raise PromptError(f"the input is not text: {given!r:.80}")
        if not last_user_only and isinstance(body.get("instructions"), str):
            out["instructions"] = transform(body["instructions"])
        return out

    def answer_json(self, data: dict[str, Any]) -> Answer:
        text: list[str] = []
        calls: list[ToolCall] = []
        for item in data.get("output") or []:
            if item.get("type") == "message":
                text += [
                    str(p.get("text", ""))
                    for p in item.get("content") or []
                    if p.get("type") == "output_text"
                ]
            elif item.get("type") == "function_call":
                calls.append(ToolCall(str(item.get("name", "")), _arguments(item.get("arguments"))))
        usage = data.get("usage") or {}
        return Answer(
            text="".join(text),
            tool_calls=tuple(calls),
            model=str(data.get("model", "")),
            prompt_tokens=int(usage.get("input_tokens") or 0),
            completion_tokens=int(usage.get("output_tokens") or 0),
        )

    def answer_events(self, events: list[sse.Event]) -> Answer:
        for _, data in reversed(events):
            if isinstance(data, dict) and data.get("type") == "response.completed":
                return self.answer_json(data.get("response") or {})
        deltas = [
            str(d.get("delta", ""))
            for _, d in events
            if isinstance(d, dict) and d.get("type") == "response.output_text.delta"
        ]
        return Answer(text="".join(deltas))

    def write(self, answer: Answer, *, stream: bool) -> tuple[str, bytes]:
        content = [{"type": "output_text", "text": answer.text, "annotations": []}]
        message = {
            "type": "message",
            "id": "msg_promptpert",
            "status": "completed",
            "role": "assistant",
            "content": content,
        }
        data = {
            "id": "promptpert-routed",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": answer.model,
            "output": [message],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": answer.prompt_tokens,
                "output_tokens": answer.completion_tokens,
                "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            },
        }
        if not stream:
            return "application/json", json.dumps(data).encode()
        started = {**data, "status": "in_progress", "output": [], "usage": None}
        delta = {
            "type": "response.output_text.delta",
            "item_id": "msg_promptpert",
            "output_index": 0,
            "content_index": 0,
            "delta": answer.text,
        }
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            delta,
            {"type": "response.completed", "response": data},
        ]
        return "text/event-stream", sse.render(
            [(e["type"], {**e, "sequence_number": i}) for i, e in enumerate(events)]
        )


class AnthropicMessages(Adapter):
    """The Anthropic messages shape (``POST .../v1/messages``)."""

    name = "Anthropic messages"
    suffix = "/v1/messages"

    def prompt_fields(self) -> tuple[str, ...]:
        return ("messages",)

    def map_text(
        self, body: dict[str, Any], transform: Transform, *, last_user_only: bool
    ) -> dict[str, Any]:
        out = super().map_text(body, transform, last_user_only=last_user_only)
        if not last_user_only and "system" in body:
            out["system"] = _map_content(copy.deepcopy(body["system"]), transform, last_only=False)
        return out

    def answer_json(self, data: dict[str, Any]) -> Answer:
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in data.get("content") or []:
            if block.get("type") == "text":
                text.append(str(block.get("text", "")))
            elif block.get("type") == "tool_use":
                calls.append(ToolCall(str(block.get("name", "")), block.get("input")))
        usage = data.get("usage") or {}
        return Answer(
            text="".join(text),
            tool_calls=tuple(calls),
            model=str(data.get("model", "")),
            prompt_tokens=int(usage.get("input_tokens") or 0),
            completion_tokens=int(usage.get("output_tokens") or 0),
        )

    def answer_events(self, events: list[sse.Event]) -> Answer:
        blocks: dict[int, dict[str, Any]] = {}
        model, prompt_tokens, completion_tokens = "", 0, 0
        for _, data in events:
            if not isinstance(data, dict):
                continue
            kind = data.get("type")
            if kind == "message_start":
                message = data.get("message") or {}
                model = str(message.get("model", ""))
                prompt_tokens = int((message.get("usage") or {}).get("input_tokens") or 0)
            elif kind == "content_block_start":
                block = dict(data.get("content_block") or {})
                block["partial"] = ""
                blocks[int(data.get("index", 0))] = block
            elif kind == "content_block_delta":
                block = blocks.setdefault(int(data.get("index", 0)), {"type": "text", "text": ""})
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta":
                    block["text"] = str(block.get("text", "")) + str(delta.get("text", ""))
                elif delta.get("type") == "input_json_delta":
                    block["partial"] = block.get("partial", "") + str(delta.get("partial_json", ""))
            elif kind == "message_delta":
                completion_tokens = int((data.get("usage") or {}).get("output_tokens") or 0)
        content = []
        for _, block in sorted(blocks.items()):
            if block.get("type") == "tool_use" and block.get("partial"):
                block["input"] = _arguments(block["partial"])
            content.append(block)
        answer = self.answer_json({"content": content, "model": model})
        return Answer(answer.text, answer.tool_calls, model, prompt_tokens, completion_tokens)

    def write(self, answer: Answer, *, stream: bool) -> tuple[str, bytes]:
        data = {
            "id": "promptpert-routed",
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": [{"type": "text", "text": answer.text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": answer.prompt_tokens,
                "output_tokens": answer.completion_tokens,
            },
        }
        if not stream:
            return "application/json", json.dumps(data).encode()
        start = {**data, "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": answer.prompt_tokens, "output_tokens": 0}
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": start},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": answer.text},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": answer.completion_tokens},
            },
            {"type": "message_stop"},
        ]
        return "text/event-stream", sse.render([(e["type"], e) for e in events])


ADAPTERS: tuple[Adapter, ...] = (Adapter(), TextCompletions(), Responses(), AnthropicMessages())


def adapter_for(path: str) -> Adapter | None:
    for adapter in ADAPTERS:
        if adapter.matches(path):
            return adapter
    return None
