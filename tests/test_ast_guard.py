"""ast.parse serialised while the plugin is active (CPython 3.11/3.12 race, gh-106905)."""

from __future__ import annotations

import ast
import sys
import threading

import pytest

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 13), reason="CPython 3.13 keeps the AST recursion depth per call"
)


def test_a_parse_in_another_thread_waits_for_the_one_in_progress() -> None:
    lock = getattr(ast.parse, "_promptpert_guarded", None)
    assert lock is not None, "the plugin's pytest_configure guards ast.parse in this process"
    parsed = threading.Event()

    def parse_elsewhere() -> None:
        ast.parse("x = 1")
        parsed.set()

    with lock:  # as if this thread were parsing
        thread = threading.Thread(target=parse_elsewhere)
        thread.start()
        # Unguarded, the parse takes microseconds; guarded, it cannot finish before we release.
        assert not parsed.wait(0.5)
    thread.join(60)
    assert parsed.is_set()


def test_the_guarded_parse_is_still_ast_parse() -> None:
    tree = ast.parse("answer = 42", mode="exec")
    assert isinstance(tree.body[0], ast.Assign)
    with pytest.raises(SyntaxError):
        ast.parse("answer = ")
    assert ast.parse.__name__ == "parse"
