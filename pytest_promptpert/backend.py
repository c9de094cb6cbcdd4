"""The only place that talks to a model: litellm, imported on the first real call."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import os
import random
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from .failures import AuthenticationFailed as AuthenticationFailed  # re-exported: its first home
from .failures import ProviderError as ProviderError  # re-exported: its first home
from .failures import RequestRefused, UnknownModel, missing_credentials, refused_in_process
from .intercept.transport import internal
from .logprobs import Logprobs, margin, parse_choice
from .redact import Params, Secrets, redact_url, secret_values
from .request import Completion, Request
from .runners import CALLS

_import_lock = threading.Lock()
_litellm: Any = None

#: HTTP statuses worth another try: rate limits, timeouts and server trouble.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})

#: Seconds a call may run past ``timeout`` before it is abandoned.
DEADLINE_GRACE = 0.5

#: Seconds :meth:`LiteLLMBackend.close` gives abandoned calls to end once their sockets are shut.
CLOSE_GRACE = 5.0

#: Where litellm looks for each provider's key, for a readable authentication error.
KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "cohere": "COHERE_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
}


#: litellm's debug prints ("Give Feedback / Get Help", "Provider List") are off while a call of
#: ours is in flight and back to the application's setting after: counted across threads.
_quiet_lock = threading.Lock()
_quiet_calls = 0
_quiet_saved: Any = None


@contextlib.contextmanager
def _quiet(litellm: Any) -> Iterator[None]:
    global _quiet_calls, _quiet_saved
    with _quiet_lock:
        if _quiet_calls == 0:
            _quiet_saved = litellm.suppress_debug_info
            litellm.suppress_debug_info = True
        _quiet_calls += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_calls -= 1
            if _quiet_calls == 0:
                litellm.suppress_debug_info = _quiet_saved


def _load_lazy_modules(litellm: Any) -> None:
    """Load now the modules litellm imports on its first call, which warn (pydantic notes).

    A mock call: no request is sent, and ``no-log`` keeps the application's callbacks out of it.
    Without this, those warnings land on whichever test makes the first call (or, with
    ``-W error``, fail it).
    """
    with contextlib.suppress(Exception), _quiet(litellm):
        litellm.completion(
            model="openai/promptpert-warm-up",
            messages=[{"role": "user", "content": "warm up"}],
            mock_response="ok",
            caching=False,  # nor the application's litellm.cache, if it set one
            **{"no-log": True},
        )


def import_litellm() -> Any:
    """litellm, imported once, without its network price-map download.

    Nothing of the import stays behind for the code under test: the environment variable that
    keeps litellm offline is set only while it imports (unless the user set it), and warnings
    raised by the import and by the modules litellm loads on its first call (deprecations,
    pydantic notes) are not recorded against whichever test happens to be running.
    """
    global _litellm
    with _import_lock:
        if _litellm is not None:
            return _litellm
        added = "LITELLM_LOCAL_MODEL_COST_MAP" not in os.environ
        if added:
            os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import litellm

                _load_lazy_modules(litellm)
        finally:
            if added:
                os.environ.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
        _litellm = litellm
        return litellm


def _retry_after(exc: BaseException) -> float | None:
    headers: Mapping[str, str] | None = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    headers = (
        headers or getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None)
    )
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _is_retryable(litellm: Any, exc: BaseException) -> bool:
    if isinstance(
        exc, (litellm.exceptions.AuthenticationError, litellm.exceptions.BadRequestError)
    ):
        return False
    if isinstance(exc, (litellm.exceptions.APIConnectionError, litellm.exceptions.Timeout)):
        return True
    return _status(exc) in RETRYABLE_STATUS


def _unknown_model(litellm: Any, exc: BaseException) -> bool:
    if isinstance(exc, litellm.exceptions.NotFoundError):
        return True
    return isinstance(exc, litellm.exceptions.BadRequestError) and (
        "LLM Provider NOT provided" in str(exc)
    )


def _auth_hint(model: str, api_base: str | None) -> str:
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    env = KEY_ENV.get(provider)
    if env and os.environ.get(env):
        hint = f"{env} is set but was refused; check its value"
    elif env:
        hint = f"set {env}"
    else:
        hint = f"set the API key litellm expects for provider {provider!r}"
    hint += ", or pass api_key=... to the call"
    return hint + (f" (api_base {redact_url(api_base)})" if api_base else "")


def _cost(litellm: Any, response: Any) -> float:
    """Estimated USD from litellm's bundled price map; 0.0 for models it does not price."""
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, Mapping) and "response_cost" in hidden:
        # litellm priced the answer as it built it (None: a model it does not price); pricing
        # it again costs 0.4-0.9 ms a call.
        cost = hidden["response_cost"]
        return float(cost) if isinstance(cost, (int, float)) else 0.0
    try:
        with _quiet(litellm):
            return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:
        return 0.0


def _first_token_margin(choice: Any) -> float | None:
    """Best minus second-best log-probability of a text completion's first token, if sent."""
    logprobs = getattr(choice, "logprobs", None)
    if logprobs is None and isinstance(choice, Mapping):
        logprobs = choice.get("logprobs")
    top = logprobs.get("top_logprobs") if isinstance(logprobs, Mapping) else None
    if top is None:
        top = getattr(logprobs, "top_logprobs", None)
    if not top or not isinstance(top[0], Mapping) or not top[0]:
        return None
    values = sorted((float(v) for v in top[0].values()), reverse=True)
    return values[0] - values[1] if len(values) > 1 else None


def _tool_calls(message: Any) -> tuple[dict[str, Any], ...] | None:
    """The tool calls of a litellm message as plain ``{"name", "arguments"}`` dicts."""
    calls = getattr(message, "tool_calls", None)
    if not calls:
        return None
    out = []
    for call in calls:
        function = getattr(call, "function", None)
        out.append(
            {
                "name": str(getattr(function, "name", "") or ""),
                "arguments": getattr(function, "arguments", "") or "",
            }
        )
    return tuple(out)


def _embedding(response: Any) -> tuple[float, ...]:
    item = response.data[0]
    vector = item["embedding"] if isinstance(item, Mapping) else item.embedding
    return tuple(float(x) for x in vector)


def estimate(request: Request) -> tuple[int, float]:
    """(tokens, USD) a call would cost at most: ~4 characters a token plus max_tokens.

    A rough, offline estimate (no tokenizer download); 0.0 USD for models litellm's bundled
    price map does not know, such as local ones.
    """
    text = sum(len(str(m.get("content", ""))) for m in request.messages)
    prompt_tokens = text // 4 + 4 * len(request.messages)
    completion_tokens = int(request.params.get("max_tokens") or 256)
    if request.model.startswith("local/"):
        return prompt_tokens + completion_tokens, 0.0
    litellm = import_litellm()
    try:
        with _quiet(litellm):
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=request.model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
        cost = float(prompt_cost) + float(completion_cost)
    except Exception:
        cost = 0.0
    return prompt_tokens + completion_tokens, cost


class BudgetExceeded(ProviderError):
    """--promptpert-max-cost is reached: no new call is made."""


class Cancelled(ProviderError):
    """The run was interrupted (Ctrl-C): this call was not made, or its answer not awaited."""


class _DeadlineExceeded(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"no answer within {seconds:g} s")


def _host(api_base: object) -> str:
    """Where a call went, for messages: ``host:port`` of *api_base*, never its user info."""
    if isinstance(api_base, str) and api_base:
        netloc = urlsplit(api_base).netloc.rpartition("@")[2]
        if netloc:
            return netloc
    return "the provider"


#: What the SDKs under litellm say when no API key was given at all.
_NO_KEY = ("Missing credentials", "api_key client option must be set")

#: Exception class names, anywhere in a failure's chain, that mean "no answer in time" and
#: "no HTTP answer at all" (litellm wraps some of them as HTTP 500).
_TIMEOUTS = frozenset({"APITimeoutError", "ReadTimeout", "ConnectTimeout", "WriteTimeout"})
_CONNECTION_ERRORS = frozenset(
    {"APIConnectionError", "ConnectError", "RemoteProtocolError", "ReadError", "WriteError"}
)


def _chain_names(exc: BaseException) -> set[str]:
    names: set[str] = set()
    current: BaseException | None = exc
    while current is not None and len(names) < 50:
        names.add(type(current).__name__)
        current = current.__cause__ or current.__context__
    return names


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "…"


def _sockets_in(thread: threading.Thread) -> list[socket.socket]:
    """The sockets *thread*'s frames hold: an HTTP client's stream waiting for an answer.

    Read without running any code of the objects' own (no ``__getattr__``).
    """
    frame = sys._current_frames().get(thread.ident or 0)
    found: list[socket.socket] = []
    while frame is not None:
        for value in list(frame.f_locals.values()):
            for candidate in (value, inspect.getattr_static(value, "_sock", None)):
                if isinstance(candidate, socket.socket) and candidate not in found:
                    found.append(candidate)
        frame = frame.f_back
    return found


class LiteLLMBackend:
    """Calls litellm with retries; routes ``local/...`` models to a llama.cpp server."""

    def __init__(
        self,
        *,
        retries: int = 3,
        timeout: float = 60.0,
        backoff: float = 0.5,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self._sleep = sleep
        self._cancelled = threading.Event()
        self._waiting: set[threading.Event] = set()
        self._waiting_lock = threading.Lock()
        #: call threads still running, abandoned ones included (see :meth:`close`)
        self._calls: dict[threading.Event, list[threading.Thread]] = {}
        self._local: Any = None
        self._embeddings: Any = None
        self._local_lock = threading.Lock()
        #: the model used because none was configured: an error about it says so
        self.default_model: str | None = None

    def _route(self, request: Request) -> tuple[str, str | None, str, dict[str, Any]]:
        """(litellm model, api_base, endpoint kind, extra params) for *request*'s model."""
        if request.model.startswith("local/"):
            from .local import LocalModels

            with self._local_lock:
                if self._local is None:
                    self._local = LocalModels()
                server = self._local.server_for(
                    request.model, configured=request.model != self.default_model
                )
            return (
                server.litellm_model,
                server.api_base,
                server.endpoint,
                server.params_for(request.sample),
            )
        return request.model, None, "chat", {}

    def call(self, request: Request) -> Completion:
        if request.kind == "embedding" and request.model.startswith("local/"):
            return self._embed_locally(request)
        model, api_base, endpoint, route_params = self._route(request)
        litellm = import_litellm()
        # Params: a repr without credentials, for tracebacks shown with -l.
        params = Params({**route_params, **request.params})
        if "extra_body" in route_params and "extra_body" in request.params:
            params["extra_body"] = {**route_params["extra_body"], **request.params["extra_body"]}
        if api_base:
            params["api_base"] = api_base
        # Retries are ours (with Retry-After); the OpenAI SDK under litellm would add its own.
        params.setdefault("max_retries", 0)
        params.setdefault("timeout", self.timeout)
        attempt = 0
        while True:
            self._check_cancelled(request)
            started = time.perf_counter()
            try:
                response = self._within_deadline(
                    lambda: self._send(litellm, endpoint, model, request, params),
                    # A little over the HTTP client's own timeout, which ends a silent
                    # server's call more cleanly; the deadline ends a server that drips.
                    float(params["timeout"]) + DEADLINE_GRACE,
                    request,
                )
            except Exception as exc:
                # The secrets to scrub from the message: read only when there is one to scrub.
                secrets = secret_values(params)
                failure, retryable, delay = self._failure(litellm, exc, request, params, secrets)
            else:
                return self._completion(litellm, response, endpoint, model, request, started)
            if attempt >= self.retries or not retryable:
                raise failure
            if delay is None:
                delay = self.backoff * (2**attempt) * random.uniform(0.5, 1.5)
            self._wait(min(delay, 60.0))
            attempt += 1

    @staticmethod
    def _send(litellm: Any, endpoint: str, model: str, request: Request, params: Params) -> Any:
        # The plugin's own call: quiet, and not intercepted a second time.
        with _quiet(litellm), internal():
            if request.kind == "embedding":
                return litellm.embedding(model=model, input=[request.prompt], **params)
            if endpoint == "text":
                text = LiteLLMBackend._as_text(request)
                return litellm.text_completion(model=model, prompt=text, **params)
            return litellm.completion(model=model, messages=request.messages, **params)

    def _within_deadline(self, send: Callable[[], Any], seconds: float, request: Request) -> Any:
        """*send*'s result, or a timeout once *seconds* have passed since it started.

        The HTTP clients' timeouts bound each read, not the answer: a server that drips a byte
        at a time would hold a call for ever. The call runs in another thread (reused, see
        :mod:`.runners`) and is abandoned at the deadline (or on :meth:`cancel`); its connection
        closes when it ends.
        """
        done = threading.Event()
        outcome: list[tuple[bool, Any]] = []

        finished = threading.Event()  # done is also set by cancel(); this only by the call
        running: list[threading.Thread] = []

        def run() -> None:
            running.append(threading.current_thread())
            try:
                outcome.append((True, send()))
            except BaseException as exc:
                outcome.append((False, exc))
            finally:
                done.set()
                finished.set()
                with self._waiting_lock:
                    self._calls.pop(finished, None)

        context = contextvars.copy_context()
        with self._waiting_lock:
            self._waiting.add(done)
            self._calls[finished] = running
        try:
            CALLS.run(functools.partial(context.run, run))
            done.wait(seconds)
        finally:
            with self._waiting_lock:
                self._waiting.discard(done)
        if not outcome:
            self._check_cancelled(request)
            raise _DeadlineExceeded(seconds)
        ok, value = outcome[0]
        if ok:
            return value
        raise value

    def _failure(
        self, litellm: Any, exc: Exception, request: Request, params: Params, secrets: Secrets
    ) -> tuple[ProviderError, bool, float | None]:
        """(the error to raise, whether another attempt may help, Retry-After) for *exc*."""
        api_base = params.get("api_base") or params.get("base_url")
        where = _host(api_base)
        if isinstance(exc, ProviderError):
            return exc, False, None
        if self._local is not None and request.model.startswith("local/"):
            # A dead local server is not worth retrying: say so, with its exit code.
            self._local.check(request.model)
        message = secrets.scrub(str(getattr(exc, "message", None) or exc))
        status = _status(exc)
        refused = refused_in_process(exc)
        if refused is not None:
            name = f"{type(refused).__module__}.{type(refused).__qualname__}"
            return (
                RequestRefused(
                    request.model,
                    None,
                    f"the request never left this process: {name}:"
                    f" {secrets.scrub(str(refused))} (raised by a test plugin such as"
                    " pytest-recording/vcrpy or pytest-socket: record the cassette, or"
                    " allow the network for this test)",
                    headline=f"refused by {name}",
                ),
                False,
                None,
            )
        hint = _auth_hint(str(request.model), api_base)
        missing = missing_credentials(exc)
        if missing is not None:
            return (
                AuthenticationFailed(
                    request.model,
                    None,  # nothing was sent: no HTTP status
                    f"missing API key: {hint}. The SDK said: {secrets.scrub(missing)}",
                    headline=f"missing API key: {hint}",
                ),
                False,
                None,
            )
        if _unknown_model(litellm, exc):
            return (
                UnknownModel(
                    request.model,
                    status if status == 404 else None,  # 400: litellm's own
                    f"{message} — check the model string: litellm's form is"
                    " 'provider/model', e.g. 'openai/gpt-4o-mini'"
                    " (https://docs.litellm.ai/docs/providers)",
                    headline=f"unknown model {request.model!r}",
                ),
                False,
                None,
            )
        if isinstance(exc, litellm.exceptions.AuthenticationError) or any(
            sign in message for sign in _NO_KEY
        ):
            # litellm reports a key that was never set as HTTP 500: no server said anything.
            refused_key = isinstance(exc, litellm.exceptions.AuthenticationError)
            return (
                AuthenticationFailed(
                    request.model,
                    status if refused_key else None,
                    f"{message} — {hint}",
                    headline=f"credentials refused: {hint}"
                    if refused_key
                    else f"missing API key: {hint}",
                ),
                False,
                None,
            )
        chain = _chain_names(exc)
        if isinstance(exc, (_DeadlineExceeded, litellm.exceptions.Timeout)) or chain & _TIMEOUTS:
            # litellm says HTTP 408, but no server answered that: the client gave up.
            seconds = float(params.get("timeout", self.timeout))
            return (
                ProviderError(
                    request.model,
                    None,
                    f"timed out: no complete answer from {where} within {seconds:g} s"
                    " (the timeout setting)",
                ),
                True,
                None,
            )
        if _caused_by(exc, json.JSONDecodeError) or "Invalid response object" in message:
            return (
                ProviderError(
                    request.model,
                    None,
                    f"the answer from {where} is not a valid completion (malformed body): "
                    + _first_line(message),
                ),
                True,
                None,
            )
        if (
            "Connection error" in message
            or isinstance(exc, litellm.exceptions.APIConnectionError)
            or _caused_by(exc, ConnectionError)
            or chain & _CONNECTION_ERRORS
        ):
            # litellm reports a refused or dropped connection as HTTP 500; there was no HTTP
            # answer at all.
            return (
                ProviderError(
                    request.model,
                    None,
                    f"connection error: no answer from {where}: {_first_line(message)}",
                ),
                True,
                None,
            )
        if not type(exc).__module__.startswith(("litellm", "openai", "httpx", "anthropic")):
            # Not a provider's error: something in the answer broke the client.
            return (
                ProviderError(
                    request.model,
                    None,
                    f"the answer from {where} could not be read:"
                    f" {type(exc).__name__}: {_first_line(message)}",
                ),
                False,
                None,
            )
        return (
            ProviderError(request.model, status, message),
            _is_retryable(litellm, exc),
            (_retry_after(exc)),
        )

    def _completion(
        self,
        litellm: Any,
        response: Any,
        endpoint: str,
        model: str,
        request: Request,
        started: float,
    ) -> Completion:
        tool_calls: tuple[dict[str, Any], ...] | None = None
        embedding: tuple[float, ...] | None = None
        first_margin: float | None = None
        logprobs: Logprobs | None = None
        if request.kind == "embedding":
            embedding = _embedding(response)
            output: Any = ""
        else:
            choices = getattr(response, "choices", None)
            if not choices:
                raise ProviderError(
                    request.model, None, "the answer has an empty 'choices' list: no output"
                )
            if endpoint == "text":
                output = choices[0].text
                first_margin = _first_token_margin(choices[0])
            else:
                output = choices[0].message.content
                tool_calls = _tool_calls(choices[0].message)
            logprobs = parse_choice(choices[0])
            if first_margin is None and logprobs:
                first_margin = margin(logprobs[0])
        if output is None:
            output = ""
        if not isinstance(output, str):
            raise ProviderError(
                request.model,
                None,
                f"the answer's content is {type(output).__name__}, not text: {output!r:.80}",
            )
        usage = getattr(response, "usage", None)
        return Completion(
            output=output,
            model=str(getattr(response, "model", None) or model),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            latency=time.perf_counter() - started,
            cost=_cost(litellm, response),
            margin=first_margin,
            logprobs=logprobs,
            tool_calls=tool_calls,
            embedding=embedding,
        )

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._cancelled.wait(seconds)

    def _check_cancelled(self, request: Request) -> None:
        if self._cancelled.is_set():
            raise Cancelled(request.model, None, "cancelled (interrupted) before an answer came")

    def cancel(self) -> None:
        """Stop waiting: calls in flight are abandoned, retries and queued calls not made."""
        self._cancelled.set()
        with self._waiting_lock:
            for done in self._waiting:
                done.set()

    def _embed_locally(self, request: Request) -> Completion:
        """A bundled embedding model, run in this process (no server, no litellm)."""
        from .local_embed import LocalEmbeddings

        with self._local_lock:
            if self._embeddings is None:
                self._embeddings = LocalEmbeddings()
        started = time.perf_counter()
        vector = self._embeddings.embed(request.model, request.prompt)
        return Completion(
            output="",
            model=request.model,
            latency=time.perf_counter() - started,
            embedding=vector,
        )

    @staticmethod
    def _as_text(request: Request) -> str:
        # A base model completes raw text: the messages' contents, in order.
        parts = []
        for message in request.messages:
            content = message.get("content")
            parts.append(content if isinstance(content, str) else str(content))
        return "\n\n".join(parts)

    def close(self) -> None:
        self._end_abandoned_calls()
        if self._local is not None:
            self._local.close()

    def _end_abandoned_calls(self) -> None:
        """End the calls abandoned at a deadline or on cancel, before the interpreter exits.

        Their threads are daemons: one still running litellm when Python finalizes is stopped
        wherever it stands (CPython gh-87135: crashes and memory corruption are possible). Their
        sockets are shut so that a read waiting on the server ends at once, then each gets a
        bounded moment to finish.
        """
        with self._waiting_lock:
            calls = list(self._calls.items())
        for _, running in calls:
            for thread in list(running):
                for sock in _sockets_in(thread):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + CLOSE_GRACE
        for finished, _ in calls:
            finished.wait(max(0.0, deadline - time.monotonic()))
