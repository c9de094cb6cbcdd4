"""``[tool.promptpert]`` tables: the rootdir's, which is read, and the ones pytest's rootdir hides.

Settings come from the rootdir's ``pyproject.toml`` only (and from pytest's ini file), as
pytest's own ``[tool.pytest.ini_options]`` do. A table in another ``pyproject.toml`` (a monorepo's
root, a package below the rootdir) is not read, which is easy to miss: :func:`hidden_tables`
finds such files so that the plugin can say so.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .settings import SettingsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def read_pyproject(path: Path) -> dict[str, Any]:
    """The ``[tool.promptpert]`` table of *path*, empty if there is none."""
    where = f"[tool.promptpert] in {path}"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None
    tool = data.get("tool", {})
    table = tool.get("promptpert", {}) if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise SettingsError(f"{where}: must be a table, not {type(table).__name__}")
    return table


def has_table(path: Path) -> bool:
    """Whether *path* is a ``pyproject.toml`` with a ``[tool.promptpert]`` table.

    Lenient: a file that cannot be read or parsed has none (it is not ours to complain about).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    tool = data.get("tool")
    return isinstance(tool, dict) and "promptpert" in tool


def hidden_tables(rootdir: Path, starts: Iterable[Path]) -> list[Path]:
    """``pyproject.toml`` files with a ``[tool.promptpert]`` table that are not read.

    Empty when the rootdir's own ``pyproject.toml`` has the table. Otherwise the nearer ones
    first: in the directories from each of *starts* (the invocation directory, the test paths;
    absolute) up to the rootdir; then the farther ones: the rootdir's parent directories.
    """
    if has_table(rootdir / "pyproject.toml"):
        return []
    found: list[Path] = []
    for start in starts:
        directory = start if start.is_dir() else start.parent
        while directory != rootdir and directory not in rootdir.parents:
            found.append(directory / "pyproject.toml")
            if directory == directory.parent:
                break
            directory = directory.parent
    found += [parent / "pyproject.toml" for parent in rootdir.parents]
    unique = dict.fromkeys(found)  # ordered, nearest first
    return [path for path in unique if path.is_file() and has_table(path)]


def hidden_tables_message(found: list[Path], rootdir: Path, ini_path: Path | None) -> str:
    """The warning for :func:`hidden_tables`' files: which, why they are not read, what to do."""
    others = "".join(f" and in {path}" for path in found[1:])
    rootdir_file = rootdir / "pyproject.toml"
    has = "has no [tool.promptpert] table" if rootdir_file.is_file() else "does not exist"
    ini = f"in {ini_path}" if ini_path else "in the pytest ini file (pytest.ini, tox.ini, ...)"
    return (
        f"pytest-promptpert: [tool.promptpert] in {found[0]}{others} is not read:"
        f" settings are read from the rootdir's pyproject.toml ({rootdir_file}, which {has}),"
        f" pytest's ini file, PROMPTPERT_* environment variables and --promptpert-* options."
        f" Move the table to {rootdir_file}, run pytest with --rootdir={found[0].parent},"
        f" or set the keys as promptpert_KEY ini options {ini}."
    )


def table_line(path: Path) -> int:
    """The line number of ``[tool.promptpert]`` in *path* (1 if it cannot be told)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 1
    for number, line in enumerate(lines, 1):
        if line.strip().replace(" ", "").startswith(("[tool.promptpert]", "[tool.promptpert.")):
            return number
    return 1
