"""The HTML report: one self-contained file around a heatmap of tests by variants.

Everything is inline (CSS, JS, SVG) and a Content-Security-Policy forbids every fetch, so the
file opens offline and from a CI artifact. Prompts and outputs are untrusted text: they reach
the page only HTML-escaped, or as JSON in a non-executed ``<script type="application/json">``
block with ``<``, ``>`` and ``&`` escaped, and the script renders them with ``textContent``.
Nothing here imports pytest.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from html import escape
from itertools import pairwise
from typing import Any

from .findings import interval_text
from .logprob_report import WARNING_SHIFT, detail_lines, shift_text
from .report import format_cost, format_score
from .scoring import FAILED_OUTCOMES
from .variants import BUILTIN_VARIANTS, ORIGINAL

Result = Mapping[str, Any]
Segment = tuple[str, str]  # ("=" | "-" | "+", text)

# Colour stops of the heatmap (ColorBrewer RdYlGn): 0 red, 0.5 yellow, 1 green.
STOPS = ((0.0, (215, 48, 39)), (0.5, (254, 224, 139)), (1.0, (26, 152, 80)))
_TOKENS = re.compile(r"\w+|\s+|[^\w\s]+")
_VISIBLE_WHITESPACE = str.maketrans({" ": "·", "\t": "→\t", "\n": "↵\n"})


def score_colour(score: float) -> str:
    """``#rrggbb`` for a score in [0, 1], red through yellow to green."""
    score = min(1.0, max(0.0, score))
    for (x0, c0), (x1, c1) in pairwise(STOPS):
        if score <= x1:
            t = (score - x0) / (x1 - x0)
            r, g, b = (round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))
            return f"#{r:02x}{g:02x}{b:02x}"
    raise AssertionError("unreachable")  # pragma: no cover


def _text_colour(background: str) -> str:
    r, g, b = (int(background[i : i + 2], 16) for i in (1, 3, 5))
    return "#111827" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


def word_diff(original: str, variant: str) -> tuple[list[Segment], list[Segment]]:
    """Word-level diff: the original's segments ("=", "-") and the variant's ("=", "+").

    A change that is only whitespace is made visible (· ↵ →): whitespace variants make no
    other change, and an inserted space would otherwise be an empty highlight.
    """
    left: list[Segment] = []
    right: list[Segment] = []
    for same, old, new in _chunks(_TOKENS.findall(original), _TOKENS.findall(variant)):
        if same:
            left.append(("=", old))
            right.append(("=", new))
            continue
        if old:
            left.append(("-", _visible(old)))
        if new:
            right.append(("+", _visible(new)))
    return left, right


def _chunks(a: list[str], b: list[str]) -> list[tuple[bool, str, str]]:
    """(unchanged?, old text, new text) runs; a lone space between two changes joins them."""
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    chunks: list[tuple[bool, str, str]] = []
    for n, (op, i1, i2, j1, j2) in enumerate(opcodes):
        old, new = "".join(a[i1:i2]), "".join(b[j1:j2])
        inner = 0 < n < len(opcodes) - 1
        same = op == "equal" and not (inner and old.isspace())
        if chunks and not same and not chunks[-1][0]:
            _, old_before, new_before = chunks.pop()
            old, new = old_before + old, new_before + new
        chunks.append((same, old, new))
    return chunks


def _visible(changed: str) -> str:
    return changed.translate(_VISIBLE_WHITESPACE) if changed.isspace() else changed


def _variant_order(results: Sequence[Result]) -> list[str]:
    """Columns: built-in variants in catalog order, then the others (custom, composed) sorted."""
    present = {str(r["variant"]) for r in results} - {ORIGINAL}
    builtin = [v.name for v in BUILTIN_VARIANTS if v.name in present]
    return builtin + sorted(present - set(builtin))


def _test_order(results: Sequence[Result]) -> list[str]:
    """Rows: the tests with most failing variants first, then the lowest score, then by name."""
    failures: dict[str, int] = {}
    lowest: dict[str, float] = {}
    for r in results:
        test = str(r["test"])
        failures.setdefault(test, 0)
        lowest.setdefault(test, 2.0)
        if r["variant"] != ORIGINAL:
            failures[test] += r.get("outcome") in FAILED_OUTCOMES
            if r.get("score") is not None:
                lowest[test] = min(lowest[test], float(r["score"]))
    return sorted(failures, key=lambda t: (-failures[t], lowest[t], t))


def _detail(result: Result) -> dict[str, Any]:
    """What the detail panel shows for one cell."""
    prompts = word_diff(
        str(result.get("original_prompt", "")), str(result.get("variant_prompt", ""))
    )
    outputs = word_diff(
        str(result.get("original_output", "")), str(result.get("variant_output", ""))
    )
    return {
        "nodeid": result["nodeid"],
        "variant": result["variant"],
        "metric": result.get("metric"),
        "threshold": result.get("threshold"),
        "score": result.get("score"),
        "outcome": result.get("outcome"),
        "noise_floor": result.get("noise_floor"),
        "sample_scores": result.get("sample_scores", []),
        "message": result.get("message", "") or _judged(result),
        "compared": "original_prompt" in result,
        "prompts": prompts,
        "outputs": outputs,
        "logprobs": detail_lines(result),
    }


def _judged(result: Result) -> str:
    """What was compared besides the outputs: extracted values, differences, judge reasons."""
    lines = []
    if result.get("extract") is not None:
        lines.append(
            f"extract {result['extract']!r}: {result.get('original_extracted')!r}"
            f" vs {result.get('variant_extracted')!r}"
        )
    return "\n".join(lines + [str(note) for note in result.get("notes", [])])


def _json_for_script(data: object) -> str:
    # In a <script> block only "</script" and "<!--" could end or confuse it; escaping every
    # <, > and & leaves no way out, and JSON.parse turns the escapes back into the characters.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_OUTCOME_WORDS = {"xfailed": "expected divergence, xfail", "xpassed": "xfail that held"}


def _cell(result: Result, index: int) -> str:
    outcome = str(result.get("outcome"))
    score = result.get("score")
    classes = ["cell", f"o-{escape(outcome)}"]
    if score is not None:
        background = score_colour(float(score))
        style = f"background-color:{background};color:{_text_colour(background)}"
        label = f"{float(score):.2f}"
    else:
        style, label = "", {"skipped": "skip", "error": "error"}.get(outcome, "-")
        classes.append("no-score")
    if result.get("excused"):
        classes.append("excused")
    title = f"{result['variant']}: {format_score(score)} ({_OUTCOME_WORDS.get(outcome, outcome)})"
    if outcome == "xfailed" and score is not None:
        label += "ˣ"  # an expected divergence: marked, never painted as a failure
    label, title = _finding_marks(result, classes, label, title)
    return (
        f'<td class="{" ".join(classes)}" tabindex="0" data-index="{index}"'
        f' data-test="{escape(str(result["test"]))}"'
        f' data-variant="{escape(str(result["variant"]))}"'
        f' data-score="{"" if score is None else f"{float(score):.6g}"}"'
        f' data-outcome="{escape(outcome)}" style="{style}" title="{escape(title)}">'
        f"{escape(label)}</td>"
    )


def _finding_marks(result: Result, classes: list[str], label: str, title: str) -> tuple[str, str]:
    """A collapsed output (⚠) or a failure within provider noise (≈) marked on the cell."""
    reasons = result.get("collapse_reasons") or {}
    if reasons:
        classes.append("collapsed")
        label += " ⚠"
        title += "".join(f"\ncollapsed {side} output: {why}" for side, why in reasons.items())
    if result.get("noise"):
        classes.append("noise")
        label += " ≈"
        title += "\nwithin provider noise: this test's control failed"
    if result.get("ignores_input"):
        title += "\nthe same output for every variant and another test: input ignored?"
    logprobs = result.get("logprobs") or {}
    shift = logprobs.get("shift")
    if shift and result.get("outcome") == "passed" and shift["delta"] <= WARNING_SHIFT:
        classes.append("shifted")
        label += " ↓"
        title += f"\nearly warning: log-prob shift {shift_text(logprobs)}"
    return label, title


def _original_cell(result: Result | None) -> str:
    if result is None:
        return '<td class="orig">-</td>'
    outcome = str(result.get("outcome"))
    marks = {"passed": "✓", "xpassed": "✓", "skipped": "-", "xfailed": "x"}
    mark = marks.get(outcome, "✗")
    classes = ["orig", f"o-{escape(outcome)}"]
    mark, title = _finding_marks(result, classes, mark, f"original: {outcome}")
    return f'<td class="{" ".join(classes)}" title="{escape(title)}">{escape(mark)}</td>'


def _heatmap(results: Sequence[Result]) -> tuple[str, list[dict[str, Any]]]:
    """The heatmap table and the detail record of each cell (by ``data-index``)."""
    variants = _variant_order(results)
    by_pair = {(str(r["test"]), str(r["variant"])): r for r in results}
    head = "".join(
        f'<th class="col" title="{escape(v)}"><span>{escape(v)}</span></th>' for v in variants
    )
    rows: list[str] = []
    details: list[dict[str, Any]] = []
    for test in _test_order(results):
        cells = []
        for variant in variants:
            result = by_pair.get((test, variant))
            if result is None:
                cells.append('<td class="empty"></td>')
                continue
            cells.append(_cell(result, len(details)))
            details.append(_detail(result))
        rows.append(
            f'<tr><th class="test" title="{escape(test)}">{escape(test)}</th>'
            f"{_original_cell(by_pair.get((test, ORIGINAL)))}{''.join(cells)}</tr>"
        )
    table = (
        '<table id="heatmap" class="heatmap"><thead><tr><th class="corner">test</th>'
        f'<th class="col"><span>original</span></th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return table, details


def _sensitivity_svg(variants: Mapping[str, Mapping[str, Any]]) -> str:
    """Horizontal bars: the share of tests in which each variant changed the behaviour."""
    if not variants:
        return '<p class="muted">No variant was compared.</p>'
    ranked = sorted(variants.items(), key=lambda kv: (-kv[1]["share"], kv[0]))
    label_w = 12 + 7 * max(len(name) for name in variants)
    bar_w, row_h = 360, 24
    width, height = label_w + bar_w + 330, row_h * len(ranked) + 8
    parts = []
    for i, (name, s) in enumerate(ranked):
        y = 4 + i * row_h
        w = max(1.0, bar_w * float(s["share"]))
        parts.append(
            f'<g class="bar" data-variant="{escape(name)}" data-share="{float(s["share"]):.6g}">'
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(name)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="16" class="track"/>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="16"'
            ' class="share"/>'
            f'<text x="{label_w + bar_w + 8}" y="{y + 16}">{s["failed"]} of {s["tests"]}'
            f" ({float(s['share']):.0%}{_interval(s)})</text></g>"
        )
    return (
        f'<svg class="bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="share of tests each variant changed">{"".join(parts)}</svg>'
    )


def _interval(stats: Mapping[str, Any]) -> str:
    if "low" not in stats:
        return ""
    return f"; {escape(interval_text(stats))}"


def _summary_cards(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    robustness = "n/a" if s["robustness"] is None else f"{float(s['robustness']):.0%}"
    counted = s["passed"] + s["failed"] + s["errors"]
    excused = f", {s['excused']} excused by the gate" if s.get("excused") else ""
    cards = [
        ("robustness", robustness, f"{s['passed']} of {counted} variant items held"),
        (
            "failed",
            s["failed"],
            f"{_plural(s['errors'], 'error')}, {s['skipped']} skipped{excused}",
        ),
        ("expected", s.get("xfailed", 0), "divergences marked xfail, not in the score"),
        ("tests", s["tests"], f"{s['variant_items']} variant items"),
        ("model calls", s["calls"], f"{s['cache_hits']} cache hits, {s['cache_misses']} misses"),
        ("tokens", s["tokens"], f"est. cost {format_cost(float(s['cost']))}"),
    ]
    return "".join(
        f'<div class="card" data-card="{escape(name)}"><div class="label">{escape(name)}</div>'
        f'<div class="value">{escape(str(value))}</div><div class="sub">{escape(sub)}</div></div>'
        for name, value, sub in cards
    )


def _findings(report: Mapping[str, Any]) -> str:
    """The run's findings above the heatmap: noise, collapsed outputs, inputs ignored, lint."""
    s = report["summary"]
    items = []
    controls = s.get("controls") or {}
    if controls.get("failed"):
        items.append(
            f"Provider noise: control failed in {controls['failed']} of {controls['tests']}"
            f" tests; {controls.get('noise_failures', 0)} variant failures there (≈) are not"
            " counted in the robustness score."
        )
    for c in s.get("collapsed") or []:
        items.append(
            f"Collapsed {'ORIGINAL' if c['variant'] == ORIGINAL else 'variant'} output ⚠:"
            f" <code>{escape(str(c['test']))}</code> [{escape(str(c['variant']))}]:"
            f" {escape(str(c['reason']))}"
        )
    for test in s.get("ignores_input") or []:
        items.append(
            f"Same output for every variant and another test (input ignored?):"
            f" <code>{escape(str(test))}</code>"
        )
    for warning in s.get("logprob_warnings") or []:
        items.append(
            f"Early warning ↓: <code>{escape(str(warning['nodeid']))}</code> passed, but made"
            f" the original's first answer tokens less likely (log-prob shift"
            f" {float(warning['shift']):+.2f})"
        )
    for finding in s.get("lint") or []:
        items.append(
            f"Risky prompt: <code>{escape(str(finding.get('test')))}</code>:"
            f" {escape(str(finding.get('message')))}"
        )
    if not items:
        return ""
    rows = "".join(f"<li>{item}</li>" for item in items)
    return f'<section class="findings"><h2>Findings</h2><ul>{rows}</ul></section>'


def _gate_banner(report: Mapping[str, Any]) -> str:
    gate = report["summary"].get("gate")
    if not gate:
        return ""
    status = str(gate["status"])
    kind = "failed" if status in ("failed", "incomplete") else status.replace(" ", "-")
    return (
        f'<p class="gate gate-{escape(kind)}" data-gate="{escape(status)}">'
        f"{escape(str(gate['line']))}</p>"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _legend(threshold: float) -> str:
    stops = ", ".join(f"{score_colour(x / 10)} {x * 10}%" for x in range(11))
    return (
        '<div class="legend"><span>0</span>'
        f'<div class="ramp" style="background:linear-gradient(to right, {stops})">'
        f'<div class="mark" style="left:{threshold * 100:.1f}%" title="threshold"></div></div>'
        f'<span>1</span><span class="muted">similarity to the original\'s output;'
        f" threshold {threshold:g} marked; outlined red: failed; outlined violet with"
        f" ˣ: expected divergence (xfail); ↓: passed, but the log-probabilities moved"
        " (an early warning)</span></div>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The whole HTML page for a JSON report as built by :func:`report.build_json`."""
    results: Sequence[Result] = report["results"]
    table, details = _heatmap(results)
    script = _SCRIPT
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    meta = (
        f"model {report.get('model')} · metric {report.get('metric')} ·"
        f" threshold {report.get('threshold')} · samples {report.get('samples')}"
    )
    return _PAGE.format(
        csp=escape(csp),
        style=_STYLE,
        meta=escape(meta),
        version=escape(str(report.get("plugin_version", ""))),
        cards=_summary_cards(report),
        findings=_findings(report),
        gate=_gate_banner(report),
        legend=_legend(float(report.get("threshold", 0.6))),
        heatmap=table,
        bars=_sensitivity_svg(report["summary"].get("variants", {})),
        data=_json_for_script(details),
        script=script,
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>promptpert report</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>promptpert <span class="muted">prompt-robustness report</span></h1>
<p class="muted">{meta} · pytest-promptpert {version}</p>
{gate}
<div class="cards">{cards}</div>
</header>
{findings}
<main>
<section>
<h2>Tests &times; variants</h2>
{legend}
<div class="scroll">{heatmap}</div>
<p class="muted hint">Hover a cell to compare; click to pin it.</p>
</section>
<section id="detail" class="detail" aria-live="polite">
<h2 id="d-title">Select a cell</h2>
<p id="d-meta" class="muted"></p>
<p id="d-message" class="message"></p>
<p id="d-logprobs" class="logprobs"></p>
<div class="pair">
<div><h3>original prompt</h3><pre id="d-original-prompt"></pre></div>
<div><h3>variant prompt</h3><pre id="d-variant-prompt"></pre></div>
<div><h3>original output</h3><pre id="d-original-output"></pre></div>
<div><h3>variant output</h3><pre id="d-variant-output"></pre></div>
</div>
</section>
<section>
<h2>Variant sensitivity
<span class="muted">share of tests whose behaviour the variant changed</span></h2>
{bars}
</section>
</main>
<script type="application/json" id="promptpert-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""

_STYLE = """
:root { --fg:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f9fafb; --card:#fff; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
h1 { margin: 0 0 4px; font-size: 22px; } h2 { font-size: 16px; margin: 24px 0 8px; }
h3 { font-size: 12px; margin: 0 0 4px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
.muted { color: var(--muted); font-weight: normal; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 16px; min-width: 150px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; }
.card .value { font-size: 26px; font-weight: 600; }
.card .sub { color: var(--muted); font-size: 12px; }
.scroll { overflow-x: auto; background: var(--card); border: 1px solid var(--line);
  border-radius: 8px; padding: 8px; }
.heatmap { border-collapse: separate; border-spacing: 2px; }
.heatmap th.test { text-align: left; font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas,
  monospace; font-weight: normal; padding-right: 12px; white-space: nowrap; max-width: 420px;
  overflow: hidden; text-overflow: ellipsis; }
.heatmap th.col { vertical-align: bottom; height: 120px; padding: 0; font-weight: 500;
  font-size: 12px; }
.heatmap th.col span { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap;
  display: inline-block; padding: 4px 0; max-height: 180px; overflow: hidden;
  text-overflow: ellipsis; }
.heatmap th.corner { text-align: left; vertical-align: bottom; color: var(--muted);
  font-weight: normal; }
.heatmap td { width: 44px; min-width: 44px; height: 28px; text-align: center;
  font: 11px ui-monospace, Menlo, Consolas, monospace; border-radius: 4px; }
.heatmap td.cell { cursor: pointer; }
.heatmap td.cell:hover, .heatmap td.cell:focus { outline: 2px solid #1f2937; outline-offset: 1px; }
.heatmap td.cell.pinned { outline: 3px solid #2563eb; outline-offset: 1px; }
.heatmap td.o-failed { font-weight: 700; box-shadow: inset 0 0 0 2px #7f1d1d; }
.heatmap td.o-failed.excused { box-shadow: inset 0 0 0 2px #7f1d1d, inset 0 0 0 4px #fff; }
.heatmap td.o-xfailed { font-style: italic; box-shadow: inset 0 0 0 2px #6d28d9; }
.heatmap td.orig.o-xfailed { color: #6d28d9; }
.heatmap td.no-score { background: #eef0f3; color: var(--muted); }
.heatmap td.o-error { background: #4b5563; color: #fff; }
.heatmap td.orig { color: #15803d; font-weight: 700; }
.heatmap td.collapsed { box-shadow: inset 0 0 0 3px #7c2d12; }
.heatmap td.orig.collapsed { color: #7c2d12; background: #fed7aa; }
.heatmap td.noise { background-image: repeating-linear-gradient(45deg, transparent 0 6px,
  rgba(255,255,255,.45) 6px 9px); }
.heatmap td.shifted { box-shadow: inset 0 -3px 0 0 #b45309; }
.findings li { margin: 2px 0; } .findings code { font-size: 12px; }
.heatmap td.orig.o-failed, .heatmap td.orig.o-error { color: #b91c1c; }
.heatmap td.empty { background: transparent; }
.gate { margin: 12px 0 0; padding: 8px 12px; border-radius: 6px; font-weight: 600; }
.gate-passed { background: #dcfce7; color: #166534; }
.gate-failed { background: #fee2e2; color: #991b1b; }
.gate-no-score { background: #f3f4f6; color: var(--muted); }
.legend { display: flex; align-items: center; gap: 8px; margin: 0 0 8px; font-size: 12px; }
.legend .ramp { position: relative; width: 240px; height: 12px; border-radius: 3px; }
.legend .mark { position: absolute; top: -3px; width: 2px; height: 18px; background: #111827; }
.hint { font-size: 12px; }
.detail { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 4px 16px 16px; margin-top: 16px; }
.detail h2 { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
.message { white-space: pre-wrap; color: #991b1b; font-size: 13px; }
.message:empty { display: none; }
.logprobs { white-space: pre-wrap; font: 12.5px/1.5 ui-monospace, Menlo, Consolas, monospace; }
.logprobs:empty { display: none; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.pair pre { margin: 0; padding: 8px 10px; min-height: 2.5em; max-height: 320px; overflow: auto;
  white-space: pre-wrap; word-break: break-word; background: var(--bg);
  border: 1px solid var(--line); border-radius: 6px; font: 12.5px/1.5 ui-monospace, Menlo,
  Consolas, monospace; }
del { background: #fee2e2; color: #991b1b; text-decoration: line-through; border-radius: 2px; }
ins { background: #dcfce7; color: #166534; text-decoration: none; border-radius: 2px; }
.bars { max-width: 100%; height: auto; font: 12px system-ui, sans-serif; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; }
.bars .track { fill: #f3f4f6; }
.bars .share { fill: #dc2626; }
.bars text { fill: #374151; }
"""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("promptpert-data").textContent);
  var table = document.getElementById("heatmap");
  var pinned = null;
  function byId(id) { return document.getElementById(id); }
  function fill(id, segments) {
    var box = byId(id);
    box.textContent = "";
    segments.forEach(function (seg) {
      var el = document.createElement(seg[0] === "-" ? "del" : seg[0] === "+" ? "ins" : "span");
      el.textContent = seg[1];
      box.appendChild(el);
    });
  }
  function number(x) { return x === null || x === undefined ? "\\u2013" : Number(x).toFixed(3); }
  function show(cell) {
    var d = data[Number(cell.getAttribute("data-index"))];
    if (!d) { return; }
    byId("d-title").textContent = d.nodeid;
    var meta = d.outcome + " · " + d.metric + " " + number(d.score) +
      " (threshold " + number(d.threshold) + ")";
    if (d.noise_floor !== null && d.noise_floor !== undefined && d.noise_floor < 1) {
      meta += " · noise floor " + number(d.noise_floor);
    }
    if (d.sample_scores && d.sample_scores.length) {
      meta += " · sample scores " + d.sample_scores.map(number).join(", ");
    }
    byId("d-meta").textContent = meta;
    byId("d-message").textContent = d.message ||
      (d.compared ? "" : "Nothing was compared for this item (" + d.outcome + ").");
    byId("d-logprobs").textContent = (d.logprobs || []).join("\\n");
    fill("d-original-prompt", d.prompts[0]);
    fill("d-variant-prompt", d.prompts[1]);
    fill("d-original-output", d.outputs[0]);
    fill("d-variant-output", d.outputs[1]);
  }
  function pin(cell) {
    if (pinned) { pinned.classList.remove("pinned"); }
    pinned = cell;
    cell.classList.add("pinned");
    show(cell);
  }
  function cellOf(event) { return event.target.closest ? event.target.closest("td.cell") : null; }
  table.addEventListener("mouseover", function (e) { var c = cellOf(e); if (c) { show(c); } });
  table.addEventListener("focusin", function (e) { var c = cellOf(e); if (c) { show(c); } });
  table.addEventListener("mouseleave", function () { if (pinned) { show(pinned); } });
  table.addEventListener("click", function (e) { var c = cellOf(e); if (c) { pin(c); } });
  table.addEventListener("keydown", function (e) {
    var c = cellOf(e);
    if (c && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); pin(c); }
  });
  // Start on the worst cell, so the panel is never empty.
  var cells = Array.prototype.slice.call(table.querySelectorAll("td.cell[data-score]"))
    .filter(function (c) { return c.getAttribute("data-score") !== ""; });
  cells.sort(function (a, b) {
    return Number(a.getAttribute("data-score")) - Number(b.getAttribute("data-score"));
  });
  if (cells.length) { pin(cells[0]); }
})();
"""
