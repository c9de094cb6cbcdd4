"""Collection: the marker's arguments, variant ordering and markers the plugin cannot honour."""

from __future__ import annotations

from typing import Any

import pytest

from .item_run import ItemPlan
from .session import test_id
from .settings import (
    MARKER_KEYS,
    Settings,
    SettingsError,
)
from .stash import PARAM, PLAN
from .variants import ORIGINAL

#: the module that defines the plugin's own ``llm`` fixture
PLUGIN = "pytest_promptpert.plugin"


def marker_kwargs(definition: pytest.Function | pytest.Item) -> dict[str, Any] | None:
    """The promptpert markers' arguments, the closest marker winning key by key."""
    markers = list(definition.iter_markers("promptpert"))
    if not markers:
        return None
    merged: dict[str, Any] = {}
    for marker in reversed(markers):  # farthest first, so closer ones overwrite
        if len(marker.args) > 1:
            raise SettingsError(
                f"@pytest.mark.promptpert takes at most one positional argument (variants),"
                f" got {marker.args!r}"
            )
        kwargs = dict(marker.kwargs)
        if marker.args:
            kwargs["variants"] = marker.args[0]
        merged.update({k: v for k, v in kwargs.items() if v is not None or k not in MARKER_KEYS})
    return merged


def variant_param(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get(PARAM) if callspec is not None else None


def unhonoured(item: pytest.Item) -> str | None:
    """Why the promptpert marker on *item* does nothing (or less than asked), if it does."""
    if item.get_closest_marker("promptpert") is None:
        return None
    if PLAN not in item.stash:
        if type(item).__name__ == "TestCaseFunction":
            return (
                "@pytest.mark.promptpert is ignored on unittest.TestCase methods (pytest cannot"
                " parametrize them); write the test as a plain pytest function or class"
            )
        return (
            "@pytest.mark.promptpert is ignored here: it was applied after collection (e.g. in"
            " pytest.param(..., marks=...)); put it on the test function, its class or module"
        )
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    defs = fixtureinfo.name2fixturedefs.get("llm") if fixtureinfo is not None else None
    if defs and getattr(defs[-1].func, "__module__", PLUGIN) != PLUGIN:
        return (
            "a fixture named 'llm' shadows pytest-promptpert's llm fixture: its calls are"
            " perturbed and compared only where they reach the model through litellm, openai or"
            " anthropic (intercepted); rename it, or call promptpert.observe(result)"
        )
    return None


def originals_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """*items* with each test's ``original`` item moved before its first variant item."""
    originals: dict[str, pytest.Item] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get(PARAM) == ORIGINAL:
            originals[test_id(item.nodeid, ORIGINAL)] = item
    if not originals:
        return items
    ordered: list[pytest.Item] = []
    placed: set[str] = set()
    for item in items:
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get(PARAM) if callspec is not None else None
        test = test_id(item.nodeid, variant) if variant is not None else None
        if test is None or test not in originals:
            ordered.append(item)
        elif test not in placed:
            placed.add(test)
            ordered.append(originals[test])
            if variant != ORIGINAL:
                ordered.append(item)
        elif variant != ORIGINAL:
            ordered.append(item)
    return ordered


def item_plans(
    items: list[pytest.Item], by_definition: dict[str, Settings]
) -> list[tuple[pytest.Item, ItemPlan]]:
    """Each expanded item's plan: its test, variant, settings and the variants beside it."""
    selected: dict[str, list[str]] = {}
    plans: list[tuple[pytest.Item, str, Settings, str]] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or PARAM not in callspec.params:
            continue
        variant = callspec.params[PARAM]
        definition = f"{item.nodeid.split('[', 1)[0]}"
        test = test_id(item.nodeid, variant)
        plans.append((item, variant, by_definition[definition], test))
        if variant != ORIGINAL:
            selected.setdefault(test, []).append(variant)
    return [
        (item, ItemPlan(test, variant, settings, tuple(selected.get(test, ()))))
        for item, variant, settings, test in plans
    ]
