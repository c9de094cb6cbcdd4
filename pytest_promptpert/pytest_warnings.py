"""The warnings pytest-promptpert issues under pytest (``-W error::...`` makes them fatal)."""

from __future__ import annotations

import pytest

from . import warning_types


class UnreadSettingsWarning(pytest.PytestWarning, warning_types.PromptpertWarning):
    """Settings that pytest-promptpert does not read, though they look meant for it.

    A ``[tool.promptpert]`` table in a ``pyproject.toml`` other than the rootdir's, or a
    ``PROMPTPERT_*`` environment variable that names no setting.
    """


class PromptpertWarning(pytest.PytestWarning):
    """Something pytest-promptpert could not do as asked (``-W error::...`` makes it fatal)."""


class NothingComparedWarning(PromptpertWarning):
    """A variant item compared nothing: no model call the plugin could see, nothing observed."""


class MarkerIgnoredWarning(PromptpertWarning):
    """A ``promptpert`` marker the plugin cannot honour on this test."""


class UnknownEndpointWarning(PromptpertWarning):
    """A model call to an API shape the plugin does not understand went through untouched."""


class ManifestWarning(PromptpertWarning):
    """The cache directory's prefetch manifest could not be used (damaged, or not ours)."""
