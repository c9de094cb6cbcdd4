"""Text and data the plugin shows or writes; pure functions over settings and results."""

from __future__ import annotations

from .metrics import metric_name
from .redact import redact_url
from .settings import Settings


def header_line(settings: Settings) -> str:
    parts = [f"model={settings.model}"]
    if settings.api_base:
        parts.append(f"api_base={redact_url(settings.api_base)}")
    parts += [
        f"cache={settings.cache_dir} ({settings.cache})",
        f"variants={','.join(settings.variants)}",
        f"metric={metric_name(settings.metric)}",
        f"threshold={settings.threshold:g}",
    ]
    if settings.samples > 1:
        parts.append(f"samples={settings.samples}")
    return "promptpert: " + ", ".join(parts)
