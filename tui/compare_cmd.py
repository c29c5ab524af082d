"""`tunedeck compare A B [C...]`: studies side by side, printed fitted to the terminal, and with `--export FILE.md`
written as Markdown with the overlaid best-so-far curves as PNGs beside it (engine.report's compare)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

USAGE = "give at least two studies: tunedeck compare A B [C...] (NAME@URL for a study in another storage)"


def split_address(text: str) -> tuple[str | None, str]:
    """(storage URL or None, study name) of `NAME` or `NAME@URL`: the first `@` followed by a URL ends the name
    (a URL holds its own `@` before a host: `mlp@postgresql://me:pw@db/studies`)."""
    name, at, url = text.partition("@")
    if at and "://" in url:
        return url, name
    return None, text


def addresses(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(storage URL, study name) of each study named; --storage (or the environment's) is asked for only when a
    study is named without its own storage."""
    from engine import ConfigError
    from engine.store import check_url
    from tui.cli import storage_of

    found = [split_address(text) for text in args.studies]
    if len(found) < 2:
        raise ConfigError(f"compare: {USAGE}")
    if any(not name for _, name in found):
        raise ConfigError(f"compare: a study without a name in {' '.join(args.studies)!r}; {USAGE}")
    default = storage_of(args) if any(url is None for url, _ in found) else None
    for url, _ in found:
        if url is not None:
            check_url(url)
    studies = [(url or default, name) for url, name in found]
    if len(set(studies)) < len(studies):
        raise ConfigError(f"compare: a study is named twice in {' '.join(args.studies)!r}; name each once")
    return studies


def cmd_compare(args: argparse.Namespace) -> int:
    from engine import ConfigError
    from engine.report import compare_text, read_columns, write_compare

    studies = addresses(args)
    if args.export and Path(args.export).exists() and not args.force:
        kind = "a folder" if Path(args.export).is_dir() else "a file there"
        raise ConfigError(f"export: {args.export} is {kind}; name a new FILE.md, or pass --force to replace it")
    columns = read_columns(studies)
    print(compare_text(columns, shutil.get_terminal_size().columns))
    if not args.export:
        return 0
    try:
        written = write_compare(columns, args.export, plots=not args.no_plots)
    except OSError as exc:  # a full disk, a file size limit: what was there is left as it was
        print(f"tunedeck: error: cannot write {args.export}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"\ncomparison written to {written[0]}" + (f" with {', '.join(p.name for p in written[1:])} beside it"
                                                     if written[1:] else ""))
    return 0
