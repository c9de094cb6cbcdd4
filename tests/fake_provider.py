"""A small OpenAI-compatible server on 127.0.0.1 with scripted, formatting-sensitive answers.

The model name picks the behaviour:

- ``stable``: answers the same whatever the formatting (case, punctuation, whitespace folded);
- ``period``: answers very differently when the prompt ends with a period;
- ``case``: answers very differently when the prompt's first letter is lower-case;
- ``echo``: answers with the prompt itself;
- ``noisy``: a sampled model, seeded: the answer is a function of the prompt and the request's
  ``seed`` (when the body has none, of how many identical requests came before it since the
  last ``reset()``), so samples of one prompt differ from each other, all alike in content;
- ``label``: "Label: positive" and an explanation whose wording depends on the final period;
  "Label: negative" when the first letter is lower-case; no label at all when upper-case;
- ``reword``: the same answer in other words when the prompt ends with a period ("Paris." /
  "The capital of France is Paris."), "I do not know." when the first letter is lower-case;
- ``tools``: with ``tools`` in the request, a tool call (the first tool; its arguments' key
  order and wording change with the final period; the second tool when the first letter is
  lower-case; ``priority`` "low" when upper-case); with ``response_format``, JSON content that
  changes the same way (and is not JSON when upper-case); else text;
- ``judge``: reads the judge question (``<answer_a>``, ``<answer_b>``) and answers JSON
  ``{"same": ..., "reason": ...}``: the same when one answer's words are a subset of the other's;
- ``flaky``: a nondeterministic provider: each time the server sees the same prompt again it
  answers with another of a few unrelated sentences (which one depends on the prompt's exact
  text), so the ``control`` variant fails and every variant diverges.

Asked for log-probabilities (chat: ``"logprobs": true, "top_logprobs": n``), every model
answers with at most ``max_tokens`` word pieces and, for each, its log-probability and the
best ``n`` tokens there (itself first, then made-up alternatives ``FAKE_ALTERNATIVES``). The
numbers are a function of the prompt's form (:func:`unease`): a well-formed prompt gets a
confident answer, a missing final punctuation mark, a lower-case first letter or trailing
whitespace make the same answer less likely. ``server.logprobs = False`` makes the server
ignore the request for them, as many providers do; ``"refuse"`` answers it with HTTP 400.

``POST /v1/embeddings`` answers any model with a bag-of-words vector (hashed words, 32
dimensions): texts with the same words get the same vector, texts with no word in common are
orthogonal.

Besides ``/chat/completions`` and ``/completions`` it speaks the OpenAI ``/responses`` and the
Anthropic ``/v1/messages`` shapes, each as JSON or, with ``"stream": true``, as server-sent
events. With ``tools`` in the request it answers with a call of the first tool (arguments
``{"query": <the answer>}``), or of the last tool where the model's rule says the prompt is
"bad" (``period`` without a period, ``case`` with a lower-case first letter). With a JSON
response format it answers ``{"answer": <the answer>}``.

Faults are scripted per test: ``server.faults`` is a list consumed one per request, each an
HTTP status (answered with ``Retry-After`` when ``server.retry_after`` is set) or ``"drop"``
(the connection is closed without an answer). ``server.latency`` delays every answer.
More fault kinds, for hostile-input tests:

- ``"drip"``: a good answer, sent one byte every ``server.drip_interval`` seconds;
- ``"malformed"``: HTTP 200 with a body that is not JSON;
- ``"empty_choices"``: HTTP 200 with ``"choices": []``;
- ``"surrogate"``: an answer holding a lone surrogate (``"\\ud83d"`` in the JSON);
- ``"nonstring"``: an answer whose content is a number;
- ``"echo_key"``: HTTP 500 whose body repeats the request's ``Authorization`` header.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_DRAWS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _last_user(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


#: Sentences with no word in common, so any two of them score far below any threshold.
FLAKY_ANSWERS = (
    "Paris is the capital of France.",
    "Certainly not; ask someone else tomorrow morning!",
    "Eleven green bottles hanging upon walls",
    "zzz qqq xxx www",
    "<start_of_image>",
)


#: The made-up alternatives a logprobs answer lists after the chosen token.
FAKE_ALTERNATIVES = (" maybe", " perhaps", " hmm", " well", " so")


def unease(prompt: str) -> float:
    """How far *prompt* is from a well-formed question: 0 for ``Is it?``-like prompts."""
    value = 0.0 if prompt.rstrip().endswith((".", "?", "!")) else 1.5
    value += 1.0 if _first_letter(prompt).islower() else 0.0
    return value + (0.5 if prompt != prompt.rstrip() else 0.0)


def token_logprobs(prompt: str, pieces: list[str], top: int) -> list[dict[str, Any]]:
    """OpenAI chat ``logprobs.content`` for *pieces*: the first three pieces are as likely as
    the prompt is well formed (:func:`unease`), the rest nearly certain; the chosen piece is
    always the most likely, and the probabilities add up to less than 1."""
    content = []
    for i, piece in enumerate(pieces):
        p = 0.95 / (1 + unease(prompt)) if i < 3 else 0.95
        rest = min(0.8 * p, 1 - p)
        others = [t for t in FAKE_ALTERNATIVES if t != piece][: max(0, top - 1)]
        ranked = [(piece, p)] + [(t, rest * 0.5 ** (j + 1)) for j, t in enumerate(others)]
        entries = [{"token": t, "logprob": round(math.log(q), 6), "bytes": None} for t, q in ranked]
        content.append({**entries[0], "top_logprobs": entries[:top]})
    return content


def is_bad(model: str, prompt: str) -> bool:
    """Whether *model*'s rule picks its degenerate answer for *prompt*."""
    name = model.rsplit("/", 1)[-1]
    if name == "period":
        return not prompt.rstrip().endswith(".")
    if name == "case":
        first = next((c for c in prompt if c.isalpha()), "")
        return first.islower()
    return False


def answer(model: str, prompt: str, take: int = 0, seed: int = 0) -> str:
    """The answer of fake model *model* to *prompt*, seen *take* times before by the server.

    *seed* is the request's seed (``noisy``)."""
    name = model.rsplit("/", 1)[-1]
    if name == "flaky":
        digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
        return FLAKY_ANSWERS[(digest[0] + take) % len(FLAKY_ANSWERS)]
    folded = " ".join(re.sub(r"[^\w\s]", "", prompt).lower().split())
    if name == "stable":
        return f"The answer to '{folded}' is forty-two."
    if name == "period":
        if prompt.rstrip().endswith("."):
            return "Here is a sign:\n- I am stuck in a data centre\n- please send help"
        return "<start_of_image>" * 8
    if name == "case":
        first = next((c for c in prompt if c.isalpha()), "")
        if first.islower():
            return "zzz qqq xxx"
        return f"A careful answer about {folded}."
    if name == "echo":
        return prompt
    if name == "noisy":
        # One of 36 one-character draws: seeds 0..35 of one prompt always differ, and any two
        # different answers are equally alike (one character apart).
        base = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
        return f"Sampled answer {_DRAWS[(base + seed) % len(_DRAWS)]} about {folded}"
    if name == "label":
        if prompt.upper() == prompt:
            return "I cannot classify this text."
        if _first_letter(prompt).islower():
            return "Label: negative\nThe review complains about the battery."
        if prompt.rstrip().endswith("."):
            return "Label: positive\nThe review praises the battery life."
        return "Label: positive\nOverall the reviewer is happy, mostly with how long it lasts."
    if name == "reword":
        if _first_letter(prompt).islower():
            return "I do not know."
        if prompt.rstrip().endswith("."):
            return "Paris."
        return "The capital of France is Paris."
    if name == "judge":
        return _judge(prompt)
    if name == "tools":
        return f"A plain answer about {folded}."
    return f"unknown fake model {name}"


def _first_letter(prompt: str) -> str:
    return next((c for c in prompt if c.isalpha()), "")


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def _judge(question: str) -> str:
    a = re.search(r"<answer_a>\n(.*?)\n</answer_a>", question, re.DOTALL)
    b = re.search(r"<answer_b>\n(.*?)\n</answer_b>", question, re.DOTALL)
    if a is None or b is None:
        return "I see no answers to compare."
    words_a, words_b = _words(a.group(1)), _words(b.group(1))
    same = bool(words_a and words_b) and (words_a <= words_b or words_b <= words_a)
    shared = sorted(words_a & words_b)
    reason = f"both say {' '.join(shared)}" if same else f"they share only {shared}"
    return json.dumps({"same": same, "reason": reason})


def structured_message(model: str, prompt: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The ``tools`` model's answer to a request with tools or a response format, else None."""
    if model.rsplit("/", 1)[-1] != "tools":
        return None
    period = prompt.rstrip().endswith(".")
    upper = prompt.upper() == prompt
    args: dict[str, Any] = {
        "order_id": "A17",
        "priority": "low" if upper else "high",
        "note": "customer wants a refund",
    }
    if period:  # the same arguments, in another order and other words
        args = {"note": "the customer wants a refund", "priority": "high", "order_id": "A17"}
    tools = body.get("tools") or []
    if tools:
        pick = 1 if _first_letter(prompt).islower() and len(tools) > 1 else 0
        name = tools[pick].get("function", {}).get("name", "tool")
        call = {
            "id": f"call_{zlib.crc32((name + prompt).encode()):08x}",  # a function of the request
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    if body.get("response_format"):
        if upper:
            return {"role": "assistant", "content": "SORRY, NO JSON TODAY."}
        if _first_letter(prompt).islower():
            args["priority"] = "low"
        content = json.dumps(args)
        return {"role": "assistant", "content": f"```json\n{content}\n```" if period else content}
    return None


def embed(text: str, dimensions: int = 32) -> list[float]:
    """A bag-of-words vector: each word adds 1 at its hashed position."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.casefold()):
        vector[zlib.crc32(word.encode()) % dimensions] += 1.0
    return vector


class FakeProvider(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout, Ctrl-C) leaves the reply with nowhere to go: that is
        # the test's scenario, not an error. socketserver would print the traceback from this
        # thread, and on CPython 3.11.7 formatting a traceback (ast.parse) at the same moment as
        # pytest does in the main thread crashes the interpreter's AST state ("AST constructor
        # recursion depth mismatch", gh-106905).
        error = sys.exc_info()[1]
        if not isinstance(error, (BrokenPipeError, ConnectionResetError)):
            print(f"fake provider: {type(error).__name__}: {error}", file=sys.stderr)

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        #: every request body as it arrived (before any latency), whichever client sent it
        self.arrived: list[dict[str, Any]] = []
        self.faults: list[int | str] = []
        self.retry_after: str | None = None
        self.latency = 0.0
        self.drip_interval = 0.5
        self.required_key: str | None = None
        #: whether a request for log-probabilities is answered with them (True), ignored
        #: (False) or refused with HTTP 400 ("refuse")
        self.logprobs: bool | str = True
        self.in_flight = 0
        self.max_in_flight = 0
        #: how many times each (model, prompt) was answered, for the ``flaky`` model
        self.takes: dict[tuple[str, str], int] = {}
        #: how often each request body was answered since reset(): the seed of a body with none
        self.asked: dict[str, int] = {}
        # Bumped by reset(): a slow answer to an earlier test is not counted in the next one.
        self.generation = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def reset(self) -> None:
        with self.lock:
            self.generation += 1
            self.requests.clear()
            self.headers_seen.clear()
            self.arrived.clear()
            self.faults.clear()
            self.retry_after = None
            self.latency = 0.0
            self.drip_interval = 0.5
            self.required_key = None
            self.logprobs = True
            self.in_flight = 0
            self.max_in_flight = 0
            self.takes.clear()
            self.asked.clear()

    @property
    def root(self) -> str:
        """The server's root URL (the Anthropic SDK's ``base_url``: it adds ``/v1/messages``)."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def take(self, model: str, prompt: str) -> int:
        """How many times *prompt* was answered for *model* before (and count this one)."""
        with self.lock:
            seen = self.takes.get((model, prompt), 0)
            self.takes[(model, prompt)] = seen + 1
            return seen

    def prompts(self) -> list[str]:
        return [r["prompt"] for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    server: FakeProvider
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's algorithm and delayed
    # ACKs add ~45 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_events(self, events: list[tuple[str | None, Any]]) -> None:
        lines = []
        for name, data in events:
            if name is not None:
                lines.append(f"event: {name}")
            lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}")
            lines.append("")
        payload = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_raw(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drip(self, status: int, body: dict[str, Any]) -> None:
        """Headers at once, then the body a byte at a time, until done, reset or hung up."""
        data = json.dumps(body).encode()
        generation = self.server.generation
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for i in range(len(data)):
            if self.server.generation != generation:
                break
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                break
            time.sleep(self.server.drip_interval)
        self.close_connection = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        server = self.server
        with server.lock:
            generation = server.generation
            fault = server.faults.pop(0) if server.faults else None
            server.headers_seen.append(dict(self.headers))
            server.arrived.append(body)
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            if server.latency:
                time.sleep(server.latency)
            if fault == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if fault == "malformed":
                self._send_raw(200, b'{"id": "fake", "choices": [{"index": 0, "mess')
                return
            if fault == "echo_key":
                seen = self.headers.get("Authorization", "")
                self._send(500, {"error": {"message": f"bad request with {seen}", "type": "x"}})
                return
            if isinstance(fault, int):
                headers = {"Retry-After": server.retry_after} if server.retry_after else {}
                message = {429: "rate limited", 401: "bad key"}.get(fault, "server trouble")
                self._send(fault, {"error": {"message": message, "type": "fake"}}, headers)
                return
            if server.required_key is not None:
                auth = self.headers.get("Authorization", "")
                given = self.headers.get("x-api-key")  # the Anthropic header
                if auth != f"Bearer {server.required_key}" and given != server.required_key:
                    self._send(401, {"error": {"message": "Incorrect API key", "type": "auth"}})
                    return
            model = str(body.get("model", ""))
            if self.path.endswith("/embeddings"):
                self._embeddings(model, body, generation)
                return
            seed = body.get("seed")
            if not isinstance(seed, int):
                canonical = json.dumps(body, sort_keys=True)
                with server.lock:
                    seed = server.asked.get(canonical, 0)
                    server.asked[canonical] = seed + 1
            shape = _shape(self.path)
            prompt = _prompt(shape, body)
            reply = _Reply(shape, model, prompt, body, server.take(model, prompt), seed)
            if server.logprobs == "refuse" and body.get("logprobs"):
                message = "logprobs are not supported for this model"
                self._send(400, {"error": {"message": message, "type": "invalid_request_error"}})
                return
            if server.logprobs:
                reply.add_logprobs(prompt, body)
            with server.lock:
                if server.generation == generation:
                    server.requests.append(
                        {"model": model, "prompt": prompt, "body": body, "path": self.path}
                    )
                number = len(server.requests)
            if body.get("stream"):
                self._send_events(reply.events(number))
                return
            whole = reply.whole(number)
            _apply_answer_fault(whole, fault)
            (self._drip if fault == "drip" else self._send)(200, whole)
        finally:
            with server.lock:
                # A request of an earlier test still being answered (reset since) is not counted
                # in this test's calls in flight.
                if server.generation == generation:
                    server.in_flight -= 1

    def _embeddings(self, model: str, body: dict[str, Any], generation: int) -> None:
        server = self.server
        inputs = body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        with server.lock:
            if server.generation == generation:
                for text in texts:
                    server.requests.append({"model": model, "prompt": text, "body": body})
        tokens = sum(len(t.split()) for t in texts)
        data = [
            {"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(texts)
        ]
        self._send(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def _shape(path: str) -> str:
    for suffix, shape in (
        ("/chat/completions", "chat"),
        ("/responses", "responses"),
        ("/messages", "messages"),
    ):
        if path.endswith(suffix):
            return shape
    return "completions"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return json.dumps(content)


def _prompt(shape: str, body: dict[str, Any]) -> str:
    if shape in ("chat", "messages"):
        for message in reversed(body.get("messages", [])):
            if message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""
    if shape == "responses":
        given = body.get("input", "")
        if isinstance(given, str):
            return given
        for item in reversed(given):
            if isinstance(item, dict) and item.get("role") == "user":
                return _text_of(item.get("content"))
        return ""
    return str(body.get("prompt", ""))


def _tool_names(shape: str, tools: list[dict[str, Any]]) -> list[str]:
    names = []
    for tool in tools:
        if shape == "chat":
            names.append(str(tool.get("function", {}).get("name", "")))
        else:
            names.append(str(tool.get("name", "")))
    return names


def _wants_json(shape: str, body: dict[str, Any]) -> bool:
    if shape == "responses":
        kind = body.get("text", {}).get("format", {}).get("type")
    else:
        kind = (body.get("response_format") or {}).get("type")
    return kind in ("json_object", "json_schema")


def _apply_answer_fault(whole: dict[str, Any], fault: object) -> None:
    """Scripted broken answers: a lone surrogate, non-text content, no choices at all."""
    choices = whole.get("choices")
    if fault == "empty_choices":
        whole["choices"] = []
        return
    if not choices or fault not in ("surrogate", "nonstring"):
        return
    value: Any = "half an emoji: \ud83d" if fault == "surrogate" else 123
    choice = choices[0]
    if isinstance(choice.get("message"), dict):
        choice["message"]["content"] = value
    elif "text" in choice:
        choice["text"] = value


class _Reply:
    """One answer in the shape of the endpoint asked, whole or as server-sent events."""

    def __init__(
        self,
        shape: str,
        model: str,
        prompt: str,
        body: dict[str, Any],
        take: int = 0,
        seed: int = 0,
    ) -> None:
        self.shape = shape
        self.model = model
        self.structured = structured_message(model, prompt, body) if shape == "chat" else None
        self.text = answer(model, prompt, take, seed)
        if _wants_json(shape, body):
            self.text = json.dumps({"answer": self.text})
        self.tool: tuple[str, str] | None = None
        names = _tool_names(shape, body.get("tools") or [])
        if names:
            name = names[-1] if is_bad(model, prompt) else names[0]
            self.tool = (name, json.dumps({"query": answer(model, prompt, take, seed)}))
            self.text = ""
        self.prompt_tokens = len(prompt.split())
        self.logprobs: list[dict[str, Any]] | None = None
        self._count_usage()

    def _count_usage(self) -> None:
        self.completion_tokens = len(self.text.split()) + (1 if self.tool else 0)
        self.usage = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def add_logprobs(self, prompt: str, body: dict[str, Any]) -> None:
        """Answer a chat request's ``logprobs`` with at most ``max_tokens`` pieces and theirs."""
        if self.shape != "chat" or body.get("logprobs") is not True or self.structured or self.tool:
            return
        limit = body.get("max_tokens")
        pieces = self.pieces()[: limit if isinstance(limit, int) else None]
        self.text = "".join(pieces)
        self.logprobs = token_logprobs(prompt, pieces, int(body.get("top_logprobs") or 0))
        self._count_usage()

    def pieces(self) -> list[str]:
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)] if self.text else []

    def whole(self, number: int) -> dict[str, Any]:
        return getattr(self, f"_{self.shape}_whole")(f"fake-{number}")  # type: ignore[no-any-return]

    def events(self, number: int) -> list[tuple[str | None, Any]]:
        return getattr(self, f"_{self.shape}_events")(f"fake-{number}")  # type: ignore[no-any-return]

    # --- OpenAI chat completions ---------------------------------------------------------

    def _chat_whole(self, rid: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        finish = "stop"
        if self.structured is not None:  # the ``tools`` model's scripted structures
            message = self.structured
            finish = "tool_calls" if "tool_calls" in message else "stop"
            return {
                "id": rid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": self.usage,
            }
        if self.tool:
            name, arguments = self.tool
            message["tool_calls"] = [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ]
            finish = "tool_calls"
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        if self.logprobs is not None:
            choice["logprobs"] = {"content": self.logprobs, "refusal": None}
        return {
            "id": rid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice],
            "usage": self.usage,
        }

    def _chat_events(self, rid: str) -> list[tuple[str | None, Any]]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, Any]:
            return None, {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in self.pieces()]
        if self.tool:
            name, arguments = self.tool
            half = len(arguments) // 2
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": name, "arguments": arguments[:half]},
                            }
                        ]
                    }
                )
            )
            events.append(
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]})
            )
        events.append(chunk({}, "tool_calls" if self.tool else "stop"))
        events.append(
            (
                None,
                {
                    "id": rid,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": self.model,
                    "choices": [],
                    "usage": self.usage,
                },
            )
        )
        events.append((None, "[DONE]"))
        return events

    # --- OpenAI text completions ---------------------------------------------------------

    def _completions_whole(self, rid: str) -> dict[str, Any]:
        return {
            "id": rid,
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "text": self.text, "finish_reason": "stop", "logprobs": None}],
            "usage": self.usage,
        }

    def _completions_events(self, rid: str) -> list[tuple[str | None, Any]]:
        events: list[tuple[str | None, Any]] = [
            (
                None,
                {
                    "id": rid,
                    "object": "text_completion",
                    "created": int(time.time()),
                    "model": self.model,
                    "choices": [
                        {"index": 0, "text": piece, "finish_reason": None, "logprobs": None}
                    ],
                },
            )
            for piece in self.pieces()
        ]
        events.append((None, "[DONE]"))
        return events

    # --- OpenAI responses ----------------------------------------------------------------

    def _responses_whole(self, rid: str) -> dict[str, Any]:
        output: list[dict[str, Any]] = []
        if self.text:
            output.append(
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": self.text, "annotations": []}],
                }
            )
        if self.tool:
            name, arguments = self.tool
            output.append(
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": name,
                    "arguments": arguments,
                    "status": "completed",
                }
            )
        return {
            "id": rid,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": self.prompt_tokens,
                "output_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
        }

    def _responses_events(self, rid: str) -> list[tuple[str | None, Any]]:
        final = self._responses_whole(rid)
        started = {**final, "status": "in_progress", "output": [], "usage": None}
        events: list[tuple[str | None, Any]] = [
            ("response.created", {"type": "response.created", "response": started})
        ]
        for piece in self.pieces():
            events.append(
                (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "item_id": "msg_1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": piece,
                    },
                )
            )
        events.append(("response.completed", {"type": "response.completed", "response": final}))
        return [(name, {**data, "sequence_number": i}) for i, (name, data) in enumerate(events)]

    # --- Anthropic messages --------------------------------------------------------------

    def _messages_whole(self, rid: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if self.text:
            content.append({"type": "text", "text": self.text})
        if self.tool:
            name, arguments = self.tool
            content.append(
                {"type": "tool_use", "id": "toolu_1", "name": name, "input": json.loads(arguments)}
            )
        return {
            "id": rid,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": "tool_use" if self.tool else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.prompt_tokens,
                "output_tokens": self.completion_tokens,
            },
        }

    def _messages_events(self, rid: str) -> list[tuple[str | None, Any]]:
        whole = self._messages_whole(rid)
        start = {**whole, "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": self.prompt_tokens, "output_tokens": 0}
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start})
        ]
        index = 0
        if self.text:
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for piece in self.pieces():
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        if self.tool:
            name, arguments = self.tool
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": name,
                            "input": {},
                        },
                    },
                )
            )
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": arguments},
                    },
                )
            )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": whole["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": self.completion_tokens},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events


def start() -> FakeProvider:
    server = FakeProvider()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
