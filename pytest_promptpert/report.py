"""Text and data the plugin shows or writes; pure functions over settings and results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .compare import trim
from .findings import MIN_TESTS, finding_lines, interval_text, summary_fields, wilson
from .logprob_report import early_warnings
from .logprob_report import terminal_lines as logprob_lines
from .metrics import metric_name
from .redact import redact_url
from .scoring import (
    ERROR_OUTCOMES,
    EXPECTED_OUTCOMES,
    FAILED_OUTCOMES,
    ORIGINAL,
    PASSED_OUTCOMES,
    SKIPPED_OUTCOMES,
    GateVerdict,
    Result,
    measures_robustness,
    robustness_score,
    variant_results,
)
from .settings import Settings

#: Settings the header always shows; any other is shown when it is not the default.
_HEADER_KEYS = ("model", "api_base", "cache_dir", "cache", "variants", "metric", "threshold")


def header_line(settings: Settings) -> str:
    """``promptpert: model=openai/x (tests/pytest.ini), cache=... (auto), ...``.

    Each setting that is not the built-in default names where it came from, in parentheses.
    """

    def part(key: str, text: str) -> str:
        origin = settings.origin(key)
        return f"{text} ({origin})" if origin else text

    cache_origins = dict.fromkeys(o for k in ("cache_dir", "cache") if (o := settings.origin(k)))

    # A model nobody configured is the trap worth seeing: a configuration that was not found.
    model = f"model={settings.model}"
    parts = [part("model", model) if settings.origin("model") else f"{model} (built-in default)"]
    if settings.api_base:
        parts.append(part("api_base", f"api_base={redact_url(settings.api_base)}"))
    parts += [
        f"cache={settings.cache_dir} ({'; '.join([settings.cache, *cache_origins])})",
        part("variants", f"variants={','.join(settings.variants)}"),
        part("metric", f"metric={metric_name(settings.metric)}"),
        part("threshold", f"threshold={settings.threshold:g}"),
    ]
    for key in settings.sources:
        if key not in _HEADER_KEYS and settings.origin(key):
            parts.append(part(key, f"{key}={_shown(getattr(settings, key))}"))
    return "promptpert: " + ", ".join(parts)


def _shown(value: object) -> str:
    if isinstance(value, str) and "://" in value:
        return redact_url(value)  # cache_url may carry a password
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(getattr(value, "__name__", value))


# --- the results of a run ------------------------------------------------------------------
#
# The plugin hands these functions a list of per-item result dicts (``ItemRun.result()``) and
# the merged client statistics. Nothing below imports pytest, so a script can rebuild the
# terminal summary, the Markdown summary or the JSON report from a saved report's "results".
#
# JSON report, schema version 1 (``build_json``). Keys are only ever added within a version.
#
#   {
#     "version": 1,
#     "plugin_version": "0.1.0",
#     "model": "local/gemma-3-270m",      # the session's model (a marker cannot change it)
#     "metric": "token_set_ratio",        # session defaults; markers may override per test,
#     "threshold": 0.6,                   #   so each result carries its own metric/threshold
#     "samples": 1,
#     "variants": ["add_period", ...],    # the session's configured variant/family names
#     "fail_under": 0.9 | null,
#     "baseline_tolerance": 0.05,
#     "summary": {
#       "robustness": 0.75 | null,        # passed / (passed + failed + errors) over variant
#       "tests": 3,                       #   items; distinct marked tests (node id w/o variant)
#       "variant_items": 12,              # items whose variant is not "original"
#       "passed": 9, "failed": 2,         # variant items; xpassed counts as passed
#       "skipped": 1, "errors": 0,
#       "xfailed": 0,                     # expected divergences: not in the score
#       "excused": 0,                     # failed items the gate showed as xfailed
#       "original_failures": 0,           # "original" items that failed or errored
#       "gate": null | {                  # with --promptpert-fail-under (scoring.GateVerdict)
#         "fail_under": 0.7, "score": 0.75, "excused": 2, "line": "promptpert: gate ...",
#         "status": "passed" | "failed" | "no score" | "incomplete"
#       },
#       "calls": 10,                      # model calls made (cache misses that were called)
#       "cache_hits": 30, "cache_misses": 10, "call_errors": 0,
#       "prompt_tokens": 900, "completion_tokens": 334, "tokens": 1234,
#       "cost": 0.0012,                   # USD, estimated from litellm's offline price data
#       "variants": {                     # per-variant sensitivity, sorted by name; noise left out
#         "add_period": {"tests": 3, "failed": 1, "share": 0.333333,
#                        "low": 0.061492, "high": 0.79234,   # Wilson 95 % interval of share
#                        "insufficient_data": true}          # fewer than 5 tests
#       },
#       "noise": 1,                       # variant failures within provider noise (not counted)
#       "controls": {"tests": 2, "failed": 1, "noise_failures": 1},
#       "collapsed": [{"test": "...", "variant": "original", "reason": "..."}],
#       "ignores_input": ["tests/test_x.py::test_y"],   # one output everywhere, shared
#       "lint": [{"test": "...", "prompt": "...", "rule": "space_after_cue",
#                 "message": "...", "effect": "..."}],  # once per (prompt, rule)
#       "logprob_warnings": [{"nodeid": "...", "test": "...", "variant": "...",
#                             "shift": -2.31}]  # passing items with shift <= -1 (logprobs.py)
#     },
#     "results": [                        # one per item, sorted by nodeid
#       {
#         "nodeid": "tests/test_x.py::test_sign[add_period]",
#         "test": "tests/test_x.py::test_sign",
#         "variant": "add_period",        # "original" for the original item
#         "metric": "token_set_ratio", "threshold": 0.6,
#         "score": 0.42 | null,           # null: nothing was compared (original, skipped, error)
#         "outcome": "passed" | "failed" | "skipped" | "error" | "xfailed" | "xpassed",
#         "excused": true,                # only on a failure the gate showed as xfailed
#         "model": "...", "samples": 1,
#         "calls": 2, "cache_hits": 0, "tokens": 40,
#         # only when a comparison was made (the item's worst call):
#         "noise_floor": 1.0, "sample_scores": [...],
#         "original_prompt": "...", "variant_prompt": "...",     # trimmed to 2000 chars
#         "original_output": "...", "variant_output": "..."      # first sample, trimmed
#         # only when found: "collapsed": {"original": true, "variant": false},
#         #   "collapse_reasons": {"original": "..."}, "noise": true, "ignores_input": true,
#         #   "lint": [...]; the original item also has "prompt" and "output"
#         # where log-probabilities were probed (setting logprobs; logprobs.py):
#         #   "logprobs": {"original": {"token", "logprob", "margin", "top": [[token, logprob]],
#         #                             "generated": [...]} | null,
#         #                "variant": {...} | null,   # null in the original item
#         #                "shift": {"delta", "tokens", "bound", "token", "original_logprob",
#         #                          "variant_logprob", "first_token_bound"} | null,
#         #                "note": "..."}             # only when something is missing: why
#         # any further keys the plugin adds are passed through unchanged
#       }
#     ]
#   }

REPORT_VERSION = 1


def _decided(result: Result) -> bool:
    """Compared and judged: held or changed behaviour (not skipped, expected, or an error)."""
    outcome = result.get("outcome")
    return outcome in PASSED_OUTCOMES or outcome in FAILED_OUTCOMES


def _failed(result: Result) -> bool:
    return result.get("outcome") in FAILED_OUTCOMES


def variant_sensitivity(results: Iterable[Result]) -> dict[str, dict[str, Any]]:
    """Per variant: in how many tests it was compared, in how many it failed, the Wilson 95 %
    interval of that share, and whether the tests are too few to say (fewer than MIN_TESTS).
    Failures within provider noise are left out."""
    tally: dict[str, list[int]] = {}
    for result in variant_results(results):
        if _decided(result) and not result.get("noise"):
            counts = tally.setdefault(result["variant"], [0, 0])
            counts[0] += 1
            counts[1] += _failed(result)
    out: dict[str, dict[str, Any]] = {}
    for name, (tests, failed) in sorted(tally.items()):
        low, high = wilson(failed, tests)
        out[name] = {
            "tests": tests,
            "failed": failed,
            "share": round(failed / tests, 6),
            "low": round(low, 6),
            "high": round(high, 6),
            "insufficient_data": tests < MIN_TESTS,
        }
    return out


def summary(
    results: Sequence[Result], stats: Mapping[str, Any], gate: GateVerdict | None = None
) -> dict[str, Any]:
    """The numbers of a run: robustness, outcome counts of variant items, calls and cost."""
    variants = variant_results(results)
    outcomes = [r.get("outcome") for r in variants]
    return {
        "robustness": _rounded(robustness_score(results)),
        "tests": len({r["test"] for r in results}),
        "variant_items": len(variants),
        "passed": sum(o in PASSED_OUTCOMES for o in outcomes),
        "failed": sum(o in FAILED_OUTCOMES for o in outcomes),
        "skipped": sum(o in SKIPPED_OUTCOMES for o in outcomes),
        "errors": sum(o in ERROR_OUTCOMES for o in outcomes),
        "xfailed": sum(o in EXPECTED_OUTCOMES for o in outcomes),
        "excused": sum(bool(r.get("excused")) for r in variants),
        "original_failures": sum(
            r.get("outcome") in FAILED_OUTCOMES | ERROR_OUTCOMES
            for r in results
            if r.get("variant") == ORIGINAL
        ),
        "calls": int(stats.get("calls", 0)),
        "cache_hits": int(stats.get("hits", 0)),
        "cache_misses": int(stats.get("misses", 0)),
        "call_errors": int(stats.get("errors", 0)),
        "prompt_tokens": int(stats.get("prompt_tokens", 0)),
        "completion_tokens": int(stats.get("completion_tokens", 0)),
        "tokens": int(stats.get("tokens", 0)),
        "cost": float(stats.get("cost", 0.0)),
        "variants": variant_sensitivity(results),
        "noise": sum(bool(r.get("noise")) for r in results),
        **summary_fields(results),
        "logprob_warnings": early_warnings(results),
        "gate": None if gate is None else gate.as_json(),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def build_json(
    results: Sequence[Result],
    stats: Mapping[str, Any],
    settings: Settings,
    gate: GateVerdict | None = None,
) -> dict[str, Any]:
    """The JSON report (schema above): settings, summary and every result, sorted by nodeid."""
    return {
        "version": REPORT_VERSION,
        "plugin_version": _plugin_version(),
        "model": settings.model,
        "metric": metric_name(settings.metric),
        "threshold": settings.threshold,
        "samples": settings.samples,
        "variants": list(settings.variants),
        "fail_under": settings.fail_under,
        "baseline_tolerance": settings.baseline_tolerance,
        "summary": summary(results, stats, gate),
        "results": [dict(r) for r in sorted(results, key=lambda r: str(r["nodeid"]))],
    }


def _plugin_version() -> str:
    try:
        return version("pytest-promptpert")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


# --- terminal -------------------------------------------------------------------------------


def calls_line(stats: Mapping[str, Any]) -> str:
    return (
        f"model calls {int(stats.get('calls', 0))},"
        f" cache hits {int(stats.get('hits', 0))},"
        f" misses {int(stats.get('misses', 0))},"
        f" tokens {int(stats.get('tokens', 0))},"
        f" est. cost {format_cost(float(stats.get('cost', 0.0)))}"
    )


def format_cost(cost: float) -> str:
    # Small runs cost fractions of a cent; two decimals would show them all as $0.00.
    return f"${cost:.2f}" if cost == 0 or cost >= 1 else f"${cost:.4f}"


def format_score(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


def robustness_line(results: Sequence[Result]) -> str:
    s = summary(results, {})
    score = s["robustness"]
    counted = [r for r in variant_results(results) if measures_robustness(r)]
    passed = sum(r.get("outcome") in PASSED_OUTCOMES for r in counted)
    decided = sum(_decided(r) or r.get("outcome") in ERROR_OUTCOMES for r in counted)
    text = "n/a" if score is None else f"{score:.3f}"
    line = f"robustness {text} ({passed} of {decided} variant items passed"
    extras = [f"{s['skipped']} skipped"] if s["skipped"] else []
    extras += [f"{s['noise']} within provider noise, not counted"] if s["noise"] else []
    controls = s["controls"]["tests"]
    extras += [f"{controls} control{'s' * (controls != 1)} not counted"] if controls else []
    extras += [f"{s['errors']} error{'s' * (s['errors'] != 1)}"] if s["errors"] else []
    if s["xfailed"]:
        extras.append(f"{s['xfailed']} expected divergence{'s' * (s['xfailed'] != 1)} (xfail)")
    return line + "".join(f", {e}" for e in extras) + ")"


def terminal_summary(
    results: Sequence[Result], stats: Mapping[str, Any], verbosity: int = 0
) -> list[str]:
    """The lines of the terminal summary (no section separator); fewer with -q, more with -v."""
    if not results:
        return [f"promptpert: {calls_line(stats)}"] if _any_calls(stats) else []
    if verbosity < 0:
        return [
            *finding_lines(results),
            f"promptpert: {robustness_line(results)}; {calls_line(stats)}",
        ]
    table = _item_table(results) if verbosity >= 1 else _test_table(results)
    findings = finding_lines(results)
    lines = [*findings, *([""] if findings else []), *table, ""]
    lines += _sensitivity_lines(results)
    lines += _sensitive_test_lines(results)
    lines += _worst_pair_lines(results)
    lines += logprob_lines(results, verbosity)
    lines += [robustness_line(results), calls_line(stats)]
    return lines


def _any_calls(stats: Mapping[str, Any]) -> bool:
    return any(int(stats.get(key, 0)) for key in ("calls", "hits", "misses"))


def sort_key(result: Result) -> tuple[int, float, str]:
    """Failures first, then errors, then the lowest score; ties by node id."""
    outcome = result.get("outcome")
    rank = 0 if outcome in FAILED_OUTCOMES else 1 if outcome in ERROR_OUTCOMES else 2
    score = result.get("score")
    return (rank, 2.0 if score is None else float(score), str(result["nodeid"]))


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


OUTCOME_LABELS = {
    "passed": "passed",
    "failed": "FAILED",
    "skipped": "skipped",
    "error": "ERROR",
    "xfailed": "xfail",
    "xpassed": "XPASS",
}


def outcome_label(result: Result) -> str:
    outcome = str(result.get("outcome"))
    label = OUTCOME_LABELS.get(outcome, outcome)
    return f"{label} (excused)" if result.get("excused") else label


def _item_table(results: Sequence[Result]) -> list[str]:
    rows = [["item", "score", "threshold", "outcome"]]
    for r in sorted(results, key=sort_key):
        rows.append(
            [
                str(r["nodeid"]),
                format_score(r.get("score")),
                f"{float(r['threshold']):.3f}",
                outcome_label(r),
            ]
        )
    return _columns(rows)


def _by_test(results: Iterable[Result]) -> dict[str, list[Result]]:
    tests: dict[str, list[Result]] = {}
    for result in results:
        tests.setdefault(str(result["test"]), []).append(result)
    return tests


def _test_table(results: Sequence[Result]) -> list[str]:
    """One row per marked test: passed/compared variants, its worst variant, what failed."""
    rows: list[tuple[tuple[int, float, str], list[str]]] = []
    for test, items in _by_test(results).items():
        variants = sorted(variant_results(items), key=sort_key)
        decided = [r for r in variants if _decided(r)]
        worst = variants[0] if variants else None
        failed = [str(r["variant"]) for r in variants if _failed(r)]
        errors = [str(r["variant"]) for r in variants if r.get("outcome") in ERROR_OUTCOMES]
        expected = [str(r["variant"]) for r in variants if r.get("outcome") in EXPECTED_OUTCOMES]
        notes = [
            *failed,
            *(f"{name} (error)" for name in errors),
            *(f"{name} (xfail)" for name in expected),
        ]
        key = sort_key(worst) if worst else (3, 2.0, test)
        rows.append(
            (
                (key[0], key[1], test),
                [
                    test,
                    f"{len(decided) - len(failed)}/{len(decided)}",
                    str(worst["variant"]) if worst else "-",
                    format_score(worst.get("score")) if worst else "-",
                    ", ".join(notes) or "-",
                ],
            )
        )
    header = ["test", "passed", "worst variant", "score", "failed variants"]
    return _columns([header, *(row for _, row in sorted(rows))])


def _sensitivity_lines(results: Sequence[Result]) -> list[str]:
    sensitivity = variant_sensitivity(results)
    if not sensitivity:
        return []
    # By the interval's lower bound: one failure in one test does not outrank 8 in 10.
    ranked = sorted(sensitivity.items(), key=lambda kv: (-kv[1]["low"], -kv[1]["share"], kv[0]))
    width = max(len(name) for name in sensitivity)
    lines = ["variant sensitivity:"]
    for name, s in ranked:
        tests = f"{s['tests']} test{'s' * (s['tests'] != 1)}"
        lines.append(
            f"  {name.ljust(width)}  changed behaviour in {s['failed']} of {tests}"
            f" ({s['share']:.0%}; {interval_text(s)})"
        )
    return lines


def _sensitive_test_lines(results: Sequence[Result], limit: int = 5) -> list[str]:
    """The tests whose behaviour the most variants changed (noise and controls left out)."""
    ranked = []
    for test, items in _by_test(results).items():
        decided = [r for r in variant_results(items) if _decided(r) and measures_robustness(r)]
        failed = [r for r in decided if _failed(r)]
        if failed:
            ranked.append((-len(failed) / len(decided), -len(failed), test, len(decided), failed))
    if not ranked:
        return []
    lines = ["most sensitive tests:"]
    for _, _, test, decided_count, failed in sorted(ranked)[:limit]:
        names = ", ".join(str(r["variant"]) for r in failed)
        lines.append(f"  {test}  {len(failed)} of {decided_count} variants changed it ({names})")
    return lines


def _worst_pair_lines(results: Sequence[Result]) -> list[str]:
    """The least similar failing pair, outputs shown as repr so control characters are safe."""
    failing = [r for r in variant_results(results) if _failed(r) and r.get("score") is not None]
    if not failing:
        return []
    worst = min(failing, key=sort_key)
    score, threshold = float(worst["score"]), float(worst["threshold"])
    # Below the threshold, or the test's own check failed on this variant's output.
    bound = f"< {threshold:.3f}" if score < threshold else f"(threshold {threshold:.3f})"
    return [
        f"worst: {worst['nodeid']} {worst.get('metric', 'score')} {format_score(score)} {bound}",
        f"  original output: {trim(str(worst.get('original_output', '')), 120)!r}",
        f"  variant output:  {trim(str(worst.get('variant_output', '')), 120)!r}",
        *(f"  - {trim(str(note), 120)}" for note in worst.get("notes", [])[:3]),
    ]


def plan_lines(planned: Sequence[tuple[Any, int, float]], limit: int = 50) -> list[str]:
    """``--promptpert-plan``: the calls not in the cache, as (request, tokens, USD) triples."""
    tokens = sum(t for _, t, _ in planned)
    cost = sum(c for _, _, c in planned)
    lines = [
        f"promptpert plan: {len(planned)} model calls not in the cache,"
        f" ~{tokens} tokens, est. cost {format_cost(cost)} (no call was made)"
    ]
    for request, t, c in planned[:limit]:
        sample = f" sample {request.sample}" if request.sample else ""
        lines.append(
            f"  {request.model}{sample}: {trim(request.prompt, 80)!r} ~{t} tokens {format_cost(c)}"
        )
    if len(planned) > limit:
        lines.append(f"  ... and {len(planned) - limit} more")
    return lines
