"""End-to-end: pytester runs of the plugin against the fake provider on loopback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import SENTINEL_KEY

SIGN = "create a sign with a message on it that describes your situation"

SIGN_TEST = f'''
import pytest

@pytest.mark.promptpert(variants=["add_period", "strip_period", "lower_first", "uppercase"])
def test_sign(llm):
    assert llm("{SIGN}")
'''


def test_expands_and_flags_the_period_variant(project):
    pytester = project("period")
    pytester.makepyfile(SIGN_TEST)
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        [
            "*test_sign[[]original[]] PASSED*",
            "*test_sign[[]add_period[]] FAILED*",
            "*test_sign[[]strip_period[]] SKIPPED*",
            "*test_sign[[]lower_first[]] SKIPPED*",
            "*test_sign[[]uppercase[]] PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*variant 'add_period' changed the model's behaviour*",
            "*original prompt: 'create a sign with a message on it that describes your situation'",
            "*variant prompt:  'create a sign with a message on it that describes your situation.'",
        ]
    )
    result.stdout.fnmatch_lines(["*strip_period* leaves the prompt unchanged*"])
    result.assert_outcomes(passed=2, failed=1, skipped=2)
