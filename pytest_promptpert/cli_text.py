"""What every ``promptpert`` command shares: exit statuses, errors, tables, a progress count."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2

Command = Callable[[argparse.Namespace, IO[str]], int]


class CommandError(Exception):
    """Bad input: printed as ``promptpert: error: ...`` with exit status 2."""


# --- shared pieces ----------------------------------------------------------------------------


def progress(label: str) -> Callable[[int, int | None], None]:
    """A live count on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return lambda done, total: None

    def show(done: int, total: int | None) -> None:
        of = f"/{total}" if total else ""
        sys.stderr.write(f"\r{label} {done}{of}")
        sys.stderr.flush()

    return show


def end_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def print_json(data: Any, out: IO[str]) -> None:
    out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def load_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {what} {path}: {exc}") from None
    except ValueError as exc:
        raise CommandError(f"{what} {path} is not JSON: {exc}") from None
