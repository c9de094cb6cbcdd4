"""Interception of the model calls an application makes itself (litellm, openai, anthropic).

One interception point (:mod:`.transport`: the ``httpx``/``httpx2`` clients), one adapter per
API shape (:mod:`.adapters`), one cache (:mod:`.calls`, the run's :class:`ResponseCache`), and
the per-item perturbation and comparison (:mod:`.handler`, :mod:`.verdicts`). Usable without
pytest::

    with intercepting(Interception(CallCache(CachedLLM("unused", cache_dir=...)))):
        openai.OpenAI().chat.completions.create(...)  # answered from the cache after once
"""

from __future__ import annotations

from .adapters import ADAPTERS, Adapter, Answer, ToolCall, adapter_for
from .calls import Call, CallCache, Fetched
from .handler import Interception, Item
from .transport import Handler, Reply, intercepting, internal
from .verdicts import CallComparison, compare_answers, compare_observed, describe

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Answer",
    "Call",
    "CallCache",
    "CallComparison",
    "Fetched",
    "Handler",
    "Interception",
    "Item",
    "Reply",
    "ToolCall",
    "adapter_for",
    "compare_answers",
    "compare_observed",
    "describe",
    "intercepting",
    "internal",
]
