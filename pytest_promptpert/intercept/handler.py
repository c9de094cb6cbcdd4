"""What happens to an intercepted request: answered through the cache, and in a variant item
perturbed, fetched with its unperturbed twin, compared, and answered with the variant's answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..redact import redact_url
from ..variants import ORIGINAL
from .adapters import Transform, adapter_for
from .calls import Call, CallCache, Fetched
from .transport import Flow, Reply, Step


class Item(Protocol):
    """What an item (``ItemRun``) offers to the interception of its calls."""

    @property
    def variant(self) -> str: ...

    @property
    def samples(self) -> int: ...

    @property
    def perturb_used(self) -> bool: ...

    def transform(self, text: str) -> str: ...

    def unperturb(self, text: str) -> str: ...

    def intercepted(
        self, call: Call, originals: list[Fetched], variants: list[Fetched] | None
    ) -> None:
        """Count the answers; compare when there are *variants* (None: nothing to compare)."""

    def failed(self, error: BaseException) -> None:
        """An error of the plugin's (a replay miss, a routed call that failed) in a call."""


def _looks_like_a_model_call(content: bytes) -> bool:
    try:
        body = json.loads(content)
    except ValueError:
        return False
    return isinstance(body, dict) and "model" in body


def error_reply(error: BaseException) -> Reply:
    """An answer the SDKs raise at once (no retry): the application sees the plugin's reason."""
    body = {"error": {"message": f"pytest-promptpert: {error}", "type": type(error).__name__}}
    return Reply(400, "application/json", json.dumps(body).encode(), (("x-should-retry", "false"),))


class Interception:
    """The interception handler: understood calls through *calls*, perturbed for *item*."""

    def __init__(
        self,
        calls: CallCache,
        item: Item | None = None,
        *,
        on_unknown: Callable[[str], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.calls = calls
        self.item = item
        self.on_unknown = on_unknown
        self.on_error = on_error

    def flow(self, method: str, url: str, content: bytes) -> Flow | None:
        adapter = adapter_for(urlsplit(url).path)
        if adapter is None:
            if self.on_unknown is not None and _looks_like_a_model_call(content):
                self.on_unknown(f"{method} {redact_url(url).split('?', 1)[0]}")
            return None
        try:
            body = json.loads(content)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return self._guarded(Call(adapter, method, url, body))

    def _guarded(self, call: Call) -> Flow:
        try:
            if self.item is None:
                fetched = yield from self.calls.fetch(call, call.body)
                return fetched.reply
            return (yield from item_flow(self.item, self.calls, call))
        except Exception as exc:
            if self.item is not None:
                self.item.failed(exc)
            if self.on_error is not None:
                self.on_error(exc)
            return error_reply(exc)


def item_flow(item: Item, calls: CallCache, call: Call) -> Generator[Step, Any, Reply]:
    """One call of a marked test's item, like an ``llm`` call of the same item."""
    if item.variant == ORIGINAL:
        originals = yield from _fetch_samples(calls, call, call.body, item.samples)
        item.intercepted(call, originals, None)
        return originals[0].reply
    adapter = call.adapter
    if item.perturb_used:
        # The variant is already in the slots the test perturbed, wherever the app put them.
        unperturb: Transform = item.unperturb
        original_body = adapter.map_text(call.body, unperturb, last_user_only=False)
        variant_body = call.body
    else:
        original_body = call.body
        variant_body = adapter.map_text(call.body, item.transform, last_user_only=True)
    if variant_body == original_body:
        original = yield from calls.fetch(call, original_body)
        item.intercepted(call, [original], None)
        return original.reply
    originals = yield from _fetch_samples(calls, call, original_body, item.samples)
    variants = yield from _fetch_samples(calls, call, variant_body, item.samples)
    item.intercepted(call, originals, variants)
    return variants[0].reply


def _fetch_samples(
    calls: CallCache, call: Call, body: dict[str, Any], samples: int
) -> Generator[Step, Any, list[Fetched]]:
    fetched = []
    for sample in range(samples):
        fetched.append((yield from calls.fetch(call, body, sample)))
    return fetched
