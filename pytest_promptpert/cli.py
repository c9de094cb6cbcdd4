"""``promptpert``: the cache, variants and reports from the command line.

A thin shell: argparse and printing here, the work in ``cache_admin``, ``usage``,
``report_diff``, ``html_report`` and ``variants``. Every command is a function
``(args, out) -> exit status``; :func:`main` parses and dispatches.

Exit statuses: 0 done; 1 the command ran and found what a script should act on (``diff``: a
variant got worse; ``clear``: the question was answered no); 2 bad usage or input (an unknown
option, a file that cannot be read, no cache at the directory, an unknown key).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from . import cache_admin as admin
from .cache import ResponseCache
from .settings import SettingsError, read_pyproject
from .store import Store
from .usage import Usage, load_usage

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2

Command = Callable[[argparse.Namespace, IO[str]], int]


class CommandError(Exception):
    """Bad input: printed as ``promptpert: error: ...`` with exit status 2."""


# --- shared pieces ----------------------------------------------------------------------------


def default_cache_dir(cwd: Path) -> Path:
    """Where the plugin would put the cache when run from *cwd*.

    ``PROMPTPERT_CACHE_DIR``, else ``cache_dir`` of ``[tool.promptpert]`` in the nearest
    ``pyproject.toml`` (relative to it), else ``.promptpert_cache`` next to that file (or in
    *cwd* when there is none).
    """
    env = os.environ.get("PROMPTPERT_CACHE_DIR")
    if env:
        return cwd / env
    for folder in (cwd, *cwd.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                table = read_pyproject(pyproject)
            except SettingsError as exc:
                raise CommandError(str(exc)) from None
            configured = table.get("cache_dir")
            return folder / str(configured) if configured else folder / ".promptpert_cache"
    return cwd / ".promptpert_cache"


def open_cache(args: argparse.Namespace, *, must_exist: bool = True) -> tuple[Store, Path | None]:
    """The store a cache command works on, and its local directory (None for Redis)."""
    if args.cache_url:
        from .redis_store import RedisStore, SharedCacheError

        try:
            store = RedisStore(args.cache_url)
        except (SharedCacheError, ValueError) as exc:
            raise CommandError(f"--cache-url: {exc}") from None
        try:
            store.get_text("0" * 64)  # reachable?
        except store.errors as exc:
            raise CommandError(f"--cache-url {store.location}: {exc}") from None
        return store, None
    directory = Path(args.cache_dir) if args.cache_dir else default_cache_dir(Path.cwd())
    if must_exist and not directory.is_dir():
        where = "--cache-dir" if args.cache_dir else "the default (see --help)"
        raise CommandError(f"no cache at {directory} ({where})")
    return ResponseCache(directory), directory


def progress(label: str) -> admin.Progress:
    """A live count on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return lambda done, total: None

    def show(done: int, total: int | None) -> None:
        of = f"/{total}" if total else ""
        sys.stderr.write(f"\r{label} {done}{of}")
        sys.stderr.flush()

    return show


def _end_progress() -> None:
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


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _print_json(data: Any, out: IO[str]) -> None:
    out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _load_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {what} {path}: {exc}") from None
    except ValueError as exc:
        raise CommandError(f"{what} {path} is not JSON: {exc}") from None


def load_report(path: str) -> dict[str, Any]:
    data = _load_json(path, "report")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise CommandError(f"{path} is not a promptpert JSON report (no 'results' list)")
    if data.get("version") != 1:
        raise CommandError(f"{path}: report version {data.get('version')!r} is not 1")
    return data


# --- cache commands ---------------------------------------------------------------------------


def cache_stats(args: argparse.Namespace, out: IO[str]) -> int:
    cache, directory = open_cache(args)
    usage = load_usage(directory) if directory else Usage()
    stats = admin.cache_stats(cache, usage, directory, progress("reading"))
    _end_progress()
    if args.json:
        _print_json(stats.as_dict(), out)
        return EXIT_OK
    models = ", ".join(f"{m} ({n})" for m, n in stats.models.items()) or "-"
    rows = [
        ["cache", stats.directory],
        [
            "entries",
            f"{stats.entries}" + (f" ({stats.unreadable} unreadable)" * bool(stats.unreadable)),
        ],
        ["size on disk", _size(stats.size_on_disk)],
        ["models", models],
        ["oldest", admin.iso(stats.oldest) + " UTC" if stats.oldest is not None else "-"],
        ["newest", admin.iso(stats.newest) + " UTC" if stats.newest is not None else "-"],
        [
            "tokens",
            f"{stats.tokens} (prompt {stats.prompt_tokens}, completion {stats.completion_tokens})",
        ],
        ["cost when fetched", f"${stats.cost:.4f}"],
        ["hits recorded", f"{stats.hits} in {stats.runs} run{'s' * (stats.runs != 1)}"],
        ["saved by hits", f"{stats.tokens_saved} tokens, est. ${stats.cost_saved:.4f}"],
    ]
    out.write("\n".join(table(rows)) + "\n")
    return EXIT_OK


def _selection(args: argparse.Namespace, directory: Path | None) -> admin.Selection:
    now = time.time()
    since = getattr(args, "since", None)
    older = getattr(args, "older_than", None)
    keep = None
    if getattr(args, "unused_since_run", False):
        usage = load_usage(directory) if directory else Usage()
        if usage.last_run is None:
            raise CommandError(
                f"--unused-since-run: no run has recorded its use of {directory} yet"
                if directory
                else "--unused-since-run works on a local --cache-dir (runs record use there)"
            )
        keep = frozenset(usage.last_run_keys)
    return admin.Selection(
        model=args.model,
        grep=getattr(args, "grep", None),
        since=None if since is None else admin.parse_since(since, "--since", now),
        older_than=None if older is None else now - admin.parse_duration(older, "--older-than"),
        keep=keep,
    )


def _summary(entry: admin.Entry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "created": entry.created,
        "model": entry.model,
        "tokens": entry.tokens,
        "cost": entry.cost,
        "prompt": entry.prompt,
        "output": entry.output,
    }


def cache_ls(args: argparse.Namespace, out: IO[str]) -> int:
    cache, directory = open_cache(args)
    selection = _selection(args, directory)
    found = sorted(admin.select(cache, selection), key=lambda e: (e.created, e.key))
    if args.limit is not None:
        found = found[-args.limit :]
    if args.json:
        _print_json([_summary(e) for e in found], out)
        return EXIT_OK
    rows = [["key", "created (UTC)", "model", "tokens", "prompt", "output"]]
    for e in found:
        rows.append(
            [
                e.key[:12],
                admin.iso(e.created),
                e.model,
                str(e.tokens),
                repr(one_line(e.prompt, 40)),
                repr(one_line(e.output, 30)),
            ]
        )
    out.write("\n".join(table(rows)) + "\n" if found else "")
    out.write(f"{len(found)} entr{'y' if len(found) == 1 else 'ies'}\n")
    return EXIT_OK


def cache_show(args: argparse.Namespace, out: IO[str]) -> int:
    cache, _ = open_cache(args)
    entry = admin.find(cache, args.key)
    if args.json:
        _print_json({"key": entry.key, **entry.data}, out)
        return EXIT_OK
    data = entry.data
    lines = [
        f"key        {entry.key}",
        f"created    {admin.iso(entry.created)} UTC",
        f"model      {entry.model}"
        + (f" (answered by {data['model']})" * ("model" in data and data["model"] != entry.model)),
        f"run        {data.get('run') or '-'}",
        f"usage      {data.get('prompt_tokens', 0)} prompt + {data.get('completion_tokens', 0)}"
        f" completion tokens, est. ${entry.cost:.6f}, {float(data.get('latency', 0.0)):.3f} s",
        "request:",
        *(
            "  " + line
            for line in json.dumps(data.get("request"), indent=2, ensure_ascii=False).splitlines()
        ),
        "output:",
        *("  " + line for line in entry.output.splitlines() or [""]),
    ]
    calls = admin.tool_calls_of(entry)
    if calls:
        lines += ["tool calls:", *("  " + json.dumps(c, ensure_ascii=False) for c in calls)]
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def cache_prune(args: argparse.Namespace, out: IO[str]) -> int:
    if not (args.older_than or args.model or args.unused_since_run):
        raise CommandError("prune needs --older-than, --model or --unused-since-run")
    cache, directory = open_cache(args)
    count, size = admin.prune(
        cache, _selection(args, directory), dry_run=args.dry_run, progress=progress("pruning")
    )
    _end_progress()
    verb = "would prune" if args.dry_run else "pruned"
    if args.json:
        _print_json({"pruned": count, "bytes": size, "dry_run": args.dry_run}, out)
    else:
        out.write(f"{verb} {count} entr{'y' if count == 1 else 'ies'} ({_size(size)})\n")
    return EXIT_OK


def cache_clear(args: argparse.Namespace, out: IO[str]) -> int:
    cache, directory = open_cache(args)
    count = sum(1 for _ in cache.entry_keys())
    if not args.yes:
        sys.stderr.write(f"delete all {count} entries in {cache.location}? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            out.write("nothing deleted\n")
            return EXIT_FOUND
    cleared = admin.clear(cache, directory, progress("deleting"))
    _end_progress()
    if args.json:
        _print_json({"deleted": cleared}, out)
    else:
        out.write(f"deleted {cleared} entr{'y' if cleared == 1 else 'ies'}\n")
    return EXIT_OK


def cache_export(args: argparse.Namespace, out: IO[str]) -> int:
    cache, _ = open_cache(args)
    if args.file == "-":
        count = admin.write_export(cache, out)
    else:
        try:
            with open(args.file, "w", encoding="utf-8") as target:
                count = admin.write_export(cache, target, progress("exporting"))
        except OSError as exc:
            raise CommandError(f"cannot write {args.file}: {exc}") from None
        _end_progress()
    sys.stderr.write(f"exported {count} entries from {cache.location}\n")
    return EXIT_OK


def cache_import(args: argparse.Namespace, out: IO[str]) -> int:
    cache, _ = open_cache(args, must_exist=False)
    path = Path(args.file)
    items = admin.read_import(path)  # checks every line before anything is written
    result = admin.import_entries(
        cache, items, replace=args.replace, total=len(items), progress=progress("importing")
    )
    _end_progress()
    if args.json:
        _print_json(vars(result), out)
    else:
        out.write(
            f"imported into {cache.location}: {result.added} added, {result.same} already there,"
            f" {result.kept} kept (different answer already cached), {result.replaced} replaced\n"
        )
    return EXIT_OK


# --- variants and reports ---------------------------------------------------------------------


def variants(args: argparse.Namespace, out: IO[str]) -> int:
    from .variants import ORIGINAL, VariantCatalog

    catalog = VariantCatalog()
    names = [n.strip() for part in args.variants or [] for n in part.split(",") if n.strip()]
    try:
        chosen = catalog.expand(names) if names else catalog.names()
        rows = [(name, catalog.apply(name, args.text)) for name in chosen]
    except ValueError as exc:
        raise CommandError(f"--variants: {exc}") from None
    if args.json:
        _print_json([{"variant": n, "text": t, "no_op": t == args.text} for n, t in rows], out)
        return EXIT_OK
    lines = table(
        [
            ["variant", "text"],
            [ORIGINAL, repr(args.text)],
            *(
                [n, repr(t) + ("  (no-op: unchanged, skipped)" if t == args.text else "")]
                for n, t in rows
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
        _print_json(result.as_dict(), out)
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
    except (CommandError, admin.CacheAdminError) as exc:
        _end_progress()
        sys.stderr.write(f"promptpert: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _end_progress()
        sys.stderr.write("promptpert: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK  # `promptpert cache ls | head`
    return status


def console() -> None:
    """The ``promptpert`` console script."""
    sys.exit(main())
