"""The per-item logic behind the ``llm`` and ``promptpert`` fixtures.

Nothing here imports pytest: the plugin turns :class:`Verdict` into pass, fail or skip.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from . import probes
from .aio import run_sync
from .baseline import check
from .compare import Comparison, NothingToCompare, check_extractable, compare, trim
from .extract import Extractor, parse_extract
from .findings import collapse_reason
from .intercept import CallComparison, describe
from .intercept.item import AppCalls
from .lint import check_prompt, lint_message
from .logprobs import Sensitivity, sensitivity
from .metrics import Metric, MetricContext, ModelMetric, metric_name
from .redact import Params
from .request import (
    Completion,
    Message,
    Prompt,
    PromptError,
    Request,
    map_all_text,
    map_last_user_text,
)
from .session import PromptpertSession
from .settings import Settings
from .variants import CONTROL, ORIGINAL, VariantError


@dataclass(frozen=True)
class ItemPlan:
    """What one expanded item is: its test, its variant, its settings, its siblings."""

    test: str
    variant: str
    settings: Settings
    siblings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "passed", "failed" or "skipped"
    message: str = ""
    score: float | None = None
    #: a variant item that compared nothing at all (no model call seen, nothing observed)
    compared_nothing: bool = False


def _constant(value: str, _match: re.Match[str]) -> str:
    return value


@dataclass
class ItemRun(AppCalls):
    """The ``llm`` and ``promptpert`` fixtures of one item: variant, perturbation, records."""

    plan: ItemPlan
    session: PromptpertSession
    #: one per ``llm`` call; None where the variant left that prompt unchanged
    records: list[Comparison | None] = field(default_factory=list)
    #: perturbed text -> the text it came from, for every ``perturb()`` that changed something
    _perturbed: dict[str, str] = field(default_factory=dict)
    _perturb_used: bool = False
    #: what the test passed to ``promptpert.observe()``, JSON values
    observed: list[Any] = field(default_factory=list)
    #: errors of the plugin's in intercepted calls (replay misses...): the item's outcome
    errors: list[BaseException] = field(default_factory=list)
    #: keys of the calls answered unperturbed (the original's calls, a variant's twins)
    original_keys: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    calls: int = 0  # real model calls made for this item
    hits: int = 0  # answers it used that were already there
    tokens: int = 0  # tokens of its calls
    latency: float = 0.0  # seconds the model took for the answers it used (cached or not)
    #: "original" / "variant" -> why that output collapsed (the first collapse seen)
    collapsed: dict[str, str] = field(default_factory=dict)
    #: the original item's first prompt and output, for its record
    _first: tuple[str, str] | None = None
    #: the log-probabilities of the original item's first answer (logprobs.py)
    _first_logprobs: Sensitivity | None = None
    #: risky formatting found in the original prompts this item sent (see lint.py)
    lint: list[dict[str, str]] = field(default_factory=list)
    linted: int = 0  # distinct original prompts checked
    _linted: set[str] = field(default_factory=set)
    #: the sibling variants' calls this item started in the background
    _prefetches: list[Future[Completion]] = field(default_factory=list)

    @property
    def variant(self) -> str:
        return self.plan.variant

    def __repr__(self) -> str:
        # Shown by pytest's assertion rewriting ("where ... = <llm ...>(prompt)"): short.
        return f"<promptpert llm, variant {self.variant!r}>"

    def perturb(self, text: str) -> str:
        """Apply the current variant to *text*; ``llm`` then leaves its prompts alone."""
        if not isinstance(text, str):
            raise TypeError(f"promptpert.perturb() takes a str, not {type(text).__name__}")
        self._perturb_used = True
        changed = self.session.variants.apply(self.variant, text)
        if changed != text:
            self._perturbed[changed] = text
        return changed

    def _unperturb(self, text: str) -> str:
        """*text* with each perturbed slot put back, matching whole slots only.

        "hi" (from perturb("Hi")) must not turn "this" into "tHis": a match may not have a
        word character on a side where the slot itself starts or ends with one.
        """
        for changed in sorted(self._perturbed, key=len, reverse=True):
            before = r"(?<!\w)" if changed[:1].isalnum() or changed[:1] == "_" else ""
            after = r"(?!\w)" if changed[-1:].isalnum() or changed[-1:] == "_" else ""
            pattern = before + re.escape(changed) + after
            # A function replacement: the original text is inserted as is, backslashes and all.
            text = re.sub(pattern, functools.partial(_constant, self._perturbed[changed]), text)
        return text

    def _samples(self, request: Request, *, control: bool = False) -> list[Request]:
        """The request under each sample index; the control's come after the original's."""
        n = self.plan.settings.samples
        first = n if control else 0
        return [dataclasses.replace(request, sample=first + i) for i in range(n)]

    def _prefetch_siblings(self, original: Request) -> None:
        """Start the calls every variant item of this test will make for this prompt."""
        session = self.session
        if not session.first_prefetch(f"{self.plan.test}\0{original.key()}"):
            return
        requests = self._samples(original)
        for name in self.plan.siblings:
            if name == CONTROL:
                requests += self._samples(original, control=True)
                continue
            try:
                messages = map_last_user_text(original.messages, session.variants.get(name))
            except PromptError:
                break  # no user message: the variant items will say so; the original is fine
            except VariantError:
                continue  # a broken custom variant: its own item says so; the original is fine
            if messages != original.messages:
                requests += self._samples(dataclasses.replace(original, messages=messages))
        self._prefetches += session.client.prefetch(requests)

    def wait_for_prefetches(self) -> None:
        """Let the background calls this item started land (their errors surface when fetched).

        A prefetch never outlives its test: what pytest-recording and the like record for this
        test is then exactly what it asked for, whatever the timing.
        """
        concurrent.futures.wait(self._prefetches)
        self._prefetches.clear()

    def __call__(self, prompt: Prompt, **params: Any) -> str:
        params = Params(params)  # a safe repr for the locals of a traceback shown with -l
        client = self.session.client
        request = client.request(prompt, **params)
        if self.session.lint_only:
            self._lint(request)
            return ""  # a placeholder: no model is called when only linting
        self.original_keys.append(request.key() if self.variant == ORIGINAL else "")
        if self.variant == ORIGINAL:
            self._lint(request)
            if not self._perturb_used:
                self._prefetch_siblings(request)
            requests = self._samples(request)
            self._log(requests, params)
            done = client.fetch_many(requests)
            self._count(requests, done)
            with self._naming_test():
                check_extractable(self._extractor(), done[0].output)
            self._check_collapse(ORIGINAL, request, done[0])
            if self._first is None:
                self._first = (request.prompt, done[0].output)
                self._first_logprobs = self._sensitivity(request, done[0])
            return done[0].output
        original, variant = self._pair(request)
        self.original_keys[-1] = original.key()
        self._lint(original)
        control = self.variant == CONTROL  # never a no-op: the same prompt, other samples
        if variant.messages == original.messages and not control:
            self.records.append(None)
            self._log([original], params)
            done = [client.fetch(original)]
            self._count([original], done)
            return done[0].output
        n = len(self._samples(original))
        requests = self._samples(original) + self._samples(variant, control=control)
        self._log(requests, params)
        done = client.fetch_many(requests)
        originals, variants = done[:n], done[n:]
        settings = self.plan.settings
        self._count(requests, done)
        with self._naming_test():
            comparison = compare(
                self._metric(original),
                metric_name(settings.metric),
                settings.threshold,
                original.prompt,
                variant.prompt,
                originals,
                variants,
                extract=self._extractor(),
                json_output=bool(original.params.get("response_format")),
            )
        found = self._sensitivity(original, originals[0], requests[n])
        if found is not None:
            comparison = dataclasses.replace(comparison, logprobs=found)
            margins = found.margins
            # A failure on a local model whose first token barely won may not reproduce on
            # another build or CPU: the message says so (compare.describe).
            local = original.model.startswith("local/")
            if not comparison.passed and local and any(m is not None for m in margins):
                comparison = dataclasses.replace(comparison, margins=margins)
        self._check_collapse(ORIGINAL, original, originals[0])
        self._check_collapse("variant", variant, variants[0])
        self.records.append(comparison)
        return variants[0].output

    def _log(self, requests: list[Request], params: dict[str, Any]) -> None:
        """Record the item's calls for the manifest (the next run's cross-test prefetch)."""
        session = self.session
        session.call_log.add(self.plan.test, self.variant, requests, params, session.secrets)

    def _sensitivity(
        self, original: Request, answer: Completion, variant: Request | None = None
    ) -> Sensitivity | None:
        """The log-probabilities of the original's answer (and the variant's shift of it), from
        one short cached probe per prompt (logprobs.py); None where the setting asks for none.
        """
        if not probes.wanted(self.plan.settings.logprobs, original):
            return None
        asked, done = probes.fetch(self.session.client, [original, *([variant] if variant else [])])
        if isinstance(done, str):
            return Sensitivity(note=done)
        self._count(asked, done)
        if variant is None:
            got = done[0].logprobs
            if got is None:
                return Sensitivity(note="the provider returned no log-probabilities")
            return Sensitivity(got, note="" if got else "the answer is empty: no token")
        return sensitivity(done[0].logprobs, done[1].logprobs, answer.output)

    def _extractor(self) -> Extractor | None:
        return parse_extract(self.plan.settings.extract)  # checked at collection

    def _metric(self, original: Request) -> Metric:
        """The item's metric; one that asks a model is bound to this call and the run's client."""
        settings = self.plan.settings
        metric = self.session.metrics.get(settings.metric)
        if not isinstance(metric, ModelMetric):
            return metric
        client = self.session.client
        context = MetricContext(
            prompt=original.prompt,
            model=client.model,
            judge_model=settings.judge_model,
            embedding_model=settings.embedding_model,
            api_base=settings.api_base,
            request=client.request,
            fetch=self._fetch_counted,
        )
        return metric.bind(context)  # type: ignore[return-value]

    def _fetch_counted(self, request: Request) -> Completion:
        done = self.session.client.fetch(request)
        self._count([request], [done])
        return done

    @contextlib.contextmanager
    def _naming_test(self) -> Iterator[None]:
        try:
            yield
        except NothingToCompare as exc:
            raise NothingToCompare(f"{self.plan.test}: {exc}") from None

    def _lint(self, original: Request) -> None:
        """Check an original prompt's formatting once, before any call is made for it."""
        prompt = original.prompt
        if prompt in self._linted:
            return
        self._linted.add(prompt)
        self.linted += 1
        for finding in check_prompt(prompt):
            self.lint.append({"prompt": trim(prompt, 300), **finding.as_dict()})

    def lint_verdict(self) -> Verdict:
        """The item's outcome under --promptpert-lint: failed with findings, else skipped."""
        if not self.linted:
            return Verdict("skipped", "promptpert lint: the test made no llm() call to check")
        if not self.lint:
            return Verdict(
                "skipped", f"promptpert lint: no risky formatting in {self.linted} prompt(s)"
            )
        return Verdict("failed", lint_message(self.plan.test, self.lint))

    def _check_collapse(self, side: str, request: Request, completion: Completion) -> None:
        if side in self.collapsed:
            return
        limit = request.params.get("max_tokens")
        cut = isinstance(limit, int) and 0 < limit <= completion.completion_tokens
        reason = collapse_reason(completion.output, cut=cut)
        if reason is not None:
            self.collapsed[side] = reason

    def _count(self, requests: list[Request], done: list[Completion]) -> None:
        """Add the calls made for this item (each call counts in one item only) and hits."""
        for request, completion in zip(requests, done, strict=True):
            self.latency += completion.latency
            if self.session.client.claim_call(request):
                self.calls += 1
                self.tokens += completion.tokens
            else:
                self.hits += 1

    async def acall(self, prompt: Prompt, **params: Any) -> str:
        """The async form of a call, for async tests; the same cache, fan-out and verdict."""
        params = Params(params)  # a safe repr for the locals of a traceback shown with -l
        return await run_sync(self, prompt, **params)

    def _pair(self, request: Request) -> tuple[Request, Request]:
        """(original, variant) requests for what the test asked."""
        if self._perturb_used:
            messages: list[Message] = map_all_text(request.messages, self._unperturb)
            return dataclasses.replace(request, messages=messages), request
        original = request
        self._prefetch_siblings(original)
        if self.variant == CONTROL:  # the same messages, whatever their roles
            return original, original
        transform = self.session.variants.get(self.variant)
        variant_messages = map_last_user_text(request.messages, transform)
        return original, dataclasses.replace(request, messages=variant_messages)

    def result(self, nodeid: str, outcome: str) -> dict[str, Any]:
        """The JSON-safe record of this item that reports are built from (schema version 1)."""
        settings = self.plan.settings
        compared = [c for c in self.records if c is not None]
        worst = min(compared, key=lambda c: c.score, default=None)
        record: dict[str, Any] = {
            "nodeid": nodeid,
            "test": self.plan.test,
            "variant": self.variant,
            "metric": metric_name(settings.metric),
            "threshold": settings.threshold,
            "score": None,
            "outcome": outcome,
            "model": settings.model,
            "samples": settings.samples,
            "calls": self.calls,
            "cache_hits": self.hits,
            "tokens": self.tokens,
            "latency": round(self.latency, 4),
        }
        if self.collapsed:
            record["collapsed"] = {
                side: side in self.collapsed
                for side in ((ORIGINAL,) if self.variant == ORIGINAL else (ORIGINAL, "variant"))
            }
            record["collapse_reasons"] = dict(self.collapsed)
        if self.lint:
            record["lint"] = list(self.lint)
        if self._first is not None:
            record["prompt"] = trim(self._first[0], 2000)
            record["output"] = trim(self._first[1], 2000)
        if self._first_logprobs is not None:
            record["logprobs"] = self._first_logprobs.as_json()
        if worst is not None:
            c = worst
            record.update(
                score=round(c.score, 6),
                noise_floor=round(c.noise_floor, 6),
                sample_scores=[round(s, 6) for s in c.sample_scores],
                original_prompt=trim(c.original_prompt, 2000),
                variant_prompt=trim(c.variant_prompt, 2000),
                original_output=trim(c.original_outputs[0], 2000),
                variant_output=trim(c.variant_outputs[0], 2000),
            )
            if c.logprobs is not None:
                record["logprobs"] = c.logprobs.as_json()
            if c.margins is not None:
                record.update(
                    first_token_margins=[None if m is None else round(m, 4) for m in c.margins],
                    near_tie=c.near_tie,
                )
            if c.extract is not None:
                record.update(
                    extract=c.extract,
                    original_extracted=c.original_extracted,
                    variant_extracted=c.variant_extracted,
                )
            if c.compared != "text":
                record["compared"] = c.compared
            if c.notes:
                record["notes"] = list(c.notes)
        if any(isinstance(c, CallComparison) for c in compared) or self.observed:
            record["comparisons"] = [
                {
                    "source": getattr(c, "source", "llm"),
                    "score": round(c.score, 6),
                    "passed": c.passed,
                    "differences": list(getattr(c, "differences", ())),
                    "original_output": trim(c.original_outputs[0], 500),
                    "variant_output": trim(c.variant_outputs[0], 500),
                }
                for c in compared
            ]
            record["observed"] = [
                trim(json.dumps(v, ensure_ascii=False), 500) for v in self.observed
            ]
        return record

    def _collapse_note(self) -> str:
        notes = [
            f"\n  COLLAPSED {side} output: {reason}"
            + (" (every variant is compared with a degenerate answer)" if side == ORIGINAL else "")
            for side, reason in sorted(self.collapsed.items(), key=lambda kv: kv[0] != ORIGINAL)
        ]
        return "".join(notes)

    def verdict(self) -> Verdict:
        if self.variant == ORIGINAL:
            if self.observed:
                self.session.observed.save(self.plan.test, self.observed, self.original_keys)
            return Verdict("passed")
        observed, why_not = self._observed_records() if self.observed else ([], "")
        if not self.records and not observed:
            reason = why_not or (
                "the test made no model call the plugin could see (no llm() call, no call through"
                " litellm, openai or anthropic) and observed nothing"
            )
            return Verdict(
                "skipped", f"variant {self.variant!r}: nothing compared: {reason}", None, True
            )
        self.records += observed
        compared = [c for c in self.records if c is not None]
        if not compared:
            return Verdict("skipped", f"variant {self.variant!r} leaves the prompt unchanged")
        worst = min(compared, key=lambda c: c.score)
        failed = [c for c in compared if not c.passed]
        if failed:
            message = "\n\n".join(describe(self.variant, c) for c in failed)
            return Verdict("failed", message + self._collapse_note(), worst.score)
        if self.session.baseline is not None:
            regressed = check(
                {
                    "test": self.plan.test,
                    "variant": self.variant,
                    "score": worst.score,
                    "metric": worst.metric,
                },
                self.session.baseline,
                self.plan.settings.baseline_tolerance,
            )
            if regressed:
                return Verdict("failed", regressed, worst.score)
        return Verdict("passed", score=worst.score)
