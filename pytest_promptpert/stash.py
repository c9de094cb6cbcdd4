"""Typed stash keys shared by the plugin's modules: per-run and per-item state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the keys are typed, but importing the plugin must stay cheap
    from .item_run import ItemPlan, ItemRun
    from .session import PromptpertSession
    from .settings import Settings

SESSION: pytest.StashKey[PromptpertSession] = pytest.StashKey()
#: the settings of each marked test definition (node id without parameters)
TEST_SETTINGS: pytest.StashKey[dict[str, Settings]] = pytest.StashKey()
PLAN: pytest.StashKey[ItemPlan] = pytest.StashKey()
ITEM_RUN: pytest.StashKey[ItemRun] = pytest.StashKey()
#: (error class, model, headline) of each run-wide failure -> the item that showed it in full
RUN_WIDE: pytest.StashKey[dict[tuple[str, str, str], str]] = pytest.StashKey()
#: the indirect parameter that carries the variant name
PARAM = "_promptpert_variant"
