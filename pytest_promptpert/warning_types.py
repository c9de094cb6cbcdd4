"""The warnings pytest-promptpert emits: one family, which ``-W`` filters can name.

The core imports no pytest, so its warnings are plain ``UserWarning`` subclasses. Under pytest
the plugin calls :func:`emit_also_as` with ``pytest.PytestWarning``: each warning is then
emitted as a subclass of both, so ``-W error::pytest.PytestWarning`` and
``-W ignore::pytest_promptpert.CacheWarning`` both apply.
"""

from __future__ import annotations

import threading
import warnings


class PromptpertWarning(UserWarning):
    """Base of every warning pytest-promptpert emits."""


class CacheWarning(PromptpertWarning):
    """Something was wrong with the cache directory and was dealt with."""


_lock = threading.Lock()
_also: type[Warning] | None = None
_emitted_as: dict[type[PromptpertWarning], type[PromptpertWarning]] = {}


def emit_also_as(base: type[Warning]) -> None:
    """Emit every warning from now on as a subclass of *base* as well (pytest's category)."""
    global _also
    with _lock:
        if _also is not base:
            _also = base
            _emitted_as.clear()


def _category(category: type[PromptpertWarning]) -> type[PromptpertWarning]:
    with _lock:
        if _also is None or issubclass(category, _also):
            return category
        made = _emitted_as.get(category)
        if made is None:
            # Same name, module and doc: the summary shows "CacheWarning", as the user wrote it.
            made = type(
                category.__name__,
                (category, _also),
                {"__module__": category.__module__, "__doc__": category.__doc__},
            )
            _emitted_as[category] = made
        return made


def warn(warning: PromptpertWarning, stacklevel: int = 2) -> None:
    """``warnings.warn(warning)``, in pytest's category too when under pytest."""
    warnings.warn(_category(type(warning))(*warning.args), stacklevel=stacklevel + 1)
