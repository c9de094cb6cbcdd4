"""Keep credentials out of cache keys, cache entries, reports and messages."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def secret_values(params: Mapping[str, Any] = {}, env: Mapping[str, str] | None = None) -> set[str]:
    """Values that must never be shown: credential params and credential-named env vars."""
    env = os.environ if env is None else env
    found = {str(v) for k, v in params.items() if is_secret_param(k) and isinstance(v, str)}
    for name, value in env.items():
        if _SECRET_NAME.search(name) and len(value) >= 8:
            found.add(value)
    base = params.get("api_base")
    if isinstance(base, str):
        userinfo = urlsplit(base).netloc.rpartition("@")[0]
        found.update(part for part in userinfo.split(":") if len(part) >= 3)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """*text* with every secret value replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, _REDACTED)
    return text
