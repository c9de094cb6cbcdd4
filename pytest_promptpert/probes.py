"""Log-prob probes: a compared prompt asked again, briefly, for its log-probabilities.

Which calls are probed (the ``logprobs`` setting), the probe's parameters in the form each
endpoint takes, and fetching probes through the run's client. A probe never fails an item: a
provider that refuses it, or a probe missing from a replayed cache, is a note in the report.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .backend import Cancelled
from .client import CachedLLM, CacheMissError
from .failures import ProviderError
from .logprobs import ANSWER_TOKENS, TOP_LOGPROBS
from .request import Completion, Request


def probe_params(model: str) -> dict[str, Any]:
    """The parameters that turn a call into a probe, in the form *model*'s endpoint takes."""
    if model.startswith("local/"):
        # llama.cpp is called on its text-completions endpoint: the legacy integer form.
        return {"max_tokens": ANSWER_TOKENS, "logprobs": TOP_LOGPROBS}
    return {"max_tokens": ANSWER_TOKENS, "logprobs": True, "top_logprobs": TOP_LOGPROBS}


def wanted(mode: str, request: Request) -> bool:
    """Whether the ``logprobs`` setting *mode* probes *request*: ``auto`` probes local models."""
    if request.kind != "chat":
        return False
    return mode == "on" or (mode == "auto" and request.model.startswith("local/"))


def fetch(
    client: CachedLLM, requests: list[Request]
) -> tuple[list[Request], list[Completion] | str]:
    """The probes of *requests* and their answers (cached like any call), or why there are none."""
    probes = [
        dataclasses.replace(r, params={**r.params, **probe_params(r.model)}) for r in requests
    ]
    try:
        return probes, client.fetch_many(probes)
    except CacheMissError:
        return probes, "the log-prob probes are not in the cache (replay mode)"
    except Cancelled:
        raise
    except ProviderError as exc:
        return probes, f"the log-prob probe failed: {exc.headline}"
