"""Server-sent events: read a stored stream, write a synthesized one."""

from __future__ import annotations

import json
from typing import Any

Event = tuple[str | None, Any]


def parse(body: bytes) -> list[Event]:
    """(event name, data) pairs; data JSON-decoded where it is JSON, else the text."""
    events: list[Event] = []
    name: str | None = None
    data: list[str] = []
    for raw in [*body.decode("utf-8", "replace").splitlines(), ""]:
        line = raw.rstrip("\r")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    events.append((name, json.loads(text)))
                except ValueError:
                    events.append((name, text))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return events


def render(events: list[Event]) -> bytes:
    lines: list[str] = []
    for name, data in events:
        if name is not None:
            lines.append(f"event: {name}")
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        lines += [f"data: {text}", ""]
    return ("\n".join(lines) + "\n").encode("utf-8")


def is_stream(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"
