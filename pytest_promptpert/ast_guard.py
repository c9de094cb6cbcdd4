"""One ``ast.parse`` at a time, on the CPython versions where two at once can crash.

On CPython 3.11 and 3.12 the AST constructor keeps its recursion depth in state shared by all
threads (gh-106905): two threads turning source into an AST at the same moment can fail with
``SystemError: AST constructor recursion depth mismatch``. pytest parses source in the main
thread (assertion rewriting, failure tracebacks: pytest-dev/pytest#10763) while the plugin's
calls run in threads of their own, and a failing call there formats a traceback too (since
3.11 that parses the failing line, for its ``^^^^`` markers). Both go through ``ast.parse``;
serialising it removes the race at the cost of a lock taken around each parse.
"""

from __future__ import annotations

import ast
import functools
import sys
import threading
from typing import Any

_GUARDED = "_promptpert_guarded"


def guard_ast_parse() -> None:
    """Make ``ast.parse`` take a process-wide lock (once; a no-op where CPython is not racy)."""
    if sys.version_info >= (3, 13) or getattr(ast.parse, _GUARDED, False):
        return
    parse = ast.parse
    lock = threading.RLock()

    @functools.wraps(parse)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    setattr(guarded, _GUARDED, lock)
    ast.parse = guarded
