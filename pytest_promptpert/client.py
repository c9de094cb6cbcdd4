"""``CachedLLM``: the cached model client, used by the ``llm`` fixture and by scripts."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import threading
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import batch
from .aio import wait_for
from .backend import BudgetExceeded, Cancelled, LiteLLMBackend, ProviderError, estimate
from .cache import CACHE_MODES, ResponseCache
from .redact import Params, Secrets, secret_values
from .request import Completion, Prompt, Request, to_messages


class Planned(LookupError):
    """Plan mode: the answer is not cached, and the call was listed instead of made."""

    def __init__(self, request: Request) -> None:
        self.request = request
        super().__init__(f"not in the cache: {request.model!r} {request.prompt!r:.120}")


class CacheMissError(LookupError):
    """``replay`` mode and the answer is not in the cache."""

    def __init__(self, request: Request) -> None:
        self.request = request
        super().__init__(
            f"cache miss in replay mode: no cached answer for model {request.model!r}"
            f" and prompt {request.prompt!r:.300}"
            + (f" (sample {request.sample})" if request.sample else "")
            + "; run with --promptpert-cache=auto to fetch it"
        )


@dataclass
class Stats:
    """What this client did, each distinct request counted once per run.

    ``hits``: requests first found in the cache; ``misses``: requests that needed a call (or
    failed in replay mode); ``calls``: real model calls made; ``errors``: calls that failed.
    """

    calls: int = 0
    hits: int = 0
    misses: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "tokens": self.tokens}

    def merge(self, other: Mapping[str, float]) -> None:
        for name, value in asdict(self).items():
            setattr(self, name, value + type(value)(other.get(name, 0)))


def _absolute_local_path(model: str) -> str:
    """``local/rel/x.gguf`` -> ``local//abs/rel/x.gguf``: the key names the file, not the cwd."""
    path = model.removeprefix("local/")
    if (
        model.startswith("local/")
        and path.lower().endswith(".gguf")
        and not Path(path).is_absolute()
    ):
        return "local/" + str(Path(path).resolve())
    return model


def _scope(request: Request) -> tuple[str, str, str]:
    """What a run-wide failure is the same for: model, endpoint and credentials (hashed)."""
    key = request.params.get("api_key")
    digest = hashlib.sha256(str(key).encode()).hexdigest() if key is not None else ""
    return request.model, str(request.params.get("api_base") or ""), digest


class CachedLLM:
    """A litellm client whose every answer goes through a disk cache.

    ``CachedLLM("openai/gpt-4o-mini")("Hello")`` returns the model's text; a second call with
    the same model, messages and parameters is answered from ``cache_dir`` without a request.
    Keyword arguments beyond the named ones are default litellm parameters for every call.
    """

    def __init__(
        self,
        model: str,
        *,
        cache_dir: str | Path = ".promptpert_cache",
        cache: str = "auto",
        api_base: str | None = None,
        concurrency: int = 8,
        retries: int = 3,
        timeout: float = 60.0,
        backoff: float = 0.5,
        max_cost: float | None = None,
        run_id: str | None = None,
        cache_url: str | None = None,
        **defaults: Any,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, not {model!r}")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
        self.model = _absolute_local_path(model)
        # Params: credentials in the defaults stay out of reprs (tracebacks shown with -l).
        self.defaults = Params(defaults)
        if api_base:
            # Part of the request (and so of the cache key): another server, another answer.
            self.defaults.setdefault("api_base", api_base)
        self.concurrency = concurrency
        #: shared by the processes of one run (xdist workers), so that ``refresh`` refreshes
        #: each answer once per run, not once per process
        self.run_id = run_id or uuid.uuid4().hex
        shared = None
        if cache_url and cache != "off":
            from .redis_store import open_shared

            shared = open_shared(cache_url)
        self.cache = ResponseCache(Path(cache_dir), cache, run_id=self.run_id, shared=shared)
        self.backend = LiteLLMBackend(retries=retries, timeout=timeout, backoff=backoff)
        self.stats = Stats()
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[Completion]] = {}
        #: this run's answers that are not in the cache: mode "off", or a write that failed
        self._memo: dict[str, Completion] = {}
        #: keys counted in stats this run -> whether the first lookup found it (hit) or not
        self._counted: dict[str, bool] = {}
        self._unclaimed: set[str] = set()  # keys called this run, not yet claimed by an item
        self._executor: ThreadPoolExecutor | None = None
        self._views: dict[str, ResponseCache] = {}  # per-call cache= overrides
        self.max_cost = max_cost
        self._reserved = 0.0
        #: failures every call to a model and endpoint would meet (see ProviderError.run_wide)
        self._run_wide: dict[tuple[str, str, str], ProviderError] = {}
        #: plan mode: misses are listed here (key -> (request, tokens, USD)), never called
        self.planning = False
        self.planned: dict[str, tuple[Request, int, float]] = {}
        #: every credential this client has seen (environment and call parameters), so that
        #: whatever reports what happened can scrub them
        self.secrets: Secrets = secret_values(self.defaults)
        self._cancelled = threading.Event()

    # --- building requests --------------------------------------------------------------

    def request(self, prompt: Prompt, *, sample: int = 0, **params: Any) -> Request:
        params = Params(params)  # a safe repr for the locals of a traceback shown with -l
        merged = Params({**self.defaults, **params})
        self.secrets.add_params(merged)
        model = _absolute_local_path(merged.pop("model", self.model))
        return Request(model=model, messages=to_messages(prompt), params=merged, sample=sample)

    # --- calling ------------------------------------------------------------------------

    def __call__(self, prompt: Prompt, **params: Any) -> str:
        params = Params(params)
        return self.complete(prompt, **params).output

    async def acall(self, prompt: Prompt, **params: Any) -> str:
        params = Params(params)
        return (await self.acomplete(prompt, **params)).output

    def complete(
        self, prompt: Prompt, *, sample: int = 0, cache: str | None = None, **params: Any
    ) -> Completion:
        """The whole answer: ``output``, ``tool_calls``, tokens, ``cost``, ``cached``.

        *cache* overrides the client's mode for this call (``"refresh"``, ``"off"``, ...).
        """
        params = Params(params)  # a safe repr for the locals of a traceback shown with -l
        request = self.request(prompt, sample=sample, **params)
        return self._wait([self.submit(request, cache=self.cache_view(cache))])[0]

    async def acomplete(
        self, prompt: Prompt, *, sample: int = 0, cache: str | None = None, **params: Any
    ) -> Completion:
        params = Params(params)
        request = self.request(prompt, sample=sample, **params)
        # Under asyncio, and under trio through anyio's worker threads.
        return await wait_for(self.submit(request, cache=self.cache_view(cache)))

    def map(
        self,
        prompts: Iterable[Prompt],
        *,
        cache: str | None = None,
        return_exceptions: bool = False,
        progress: bool | batch.Progress | None = None,
        **params: Any,
    ) -> list[Completion]:
        """:meth:`complete` for every prompt, at most ``concurrency`` calls at once, in order.

        The first error is raised once every prompt is done, unless *return_exceptions* (then
        errors take their prompts' places). *progress*: a ``done/total`` count on stderr, by
        default only when stderr is a terminal; or a callable ``(done, total)``.
        """
        params = Params(params)
        futures = self._submit_all(prompts, cache, params)
        try:
            done = batch.gather(
                futures,
                return_exceptions=return_exceptions,
                progress=batch.resolve_progress(progress),
            )
        except KeyboardInterrupt:
            self.cancel()  # Ctrl-C: no queued call or retry goes out after it
            raise
        return done  # type: ignore[return-value]  # errors only with return_exceptions

    async def amap(
        self,
        prompts: Iterable[Prompt],
        *,
        cache: str | None = None,
        return_exceptions: bool = False,
        progress: bool | batch.Progress | None = None,
        **params: Any,
    ) -> list[Completion]:
        """:meth:`map` for a coroutine."""
        params = Params(params)
        futures = self._submit_all(prompts, cache, params)
        done = await batch.agather(
            futures, return_exceptions=return_exceptions, progress=batch.resolve_progress(progress)
        )
        return done  # type: ignore[return-value]

    def _submit_all(
        self, prompts: Iterable[Prompt], cache: str | None, params: dict[str, Any]
    ) -> list[Future[Completion]]:
        view = self.cache_view(cache)
        requests = [self.request(prompt, **params) for prompt in prompts]  # all checked first
        return [self.submit(request, cache=view) for request in requests]

    def cache_view(self, mode: str | None) -> ResponseCache:
        """The cache in another *mode* (same directory), for a per-call ``cache=`` override."""
        if mode is None or mode == self.cache.mode:
            return self.cache
        if mode not in CACHE_MODES:
            raise ValueError(f"cache={mode!r} is not a cache mode ({', '.join(CACHE_MODES)})")
        with self._lock:
            if mode not in self._views:
                self._views[mode] = ResponseCache(
                    self.cache.directory,
                    mode,
                    run_id=self.run_id,
                    shared=self.cache.shared,
                    lease=self.cache.lease,
                )
            return self._views[mode]

    def fetch(self, request: Request) -> Completion:
        return self.fetch_many([request])[0]

    def fetch_many(self, requests: list[Request]) -> list[Completion]:
        """All of *requests*, concurrently where they need calls, in order."""
        return self._wait([self.submit(r) for r in requests])

    def _wait(self, futures: list[Future[Completion]]) -> list[Completion]:
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            self.cancel()  # Ctrl-C: no queued call or retry goes out after it
            raise

    def cancel(self) -> None:
        """Stop at once: queued calls and retries are not made, calls in flight not awaited."""
        self._cancelled.set()
        self.backend.cancel()

    def prefetch(self, requests: list[Request]) -> list[Future[Completion]]:
        """Start fetching *requests* in the background; errors surface when fetched.

        The futures let the caller wait for what it started (a test, before it ends).
        """
        if self.cache.mode == "replay":
            return []
        return [self.submit(request) for request in requests]

    def submit(self, request: Request, *, cache: ResponseCache | None = None) -> Future[Completion]:
        """A future for *request*'s completion; one per key (and mode) while it is in flight."""
        cache = self.cache if cache is None else cache  # (an empty cache is falsy)
        key = request.key()
        flight = key if cache is self.cache else f"{cache.mode}:{key}"
        with self._lock:
            running = self._inflight.get(flight)
            if running is not None:
                return running
            future: Future[Completion] = Future()
            self._inflight[flight] = future
        try:
            done = self._lookup(key, request, cache)
        except BaseException as exc:
            self._settle(flight, future, error=exc)
            return future
        if done is not None:
            self._settle(flight, future, result=done)
        else:
            self._pool().submit(self._call_into, key, request, future, cache, flight)
        return future

    # --- internals ----------------------------------------------------------------------

    def _lookup(self, key: str, request: Request, cache: ResponseCache) -> Completion | None:
        """A completion without calling the model, or None when a call is needed."""
        mode = cache.mode
        # This run's answers that are not in the cache (mode "off", a write that failed);
        # a per-call cache="off" asks again, as it says.
        found: Completion | None = None
        if cache is self.cache or mode != "off":
            found = self._memo.get(key)
        if found is not None or mode == "off":
            pass
        elif mode == "refresh":
            found = self._fetched_elsewhere(request, cache)  # only what this run refreshed
        else:
            found = cache.get(request)
        with self._lock:
            first = key not in self._counted
            if first:
                self._counted[key] = found is not None
            if found is not None:
                self.stats.hits += first
                return found
            self.stats.misses += first
        if mode == "replay":
            raise CacheMissError(request)
        if self.planning:
            tokens, cost = estimate(request)
            with self._lock:
                self.planned.setdefault(key, (request, tokens, cost))
            raise Planned(request)
        return None

    def _call_into(
        self,
        key: str,
        request: Request,
        future: Future[Completion],
        cache: ResponseCache,
        flight: str,
    ) -> None:
        try:
            if self._cancelled.is_set():
                raise Cancelled(request.model, None, "cancelled (interrupted) before the call")
            with cache.lock(request, cancelled=self._cancelled):
                # Another process may have fetched it while we waited for the lock.
                found = self._fetched_elsewhere(request, cache)
                if found is None:
                    failed = self._run_wide.get(_scope(request))
                    if failed is not None:
                        # No key, no local extra, unknown model: said once, not asked again.
                        raise failed.again()
                    reserved = self._reserve_budget(request)
                    try:
                        found = dataclasses.replace(self.backend.call(request), run=self.run_id)
                    finally:
                        with self._lock:
                            self._reserved -= reserved
                    with self._lock:
                        self.stats.calls += 1
                        self.stats.prompt_tokens += found.prompt_tokens
                        self.stats.completion_tokens += found.completion_tokens
                        self.stats.cost += found.cost
                        self._unclaimed.add(key)
                    if not cache.set(request, found) and (
                        cache is self.cache or cache.mode != "off"
                    ):
                        # Mode "off", or a full disk or read-only mount (reported once by the
                        # cache): the answer is paid for, so this run keeps it.
                        with self._lock:
                            self._memo[key] = found
        except BaseException as exc:
            with self._lock:
                self.stats.errors += 1
                if isinstance(exc, ProviderError) and exc.run_wide and exc.first is None:
                    self._run_wide.setdefault(_scope(request), exc)
            self._settle(flight, future, error=exc)
        else:
            self._settle(flight, future, result=found)

    def _fetched_elsewhere(self, request: Request, cache: ResponseCache) -> Completion | None:
        """A cached answer another thread or process got for this run's purposes."""
        if cache.mode == "refresh":
            found = cache.read(request)
            return found if found is not None and found.run == self.run_id else None
        return cache.get(request)

    def tally(self, request: Request, completion: Completion | None, *, called: bool) -> None:
        """Count an answer obtained outside :meth:`submit` (an intercepted call) in the stats.

        *completion* None: a miss that got no answer (replay mode).
        """
        key = request.key()
        with self._lock:
            first = key not in self._counted
            if first:
                self._counted[key] = completion is not None and not called
            if completion is not None and not called:
                self.stats.hits += first
                return
            self.stats.misses += first
            if completion is not None:
                self.stats.calls += 1
                self.stats.prompt_tokens += completion.prompt_tokens
                self.stats.completion_tokens += completion.completion_tokens
                self.stats.cost += completion.cost

    def counted(self) -> dict[str, bool]:
        """Each distinct request this client looked up -> whether it was a cache hit.

        Processes of one run (xdist workers) may each look up the same request; a run counts
        it once, from these records (see ``outputs.count_keys``), not by adding up ``stats``.
        """
        with self._lock:
            return dict(self._counted)

    def claim_call(self, request: Request) -> bool:
        """True once for each request this client called: who asked for it pays for it.

        Lets per-item reports attribute every real call to exactly one item, whichever item
        (or background prefetch) happened to make it.
        """
        key = request.key()
        with self._lock:
            if key in self._unclaimed:
                self._unclaimed.discard(key)
                return True
            return False

    def _reserve_budget(self, request: Request) -> float:
        """Count *request*'s estimated cost against ``max_cost`` while it is in flight."""
        if self.max_cost is None:
            return 0.0
        _, cost = estimate(request)
        with self._lock:
            spent = self.stats.cost + self._reserved
            if spent + cost > self.max_cost:
                raise BudgetExceeded(
                    request.model,
                    None,
                    f"--promptpert-max-cost ${self.max_cost:.4f} reached (spent or in flight"
                    f" ${spent:.4f}, this call ~${cost:.4f}); not calling for prompt"
                    f" {request.prompt!r:.120}",
                )
            self._reserved += cost
        return cost

    def _settle(
        self,
        key: str,
        future: Future[Completion],
        *,
        result: Completion | None = None,
        error: BaseException | None = None,
    ) -> None:
        with self._lock:
            self._inflight.pop(key, None)
        if error is not None:
            future.set_exception(error)
        else:
            assert result is not None
            future.set_result(result)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="promptpert"
                )
            return self._executor

    def drain(self) -> None:
        """Wait for every call in flight (prefetches included) to land, successful or not."""
        while True:
            with self._lock:
                pending = list(self._inflight.values())
            if not pending:
                return
            concurrent.futures.wait(pending)

    def close(self) -> None:
        """Wait for calls in flight, stop any local model server, close the cache."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self.backend.close()
        for view in self._views.values():
            view.close()
        self.cache.close()

    def __enter__(self) -> CachedLLM:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
