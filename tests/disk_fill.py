"""Fill a file system to the last byte: shared by the hostile tests and their inner runs."""

from __future__ import annotations

import os
from pathlib import Path


def fill(directory: Path | str) -> None:
    """Write into *directory* until its file system is full."""
    fd = os.open(Path(directory) / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"x" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
