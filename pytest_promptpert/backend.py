"""The only place that talks to a model: litellm, imported on the first real call."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .failures import AuthenticationFailed as AuthenticationFailed  # re-exported: its first home
from .failures import ProviderError as ProviderError  # re-exported: its first home
from .failures import RequestRefused, UnknownModel, missing_credentials, refused_in_process
from .intercept.transport import internal
from .redact import redact_url, scrub, secret_values
from .request import Completion, Request

_import_lock = threading.Lock()
_litellm: Any = None

#: HTTP statuses worth another try: rate limits, timeouts and server trouble.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})

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


class LiteLLMBackend:
    """Calls litellm with retries; routes ``local/...`` models to a llama.cpp server."""

    def __init__(
        self,
        *,
        retries: int = 3,
        timeout: float = 60.0,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self._sleep = sleep
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
        params = {**route_params, **request.params}
        if "extra_body" in route_params and "extra_body" in request.params:
            params["extra_body"] = {**route_params["extra_body"], **request.params["extra_body"]}
        if api_base:
            params["api_base"] = api_base
        # Retries are ours (with Retry-After); the OpenAI SDK under litellm would add its own.
        params.setdefault("max_retries", 0)
        params.setdefault("timeout", self.timeout)
        secrets = secret_values(params)
        attempt = 0
        while True:
            started = time.perf_counter()
            tool_calls: tuple[dict[str, Any], ...] | None = None
            embedding: tuple[float, ...] | None = None
            margin: float | None = None
            try:
                # The plugin's own call: quiet, and not intercepted a second time.
                with _quiet(litellm), internal():
                    if request.kind == "embedding":
                        response = litellm.embedding(model=model, input=[request.prompt], **params)
                        embedding = _embedding(response)
                        output = ""
                    elif endpoint == "text":
                        response = litellm.text_completion(
                            model=model, prompt=self._as_text(request), **params
                        )
                        output = response.choices[0].text or ""
                        margin = _first_token_margin(response.choices[0])
                    else:
                        response = litellm.completion(
                            model=model, messages=request.messages, **params
                        )
                        message = response.choices[0].message
                        output = message.content or ""
                        tool_calls = _tool_calls(message)
            except Exception as exc:
                if not type(exc).__module__.startswith(("litellm", "openai", "httpx")):
                    raise
                if self._local is not None and request.model.startswith("local/"):
                    # A dead local server is not worth retrying: say so, with its exit code.
                    self._local.check(request.model)
                message = scrub(str(getattr(exc, "message", exc)), secrets)
                refused = refused_in_process(exc)
                if refused is not None:
                    name = f"{type(refused).__module__}.{type(refused).__qualname__}"
                    raise RequestRefused(
                        request.model,
                        None,
                        f"the request never left this process: {name}:"
                        f" {scrub(str(refused), secrets)} (raised by a test plugin such as"
                        " pytest-recording/vcrpy or pytest-socket: record the cassette, or"
                        " allow the network for this test)",
                        headline=f"refused by {name}",
                    ) from refused
                hint = _auth_hint(model, params.get("api_base"))
                missing = missing_credentials(exc)
                if missing is not None:
                    raise AuthenticationFailed(
                        request.model,
                        None,  # nothing was sent: no HTTP status
                        f"missing API key: {hint}. The SDK said: {scrub(missing, secrets)}",
                        headline=f"missing API key: {hint}",
                    ) from None
                if isinstance(exc, litellm.exceptions.AuthenticationError):
                    raise AuthenticationFailed(
                        request.model,
                        _status(exc),
                        f"{message} — {hint}",
                        headline=f"credentials refused: {hint}",
                    ) from None
                if _unknown_model(litellm, exc):
                    raise UnknownModel(
                        request.model,
                        _status(exc) if _status(exc) == 404 else None,  # 400: litellm's own
                        f"{message} — check the model string: litellm's form is"
                        " 'provider/model', e.g. 'openai/gpt-4o-mini'"
                        " (https://docs.litellm.ai/docs/providers)",
                        headline=f"unknown model {request.model!r}",
                    ) from None
                if attempt >= self.retries or not _is_retryable(litellm, exc):
                    status = _status(exc)
                    if "Connection error" in message or isinstance(
                        exc, litellm.exceptions.APIConnectionError
                    ):
                        # litellm reports a refused or dropped connection as HTTP 500; there was
                        # no HTTP answer at all.
                        status = None
                        message = f"connection error (no answer from the server): {message}"
                    raise ProviderError(request.model, status, message) from None
                delay = _retry_after(exc)
                if delay is None:
                    delay = self.backoff * (2**attempt) * random.uniform(0.5, 1.5)
                self._sleep(min(delay, 60.0))
                attempt += 1
                continue
            latency = time.perf_counter() - started
            usage = getattr(response, "usage", None)
            return Completion(
                output=output,
                model=str(getattr(response, "model", None) or model),
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                latency=latency,
                cost=_cost(litellm, response),
                margin=margin,
                tool_calls=tool_calls,
                embedding=embedding,
            )

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
        if self._local is not None:
            self._local.close()
