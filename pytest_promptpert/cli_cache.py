"""``promptpert cache ...``: each command parses nothing and prints what ``cache_admin`` returns."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from . import cache_admin as admin
from .cache import ResponseCache
from .cli_text import (
    EXIT_FOUND,
    EXIT_OK,
    CommandError,
    end_progress,
    one_line,
    print_json,
    progress,
    size,
    table,
)
from .config_files import read_pyproject
from .settings import SettingsError
from .store import Store
from .usage import Usage, load_usage


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


def cache_stats(args: argparse.Namespace, out: IO[str]) -> int:
    cache, directory = open_cache(args)
    usage = load_usage(directory) if directory else Usage()
    stats = admin.cache_stats(cache, usage, directory, progress("reading"))
    end_progress()
    if args.json:
        print_json(stats.as_dict(), out)
        return EXIT_OK
    models = ", ".join(f"{m} ({n})" for m, n in stats.models.items()) or "-"
    rows = [
        ["cache", stats.directory],
        [
            "entries",
            f"{stats.entries}" + (f" ({stats.unreadable} unreadable)" * bool(stats.unreadable)),
        ],
        ["size on disk", size(stats.size_on_disk)],
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
        if args.limit < 0:
            raise CommandError(f"--limit: {args.limit} is not a count (0 or more)")
        found = found[len(found) - min(args.limit, len(found)) :]
    if args.json:
        print_json([_summary(e) for e in found], out)
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
        print_json({"key": entry.key, **entry.data}, out)
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
    count, pruned = admin.prune(
        cache, _selection(args, directory), dry_run=args.dry_run, progress=progress("pruning")
    )
    end_progress()
    verb = "would prune" if args.dry_run else "pruned"
    if args.json:
        print_json({"pruned": count, "bytes": pruned, "dry_run": args.dry_run}, out)
    else:
        out.write(f"{verb} {count} entr{'y' if count == 1 else 'ies'} ({size(pruned)})\n")
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
    end_progress()
    if args.json:
        print_json({"deleted": cleared}, out)
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
        end_progress()
    sys.stderr.write(f"exported {count} entries from {cache.location}\n")
    return EXIT_OK


def cache_import(args: argparse.Namespace, out: IO[str]) -> int:
    cache, _ = open_cache(args, must_exist=False)
    path = Path(args.file)
    items = admin.read_import(path)  # checks every line before anything is written
    result = admin.import_entries(
        cache, items, replace=args.replace, total=len(items), progress=progress("importing")
    )
    end_progress()
    if args.json:
        print_json(vars(result), out)
    else:
        out.write(
            f"imported into {cache.location}: {result.added} added, {result.same} already there,"
            f" {result.kept} kept (different answer already cached), {result.replaced} replaced\n"
        )
    return EXIT_OK


# --- variants and reports ---------------------------------------------------------------------
