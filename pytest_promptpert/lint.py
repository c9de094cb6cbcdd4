"""Risky-prompt lint: formatting of a prompt that measurably changes a model's answers.

Each rule names a formatting habit and the variant that measures it; the measured effect (the
share of answers that changed when the variant was applied, on the bundled local model) ships
in ``lint_effects.json``, written by ``scripts/lint_effects.py``. Pure functions: no pytest, no
model call.
"""

# Curly quotes are what one of the rules looks for.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

EFFECTS_FILE = "lint_effects.json"

#: An answer cue ("Answer:", "A:") at the very end, followed by spaces or tabs.
_SPACE_AFTER_CUE = re.compile(r"(?:^|(?<=\s))([^\W\d_]+)[ \t]*:([ \t]+)\Z")
_DOUBLE_SPACE = re.compile(r"(?<=\S) {2,}(?=\S)")
CURLY = "“”‘’"


@dataclass(frozen=True)
class LintFinding:
    rule: str
    message: str
    #: what was measured for this rule, e.g. "changed 80-100% of answers (local/gemma-3-270m,
    #: 40 questions, greedy; scripts/lint_effects.py)"; "" where nothing was measured
    effect: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _first_cased(text: str) -> str:
    return next((ch for ch in text if ch.lower() != ch.upper()), "")


def check_prompt(text: str) -> list[LintFinding]:
    """The risky formatting in *text*, each finding with its measured effect."""
    found: list[tuple[str, str]] = []
    cue = _SPACE_AFTER_CUE.search(text)
    if cue:
        found.append(
            (
                "space_after_cue",
                f"whitespace {cue.group(2)!r} after the answer cue {cue.group(1) + ':'!r}"
                " at the end of the prompt",
            )
        )
    core = text.rstrip()
    if core and core[-1].isalnum():
        found.append(
            ("no_terminal_punctuation", f"ends without terminal punctuation: ...{core[-20:]!r}")
        )
    first = _first_cased(text)
    if first and first.islower():
        found.append(("lower_first", f"starts with a lower-case letter {first!r}"))
    doubled = _DOUBLE_SPACE.search(text)
    if doubled:
        at = text[max(0, doubled.start() - 10) : doubled.end() + 10]
        found.append(("double_space", f"doubled spaces between words: {at!r}"))
    curly = sorted({ch for ch in text if ch in CURLY})
    if curly:
        straight = sorted({ch for ch in text if ch in "\"'"})
        kind = "mixed straight and curly quotes" if straight else "curly quotes"
        found.append(("quotes", f"{kind}: {' '.join(curly + straight)}"))
    return [LintFinding(rule, message, effect_text(rule)) for rule, message in found]


@cache
def effects() -> Mapping[str, Any]:
    """The shipped table of measured effects (``{"rules": {rule: {...}}, ...}``)."""
    text = resources.files(__package__).joinpath(EFFECTS_FILE).read_text(encoding="utf-8")
    data: Mapping[str, Any] = json.loads(text)
    return data


def effect_text(rule: str) -> str:
    """One line: how much this formatting changed answers and where that was measured."""
    table = effects()
    entry = table.get("rules", {}).get(rule)
    if not entry:
        return ""
    parts = []
    for m in entry.get("measurements", []):
        parts.append(
            f"{m['variant']} changed {m['changed']} of {m['questions']} answers"
            f" ({m['changed'] / m['questions']:.0%}, {m['setting']})"
        )
    if not parts:
        return ""
    return f"{'; '.join(parts)} on {table.get('model')}, {table.get('source')}"


def lint_message(test: str, findings: list[dict[str, str]]) -> str:
    """The failure message of a test under ``--promptpert-lint``."""
    lines = [f"promptpert lint: risky formatting in {test}:"]
    for finding in findings:
        lines.append(f"  {finding['message']}")
        if finding.get("effect"):
            lines.append(f"    measured: {finding['effect']}")
    return "\n".join(lines)
