"""pytest-promptpert: prompt-robustness regression testing for pytest.

Importing this package is cheap: its names are imported on first use (pytest imports the
plugin on every run, marked tests or not), and litellm only when a model call is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import AuthenticationFailed, ProviderError
    from .cached import cached
    from .client import CachedLLM, CacheMissError, Stats
    from .compare import Comparison
    from .request import Completion, Request
    from .variants import BUILTIN_VARIANTS, Variant, VariantCatalog
    from .warning_types import CacheWarning, PromptpertWarning

__version__ = "0.1.0"

#: public name -> the module that defines it
_HOMES = {
    "AuthenticationFailed": "backend",
    "ProviderError": "backend",
    "cached": "cached",
    "CachedLLM": "client",
    "CacheMissError": "client",
    "Stats": "client",
    "Comparison": "compare",
    "Completion": "request",
    "Request": "request",
    "BUILTIN_VARIANTS": "variants",
    "Variant": "variants",
    "VariantCatalog": "variants",
    "CacheWarning": "warning_types",
    "PromptpertWarning": "warning_types",
}

__all__ = [
    "BUILTIN_VARIANTS",
    "AuthenticationFailed",
    "CacheMissError",
    "CacheWarning",
    "CachedLLM",
    "Comparison",
    "Completion",
    "PromptpertWarning",
    "ProviderError",
    "Request",
    "Stats",
    "Variant",
    "VariantCatalog",
    "__version__",
    "cached",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
