"""Typed stash keys shared by the plugin's modules: per-run and per-item state."""

from __future__ import annotations

import pytest

from .item_run import ItemPlan, ItemRun
from .session import PromptpertSession
from .settings import Settings

SESSION = pytest.StashKey[PromptpertSession]()
#: the settings of each marked test definition (node id without parameters)
TEST_SETTINGS = pytest.StashKey[dict[str, Settings]]()
PLAN = pytest.StashKey[ItemPlan]()
ITEM_RUN = pytest.StashKey[ItemRun]()
#: (error class, model, headline) of each run-wide failure -> the item that showed it in full
RUN_WIDE = pytest.StashKey[dict[tuple[str, str, str], str]]()
#: the indirect parameter that carries the variant name
PARAM = "_promptpert_variant"
