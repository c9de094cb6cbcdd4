"""pytest-promptpert: prompt-robustness regression testing for pytest.

Importing this package is cheap: litellm is imported only when a model call is needed.
"""

from __future__ import annotations

from .backend import AuthenticationFailed, ProviderError
from .cached import cached
from .client import CachedLLM, CacheMissError, Stats
from .compare import Comparison
from .request import Completion, Request
from .variants import BUILTIN_VARIANTS, Variant, VariantCatalog
from .warning_types import CacheWarning, PromptpertWarning

__version__ = "0.1.0"

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
