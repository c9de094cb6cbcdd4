"""The settings header line and the warning about settings pytest-promptpert does not read."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from .config_files import hidden_tables, hidden_tables_message, table_line
from .pytest_warnings import UnreadSettingsWarning
from .session import PromptpertSession
from .stash import PARAM
from .variants import ORIGINAL


class SettingsNotes:
    """Once marked tests were collected: the header line, and settings that are not read.

    Nothing is shown in runs that collect no marked test, so a project that does not use the
    plugin never hears of it. Under xdist the controller collects nothing itself; it sees the
    workers' node ids, and takes an id that ends in a variant name for a marked test's.
    """

    def __init__(self, config: pytest.Config, session: PromptpertSession) -> None:
        self.config = config
        self.session = session
        self.header_shown = False

    def pytest_report_collectionfinish(self, items: list[pytest.Item]) -> str | None:
        if not any(is_marked(item) for item in items):
            return None
        return self._header()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Inside pytest's collection-time warning capture (on xdist workers too: their warnings
        # reach the controller), so -W and filterwarnings apply as to any warning.
        if any(is_marked(item) for item in session.items):
            self._warn_hidden_tables()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # The xdist controller collects nothing itself: the header goes out with the first
        # worker's collection that holds marked items.
        if self.header_shown or not any(self._looks_marked(nodeid) for nodeid in ids):
            return
        self.header_shown = True
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        line = self._header()
        if terminal is not None and line:
            if getattr(terminal, "isatty", False):
                terminal.write("\n")  # off xdist's rewritten status line
            terminal.write_line(line)

    def _header(self) -> str | None:
        if self.config.get_verbosity() < 0 or self.config.getoption("no_header", False):
            return None
        line: str | None = self.config.hook.pytest_promptpert_header(
            config=self.config, settings=self.session.settings
        )
        return line or None  # "" from a conftest hides the line

    def _looks_marked(self, nodeid: str) -> bool:
        if not nodeid.endswith("]") or "[" not in nodeid:
            return False
        tail = nodeid[:-1].rsplit("[", 1)[1].rsplit("-", 1)[-1]
        names = self.session.variants.names()
        return tail == ORIGINAL or all(part in names for part in tail.split("+"))

    def _warn_hidden_tables(self) -> None:
        here = self.config.invocation_params.dir
        starts = [here] + [here / arg.split("::", 1)[0] for arg in self.config.args]
        found = hidden_tables(self.config.rootpath, starts)
        if found:
            message = hidden_tables_message(found, self.config.rootpath, self.config.inipath)
            # Located at the table itself, so the warnings summary points to the file.
            warnings.warn_explicit(
                UnreadSettingsWarning(message),
                UnreadSettingsWarning,
                str(found[0]),
                table_line(found[0]),
                module="pytest_promptpert",
            )


def is_marked(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and PARAM in callspec.params
