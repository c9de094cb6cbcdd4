"""Hooks a ``conftest.py`` or another plugin implements to extend pytest-promptpert.

Example ``conftest.py`` (``optionalhook`` keeps it loadable with ``-p no:promptpert``)::

    import pytest

    @pytest.hookimpl(optionalhook=True)
    def pytest_promptpert_add_variants(config):
        return {"shout": lambda text: text.upper() + "!!!"}

    @pytest.hookimpl(optionalhook=True)
    def pytest_promptpert_add_metrics(config):
        return {"same_first_word": lambda a, b: float(a.split()[:1] == b.split()[:1])}

The new names can then be used in ``@pytest.mark.promptpert(variants=["shout"])``, in
``--promptpert-variants`` and in ``[tool.promptpert]`` like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest


@pytest.hookspec
def pytest_promptpert_add_variants(
    config: pytest.Config,
) -> Mapping[str, Callable[[str], str]] | None:
    """Return ``{name: function}`` of extra variants (``str -> str``, never raising).

    Names must be identifiers not already used; the built-in catalog is added by the
    plugin's own (``trylast``) implementation. A :class:`pytest_promptpert.Variant` may be given
    instead of a function to put the variant in a family of its own.
    """


@pytest.hookspec
def pytest_promptpert_add_metrics(
    config: pytest.Config,
) -> Mapping[str, Callable[[str, str], float]] | None:
    """Return ``{name: function}`` of extra metrics ``(original, variant) -> float in [0, 1]``."""


@pytest.hookspec(firstresult=True)
def pytest_promptpert_header(config: pytest.Config, settings: Any) -> str | None:
    """Return the header line, shown after "collected N items" when marked tests were collected.

    The first non-None answer wins; returning ``""`` hides the line.
    """
