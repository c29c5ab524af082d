"""`tunedeck fork` (a study copied under a new name, to go on another way) and `tunedeck status` (a study's state,
counts, best and live workers, as a table or as JSON for scripts and agents). Both are headless; engine imports
happen inside the commands, after `tui.cli` has loaded the engine with Ctrl-C held."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parsers(sub: Any, study_address: Any) -> None:
    """The `fork` and `status` subcommands on `sub` (argparse's subparsers)."""
    fork = sub.add_parser("fork", help="copy a study under a new name, to go on with another sampler, pruner or "
                          "n_trials; the original is left as it is")
    fork.add_argument("old", metavar="OLD", help="the study to copy")
    fork.add_argument("new", metavar="NEW", help="the copy's name")
    fork.add_argument("--storage", metavar="URL", help="where OLD is (default: $TUNEDECK_STORAGE or $OPTUNA_STORAGE)")
    fork.add_argument("--to", metavar="URL", help="the storage the copy goes to (default: OLD's)")
    status = sub.add_parser("status", help="a study's state, counts, best and live workers (--json for scripts)")
    study_address(status, name_required=False)
    status.add_argument("--json", action="store_true", help="one JSON object per study, one a line (JSON Lines)")


def cmd_fork(args: argparse.Namespace) -> int:
    from engine import ConfigError
    from engine.store import check_url, fork_study, mask_url
    from engine.study import StudyConfig, validate
    from tui.cli import storage_of

    source = storage_of(args)
    target = args.to or source
    check_url(target)
    if not args.new.strip() or not args.old.strip():
        raise ConfigError("fork: OLD and NEW must be study names, e.g. tunedeck fork cnn-mnist cnn-mnist-random")
    validate(StudyConfig(study_name=args.new))  # a name a later `tunedeck run --study-name NEW` takes
    record = fork_study(args.old, args.new, source, target)
    running = record["running"]
    note = f"; {len(running)} running there copied as FAIL (trials {', '.join(map(str, running))})" if running else ""
    print(f"forked study {args.old!r} ({record['trials']} trials{note}) into {args.new!r} in {mask_url(target)}")
    print(f"go on with: tunedeck run CONFIG.toml --study-name {args.new!r} --storage {mask_url(target)!r} "
          f"(another --sampler, --pruner or --trials is fine)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from engine.store import mask_url, storage_status
    from tui.cli import storage_of

    url = storage_of(args)
    studies = storage_status(url, args.study_name)
    if args.json:
        for study in studies:
            print(json.dumps(study, allow_nan=False))
        return 0
    if not studies:
        print(f"no study in {mask_url(url)}")
        return 0
    print(status_table(studies))
    return 0


def status_table(studies: list[dict[str, Any]]) -> str:
    """One line per study: name, state, trials finished of the target, pruned / failed / running / waiting, the best
    value and trial, workers, last activity."""
    header = ("STUDY", "STATE", "FINISHED", "PRUNED", "FAILED", "RUNNING", "WAITING", "BEST", "WORKERS",
              "LAST ACTIVITY")
    rows = [header]
    for study in studies:
        counts, best, workers, target = study["counts"], study["best"], study["workers"], study["n_trials"]
        state = study["state"] + (" (stop asked)" if study["state"] == "running" and study["stop_requested"] else "")
        hosts = ", ".join(sorted({str(worker["host"] or "?") for worker in workers}))
        rows.append((study["name"], state, f"{counts['counted']}/{target}" if target else str(counts["counted"]),
                     str(counts["pruned"]), str(counts["failed"]), str(counts["running"]), str(counts["waiting"]),
                     f"{_value(best['value'])} (#{best['number']})" if best else "-",
                     f"{len(workers)} on {hosts}" if workers else "-",
                     (study["last_activity"] or "-").replace("+00:00", "Z")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def _value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
