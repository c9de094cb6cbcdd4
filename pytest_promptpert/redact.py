"""Keep credentials out of cache keys, cache entries, reports and messages."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

#: Parameters that carry credentials: passed to the provider, never stored or shown.
SECRET_PARAMS = frozenset(
    {
        "api_key",
        "azure_ad_token",
        "azure_ad_token_provider",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "vertex_credentials",
        "client_secret",
        "extra_headers",
        "headers",
    }
)

_SECRET_NAME = re.compile(r"(key|token|secret|password|passwd|credential|auth|sig)", re.I)
#: Parameters whose names look secret but which only shape the output.
_NOT_SECRET = frozenset(
    {"max_tokens", "max_completion_tokens", "top_logprobs", "max_output_tokens", "stop_sequences"}
)


def is_secret_param(name: str) -> bool:
    return name in SECRET_PARAMS or (
        name not in _NOT_SECRET and _SECRET_NAME.search(name) is not None
    )


_REDACTED = "***"


def redact_url(url: str) -> str:
    """*url* without user info and with secret-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, _REDACTED if _SECRET_NAME.search(k) else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def public_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """*params* without credential-bearing entries; URLs stripped of embedded credentials."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if is_secret_param(name):
            continue
        if isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if not is_secret_param(str(k))}
        if name in ("api_base", "base_url") and isinstance(value, str):
            value = redact_url(value)
        out[name] = value
    return out


class Secrets:
    """Values that must never be shown: its repr says how many it holds, never which.

    A traceback printed with ``-l`` shows every local variable; a plain set of secrets there
    would print them all, so the scrubber keeps them in this.
    """

    __slots__ = ("_lock", "_values")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset(v for v in values if v)

    def add(self, *values: object) -> None:
        new = {v for v in values if isinstance(v, str) and len(v) >= 3}
        if new - self._values:
            with self._lock:
                self._values = self._values | new

    def add_params(self, params: Mapping[str, Any]) -> None:
        """Credential parameters' values and the user info of ``api_base`` / ``base_url``."""
        for name, value in params.items():
            if is_secret_param(name) and isinstance(value, str):
                self.add(value)
            if name in ("api_base", "base_url") and isinstance(value, str):
                userinfo = urlsplit(value).netloc.rpartition("@")[0]
                for part in userinfo.split(":"):
                    self.add(part, unquote(part))

    def add_env(self, env: Mapping[str, str]) -> None:
        """The values of credential-named environment variables (8 characters or more)."""
        self.add(*(v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 8))

    def scrub(self, text: str) -> str:
        """*text* with every secret value replaced by ``***``."""
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, _REDACTED)
        return text

    def found_in(self, text: str) -> bool:
        return any(value in text for value in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Secrets: {len(self._values)} values, hidden>"


def secret_values(
    params: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Secrets:
    """Values that must never be shown: credential params and credential-named env vars."""
    secrets = Secrets()
    secrets.add_env(os.environ if env is None else env)
    secrets.add_params(params or {})
    return secrets


def scrub(text: str, secrets: Secrets | Iterable[str]) -> str:
    """*text* with every secret value replaced by ``***``."""
    if not isinstance(secrets, Secrets):
        secrets = Secrets(secrets)
    return secrets.scrub(text)


class Params(dict[str, Any]):
    """Call parameters (a plain dict to everything that uses them) whose repr hides credentials.

    Locals shown in a traceback with ``-l`` are printed with ``repr``: parameters held in a
    ``Params`` show ``'api_key': '***'`` and URLs without their user info.
    """

    def __repr__(self) -> str:
        shown = {
            name: _REDACTED
            if is_secret_param(name)
            else redact_url(value)
            if name in ("api_base", "base_url") and isinstance(value, str)
            else value
            for name, value in self.items()
        }
        return f"Params({shown!r})"
