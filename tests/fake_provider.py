"""A small OpenAI-compatible server on 127.0.0.1 with scripted, formatting-sensitive answers.

The model name picks the behaviour:

- ``stable``: answers the same whatever the formatting (case, punctuation, whitespace folded);
- ``period``: answers very differently when the prompt ends with a period;
- ``case``: answers very differently when the prompt's first letter is lower-case;
- ``echo``: answers with the prompt itself;
- ``noisy``: a different answer for every call, all alike in content (a sampled model).

Faults are scripted per test: ``server.faults`` is a list consumed one per request, each an
HTTP status (answered with ``Retry-After`` when ``server.retry_after`` is set) or ``"drop"``
(the connection is closed without an answer). ``server.latency`` delays every answer.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_counter = itertools.count()


def _last_user(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def answer(model: str, prompt: str) -> str:
    name = model.rsplit("/", 1)[-1]
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
        return f"Sampled answer {next(_counter) % 3} about {folded}"
    return f"unknown fake model {name}"


class FakeProvider(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.faults: list[int | str] = []
        self.retry_after: str | None = None
        self.latency = 0.0
        self.required_key: str | None = None
        self.in_flight = 0
        self.max_in_flight = 0
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
            self.faults.clear()
            self.retry_after = None
            self.latency = 0.0
            self.required_key = None
            self.max_in_flight = 0

    @property
    def calls(self) -> int:
        return len(self.requests)

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

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        server = self.server
        with server.lock:
            generation = server.generation
            fault = server.faults.pop(0) if server.faults else None
            server.headers_seen.append(dict(self.headers))
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            if server.latency:
                time.sleep(server.latency)
            if fault == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if isinstance(fault, int):
                headers = {"Retry-After": server.retry_after} if server.retry_after else {}
                message = {429: "rate limited", 401: "bad key"}.get(fault, "server trouble")
                self._send(fault, {"error": {"message": message, "type": "fake"}}, headers)
                return
            if server.required_key is not None:
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {server.required_key}":
                    self._send(401, {"error": {"message": "Incorrect API key", "type": "auth"}})
                    return
            model = str(body.get("model", ""))
            if self.path.endswith("/chat/completions"):
                prompt = _last_user(body.get("messages", []))
                text = answer(model, prompt)
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
                obj = "chat.completion"
            else:
                prompt = str(body.get("prompt", ""))
                text = answer(model, prompt)
                choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                obj = "text_completion"
            with server.lock:
                if server.generation == generation:
                    server.requests.append({"model": model, "prompt": prompt, "body": body})
            self._send(
                200,
                {
                    "id": f"fake-{len(server.requests)}",
                    "object": obj,
                    "created": int(time.time()),
                    "model": model,
                    "choices": [choice],
                    "usage": {
                        "prompt_tokens": len(prompt.split()),
                        "completion_tokens": len(text.split()),
                        "total_tokens": len(prompt.split()) + len(text.split()),
                    },
                },
            )
        finally:
            with server.lock:
                server.in_flight -= 1


def start() -> FakeProvider:
    server = FakeProvider()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
