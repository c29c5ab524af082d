"""The `tunedeck` command: no subcommand opens the app; `run`, `export` and `init-config` are headless."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any, NoReturn

COMMANDS = ("run", "export", "init-config")
# flag dest -> StudyConfig field
FLAG_FIELDS = {"model": "model", "dataset": "dataset", "trials": "n_trials", "timeout": "timeout",
               "sampler": "sampler", "pruner": "pruner", "seed": "seed", "objective": "objective",
               "subset": "subset", "storage": "storage", "study_name": "study_name", "out": "out_dir",
               "patience": "patience", "mixed_precision": "mixed_precision"}


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def study_options() -> argparse.ArgumentParser:
    """The options shared by `run` and the app: a config file and flags that override it."""
    opts = Parser(add_help=False)
    opts.add_argument("config", nargs="?", metavar="CONFIG.toml", help="study config file (see init-config)")
    opts.add_argument("--model", choices=("mlp", "cnn"))
    opts.add_argument("--dataset", metavar="NAME|PATH",
                      help="auto, mnist, fashion-mnist, mnist-5k, a .npz or an IDX dir")
    opts.add_argument("--trials", type=int, metavar="N", help="total finished trials of the study")
    opts.add_argument("--timeout", type=float, metavar="S", help="stop starting trials after S seconds")
    opts.add_argument("--sampler", choices=("tpe", "random"))
    opts.add_argument("--pruner", choices=("median", "hyperband", "none"))
    opts.add_argument("--seed", type=int, metavar="N")
    opts.add_argument("--objective", choices=("val_accuracy", "test_accuracy"))
    opts.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="pin a parameter (repeatable)")
    opts.add_argument("--subset", type=int, metavar="N", help="use N stratified training examples")
    opts.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: SQLite in the run folder)")
    opts.add_argument("--study-name", metavar="NAME")
    opts.add_argument("--out", metavar="DIR", help="output folder (default: runs)")
    opts.add_argument("--patience", type=int, metavar="N",
                      help="early stopping patience in epochs (0 = off; off in the seed protocol)")
    opts.add_argument("--mixed-precision", action="store_true", default=None, help="float16 training on a GPU")
    opts.add_argument("--export", metavar="FILE.md", help="also write the Markdown summary here")
    return opts


def build_parser() -> Parser:
    parser = Parser(prog="tunedeck", description="Tune Keras MLP/CNN models with Optuna, in the terminal.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    options = study_options()
    sub.add_parser("app", parents=[options], help="open the app (the default with no command)")
    sub.add_parser("run", parents=[options], help="run a study headless with a progress display")
    export = sub.add_parser("export", help="write a study's Markdown summary")
    export.add_argument("--storage", required=True, metavar="URL")
    export.add_argument("--study-name", required=True, metavar="NAME")
    export.add_argument("-o", "--output", metavar="FILE.md", help="default: print to stdout")
    init = sub.add_parser("init-config", help="write a commented default config")
    init.add_argument("path", nargs="?", default="tunedeck.toml", metavar="PATH")
    init.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    return parser


def parse_fix(item: str) -> tuple[str, Any]:
    """`epochs=1` -> ("epochs", 1); values are read as TOML (numbers, strings, lists)."""
    from engine import ConfigError

    name, sep, text = item.partition("=")
    if not sep or not name.strip() or not text.strip():
        raise ConfigError(f"--fix: expected NAME=VALUE (e.g. epochs=1), got {item!r}")
    try:
        return name.strip(), tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"--fix {name.strip()}: {text!r} is not a number") from None


def build_config(args: argparse.Namespace):
    """The config file (if any) with the flags laid over it, validated."""
    from engine.config import config_from_dict, read_toml

    data: dict[str, Any] = read_toml(args.config) if args.config else {}
    for dest, key in FLAG_FIELDS.items():
        value = getattr(args, dest)
        if value is not None:
            data[key] = value
    for item in args.fix:
        name, value = parse_fix(item)
        data.setdefault("space", {})[name] = value
    return config_from_dict(data)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("app", "-h", "--help")):
        argv.insert(0, "app")
    args = build_parser().parse_args(argv)
    from engine import ConfigError, DatasetError

    try:
        return COMMAND_FUNCS[args.command](args)
    except (ConfigError, DatasetError) as exc:
        print(f"tunedeck: error: {exc}", file=sys.stderr)
        return 2


def cmd_run(args: argparse.Namespace) -> int:
    from tui.headless import run_headless

    return run_headless(build_config(args), args.export)


def cmd_app(args: argparse.Namespace) -> int:
    from tui.app import run_app

    return run_app(build_config(args))


def cmd_export(args: argparse.Namespace) -> int:
    from engine.report import load_study, render_report, write_report

    study = load_study(args.storage, args.study_name)
    if args.output:
        print(f"summary written to {write_report(study, args.output)}")
    else:
        print(render_report(study))
    return 0


def cmd_init_config(args: argparse.Namespace) -> int:
    from engine import ConfigError, StudyConfig, save_config

    path = Path(args.path)
    if path.exists() and not args.force:
        raise ConfigError(f"init-config: {path} already exists; pass --force to overwrite it")
    save_config(StudyConfig(model=args.model), path, comments=True)
    print(f"wrote {path}; run it with: tunedeck run {path}")
    return 0


COMMAND_FUNCS = {"run": cmd_run, "app": cmd_app, "export": cmd_export, "init-config": cmd_init_config}

if __name__ == "__main__":
    sys.exit(main())
