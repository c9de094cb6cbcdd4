"""``promptpert``: the cache, variants and reports from the command line.

A thin shell: the parser and the variants/report/diff commands here, the cache commands in
``cli_cache``, shared printing in ``cli_text``; the work in ``cache_admin``, ``usage``,
``report_diff``, ``html_report`` and ``variants``. Every command is a function
``(args, out) -> exit status``; :func:`main` parses and dispatches.

Exit statuses: 0 done; 1 the command ran and found what a script should act on (``diff``: a
variant got worse; ``clear``: the question was answered no); 2 bad usage or input (an unknown
option, a file that cannot be read, no cache at the directory, an unknown key).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from . import cache_admin as admin
from .cache import CacheDirError
from .cli_cache import (
    cache_clear,
    cache_export,
    cache_import,
    cache_ls,
    cache_prune,
    cache_show,
    cache_stats,
)
from .cli_text import (
    EXIT_ERROR,
    EXIT_FOUND,
    EXIT_OK,
    Command,
    CommandError,
    end_progress,
    load_json,
    print_json,
    table,
)


def load_report(path: str) -> dict[str, Any]:
    data = load_json(path, "report")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise CommandError(f"{path} is not a promptpert JSON report (no 'results' list)")
    if data.get("version") != 1:
        raise CommandError(f"{path}: report version {data.get('version')!r} is not 1")
    return data


# --- cache commands ---------------------------------------------------------------------------


def variants(args: argparse.Namespace, out: IO[str]) -> int:
    from .variants import CONTROL, ORIGINAL, VariantCatalog

    catalog = VariantCatalog()
    names = [n.strip() for part in args.variants or [] for n in part.split(",") if n.strip()]
    try:
        chosen = catalog.expand(names) if names else catalog.names()
        # control asks the unchanged text again (another sample): never a no-op
        rows = [
            (name, text, text == args.text and name != CONTROL)
            for name in chosen
            for text in [catalog.apply(name, args.text)]
        ]
    except ValueError as exc:
        raise CommandError(f"--variants: {exc}") from None
    if args.json:
        print_json([{"variant": n, "text": t, "no_op": no_op} for n, t, no_op in rows], out)
        return EXIT_OK
    notes = {CONTROL: "  (the same text, asked again)"}
    lines = table(
        [
            ["variant", "text"],
            [ORIGINAL, repr(args.text)],
            *(
                [n, repr(t) + ("  (no-op: unchanged, skipped)" if no_op else notes.get(n, ""))]
                for n, t, no_op in rows
            ),
        ]
    )
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def report(args: argparse.Namespace, out: IO[str]) -> int:
    from .html_report import render_html

    data = load_report(args.report)
    try:
        page = render_html(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CommandError(f"{args.report}: cannot render this report ({exc!r})") from None
    try:
        Path(args.html).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {args.html}: {exc}") from None
    out.write(f"wrote {args.html}\n")
    return EXIT_OK


def diff(args: argparse.Namespace, out: IO[str]) -> int:
    from . import report_diff

    if not 0 <= args.tolerance <= 1:
        raise CommandError(f"--tolerance: {args.tolerance!r} is outside [0, 1]")
    result = report_diff.diff_reports(load_report(args.old), load_report(args.new), args.tolerance)
    style = "json" if args.json else args.format
    if style == "json":
        print_json(result.as_dict(), out)
    elif style == "markdown":
        out.write(report_diff.markdown(result))
    else:
        out.write("\n".join(report_diff.text_lines(result)) + "\n")
    return EXIT_FOUND if result.of_kind("worse") else EXIT_OK


# --- the parser -------------------------------------------------------------------------------

_EPILOG = (
    "exit status: 0 done; 1 diff found a variant that got worse, or clear was declined;"
    " 2 bad usage or input"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptpert",
        description="Manage the promptpert response cache, preview variants, render and compare"
        " reports.",
        epilog=_EPILOG,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the cache directory (default: PROMPTPERT_CACHE_DIR, else cache_dir in the nearest"
        " pyproject.toml's [tool.promptpert], else .promptpert_cache next to it)",
    )
    common.add_argument(
        "--cache-url",
        metavar="URL",
        help="work on the shared cache in Redis (redis://host:6379/0) instead of a directory",
    )
    common.add_argument("--json", action="store_true", help="print JSON for machines")

    cache = commands.add_parser("cache", help="inspect and manage the response cache")
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)

    def add(name: str, func: Command, help: str) -> argparse.ArgumentParser:
        sub = cache_commands.add_parser(
            name, parents=[common], help=help, description=help, epilog=_EPILOG
        )
        sub.set_defaults(func=func)
        return sub

    add("stats", cache_stats, "entries, size, models, dates, tokens and what hits saved")
    ls = add("ls", cache_ls, "list entries, oldest first")
    ls.add_argument("--model", help="only entries of this model (as requested, exactly)")
    ls.add_argument(
        "--grep", metavar="TEXT", help="only entries whose request or output holds TEXT (any case)"
    )
    ls.add_argument(
        "--since",
        metavar="DATE",
        help="only entries written since DATE (2026-11-01, or 7d for a week ago)",
    )
    ls.add_argument("--limit", type=int, metavar="N", help="only the newest N")
    show = add("show", cache_show, "one entry: request, output, usage, when it was written")
    show.add_argument("key", metavar="KEY", help="a key, or its first few hex digits")
    prune = add("prune", cache_prune, "delete entries that match every criterion given")
    prune.add_argument(
        "--older-than", metavar="AGE", help="written more than AGE ago (30d, 12h, 2w)"
    )
    prune.add_argument("--model", help="of this model")
    prune.add_argument(
        "--unused-since-run",
        action="store_true",
        help="not read or written by the most recent run that used this cache",
    )
    prune.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    clear = add("clear", cache_clear, "delete every entry (asks first)")
    clear.add_argument("--yes", "-y", action="store_true", help="do not ask")
    export = add("export", cache_export, "write every entry as JSON lines, sorted by key")
    export.add_argument("file", metavar="FILE.jsonl", help="where to write ('-': stdout)")
    imp = add("import", cache_import, "merge entries from an export (every line checked first)")
    imp.add_argument("file", metavar="FILE.jsonl")
    imp.add_argument(
        "--replace", action="store_true", help="an imported answer replaces a different cached one"
    )

    var = commands.add_parser(
        "variants", help="preview every variant of a text, marking no-ops", epilog=_EPILOG
    )
    var.add_argument("text", metavar="TEXT")
    var.add_argument(
        "--variants",
        action="append",
        metavar="NAMES",
        help="variant or family names, comma-separated or repeated (default: every variant)",
    )
    var.add_argument("--json", action="store_true", help="print JSON for machines")
    var.set_defaults(func=variants)

    rep = commands.add_parser("report", help="render a JSON report as HTML", epilog=_EPILOG)
    rep.add_argument("report", metavar="REPORT.json")
    rep.add_argument("--html", required=True, metavar="OUT.html")
    rep.set_defaults(func=report)

    dif = commands.add_parser(
        "diff", help="which variants got worse or better between two JSON reports", epilog=_EPILOG
    )
    dif.add_argument("old", metavar="OLD.json")
    dif.add_argument("new", metavar="NEW.json")
    dif.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    dif.add_argument("--json", action="store_true", help="same as --format json")
    dif.add_argument(
        "--tolerance",
        type=float,
        default=0.05,
        help="a score change smaller than this is no change (default 0.05)",
    )
    dif.set_defaults(func=diff)
    return parser


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args, out or sys.stdout)
    except (CommandError, admin.CacheAdminError, CacheDirError) as exc:
        end_progress()
        sys.stderr.write(f"promptpert: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        end_progress()
        sys.stderr.write("promptpert: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK  # `promptpert cache ls | head`
    return status


def console() -> None:
    """The ``promptpert`` console script."""
    sys.exit(main())
