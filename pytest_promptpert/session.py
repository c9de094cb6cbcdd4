"""One run's state: settings, catalogs, the shared client and the interception cache.

Nothing here imports pytest. The per-item logic behind the fixtures is in :mod:`.item_run`.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .client import CachedLLM
from .extract import ExtractSpecError, parse_extract
from .intercept import CallCache, Interception
from .intercept.observed import ObservedStore
from .manifest import CallLog
from .metrics import MetricCatalog, ModelMetric
from .redact import Secrets, secret_values
from .settings import Settings, SettingsError, with_marker
from .variants import VariantCatalog

if TYPE_CHECKING:
    from .item_run import ItemRun


def test_id(nodeid: str, variant: str) -> str:
    """The node id without the variant part: ``t[q1-add_period]`` -> ``t[q1]``."""
    if nodeid.endswith(f"[{variant}]"):
        return nodeid[: -len(variant) - 2]
    if nodeid.endswith(f"-{variant}]"):
        return nodeid[: -len(variant) - 2] + "]"
    return nodeid


class PromptpertSession:
    """Settings, catalogs and the shared client of one pytest run (one xdist worker)."""

    def __init__(
        self,
        settings: Settings,
        variants: VariantCatalog,
        metrics: MetricCatalog,
        client_factory: Callable[[Settings, str], CachedLLM] | None = None,
    ) -> None:
        self.settings = settings
        self.variants = variants
        self.metrics = metrics
        self._client_factory = client_factory or make_client
        self._client: CachedLLM | None = None
        self._lock = threading.Lock()
        self._prefetched: set[str] = set()
        #: one id for the whole run, xdist workers included (see CachedLLM.run_id)
        self.run_id = uuid.uuid4().hex
        #: the recorded scores the run is held to (None: no baseline file, or updating it)
        self.baseline: Mapping[str, Any] | None = None
        #: --promptpert-lint: ``llm`` lints each prompt and answers "" without any call
        self.lint_only = False
        #: original items' observed results, for their variant items
        self.observed = ObservedStore(settings.cache_dir, settings.cache)
        self._calls: CallCache | None = None
        #: endpoints of model calls the interception did not understand (said once each)
        self.unknown_endpoints: set[str] = set()
        self._env_secrets: Secrets = secret_values()
        #: the calls the items made, for the manifest of the next run's prefetch
        self.call_log = CallLog()

    def interception(
        self,
        item: ItemRun | None,
        on_unknown: Callable[[str], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Interception:
        """The handler for one test's intercepted calls (perturbed when *item* is given)."""
        client = self.client
        with self._lock:
            if self._calls is None:
                self._calls = CallCache(client, route=self.settings.route)
        return Interception(self._calls, item, on_unknown=on_unknown, on_error=on_error)

    @property
    def has_client(self) -> bool:
        return self._client is not None

    @property
    def secrets(self) -> Secrets:
        """The credentials to keep out of what is printed: the client's once it exists."""
        return self._client.secrets if self._client is not None else self._env_secrets

    @property
    def client(self) -> CachedLLM:
        with self._lock:
            if self._client is None:
                self._client = self._client_factory(self.settings, self.run_id)
            return self._client

    def test_settings(self, marker_kwargs: Mapping[str, Any], where: str) -> Settings:
        """Session settings overridden by a marker, every name checked against the catalogs."""
        settings = with_marker(self.settings, marker_kwargs, where)
        try:
            variants = self.variants.expand(settings.variants)
            if isinstance(settings.metric, str):
                self.metrics.get(settings.metric)
        except ValueError as exc:
            key = "variants" if "variant" in str(exc) else "metric"
            raise SettingsError(f"{settings.where(key)}: {exc}") from None
        metric = self.metrics.get(settings.metric)
        problem = metric.check(settings) if isinstance(metric, ModelMetric) else None
        if problem:
            raise SettingsError(f"{settings.where('metric')}: {problem}")
        try:
            parse_extract(settings.extract)
        except ExtractSpecError as exc:
            raise SettingsError(f"{settings.where('extract')}: extract {exc}") from None
        return dataclasses.replace(settings, variants=variants)

    def first_prefetch(self, key: str) -> bool:
        with self._lock:
            if key in self._prefetched:
                return False
            self._prefetched.add(key)
            return True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def make_client(settings: Settings, run_id: str) -> CachedLLM:
    return CachedLLM(
        settings.model,
        run_id=run_id,
        cache_dir=settings.cache_dir,
        cache=settings.cache,
        cache_url=settings.cache_url,
        api_base=settings.api_base,
        concurrency=settings.concurrency,
        retries=settings.retries,
        timeout=settings.timeout,
        max_cost=settings.max_cost,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
    )
