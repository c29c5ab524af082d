"""The `tunedeck` command: no subcommand opens the app; `run`, `export`, `stop`, `retrain`, `proxy` and
`init-config` are headless; `watch` opens the app on a study that runs elsewhere."""

from __future__ import annotations

import argparse
import difflib
import platform
import sys
import tomllib
from pathlib import Path
from typing import Any, NoReturn

from engine.study import PRUNERS
from tui.study_cmds import add_parsers as add_study_parsers
from tui.study_cmds import cmd_fork, cmd_status

COMMANDS = ("run", "watch", "stop", "export", "compare", "retrain", "get", "proxy", "fork", "status", "init-config")
# flag dest -> StudyConfig field
FLAG_FIELDS = {"model": "model", "dataset": "dataset", "trials": "n_trials", "timeout": "timeout",
               "sampler": "sampler", "pruner": "pruner", "seed": "seed", "objective": "objective",
               "subset": "subset", "storage": "storage", "study_name": "study_name", "out": "out_dir",
               "patience": "patience", "lr_patience": "lr_patience", "mixed_precision": "mixed_precision",
               "heartbeat": "heartbeat", "workers": "workers", "gpus": "gpus", "storage_retry": "storage_retry",
               "jit_compile": "jit_compile", "trial_timeout": "trial_timeout", "max_failures": "max_failures",
               "warm_start": "warm_start", "warm_start_top": "warm_start_top", "prior": "warm_start_prior",
               "artifacts": "artifacts"}
STORAGE_HELP = "Optuna storage URL (default: $TUNEDECK_STORAGE, $OPTUNA_STORAGE, else SQLite in the run folder)"


def workers_count(text: str) -> int | str:
    """--workers: a whole number or "auto"."""
    if text == "auto":
        return text
    try:
        return int(text)  # the config says which numbers are allowed
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of workers or auto, got {text!r}") from None


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def study_options() -> argparse.ArgumentParser:
    """The options shared by `run` and the app: a config file and flags that override it."""
    opts = Parser(add_help=False)
    opts.add_argument("config", nargs="?", metavar="CONFIG.toml", help="study config file (see init-config)")
    opts.add_argument("--model", metavar="mlp|cnn|FILE.py", help="a built-in model or a model file (SPACE and "
                      "build_model(params, input_shape, num_classes))")
    opts.add_argument("--dataset", metavar="NAME|PATH",
                      help="auto, mnist, fashion-mnist, cifar10, cifar100, mnist-5k, a .npz or an IDX dir")
    opts.add_argument("--trials", type=int, metavar="N", help="total finished trials of the study")
    opts.add_argument("--timeout", type=float, metavar="S", help="stop starting trials after S seconds")
    opts.add_argument("--sampler", choices=("tpe", "random"))
    opts.add_argument("--pruner", choices=PRUNERS)
    opts.add_argument("--seed", type=int, metavar="N")
    opts.add_argument("--objective", choices=("val_accuracy", "val_loss", "test_accuracy"))
    opts.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="pin a parameter (repeatable)")
    opts.add_argument("--subset", type=int, metavar="N", help="use N stratified training examples")
    opts.add_argument("--storage", metavar="URL", help=STORAGE_HELP)
    opts.add_argument("--study-name", metavar="NAME")
    opts.add_argument("--out", metavar="DIR", help="output folder (default: runs)")
    opts.add_argument("--patience", type=int, metavar="N",
                      help="early stopping patience in epochs (0 = off; off in the seed protocol)")
    opts.add_argument("--lr-patience", type=int, metavar="N", help="halve the learning rate after N epochs without "
                      "a better val accuracy (0 = off; off in the seed protocol)")
    opts.add_argument("--mixed-precision", action="store_true", default=None, help="float16 training on a GPU")
    opts.add_argument("--export", metavar="FILE.md", help="also write the Markdown summary here")
    opts.add_argument("--no-plots", action="store_true", help="no PNG figures beside the summaries")
    opts.add_argument("--bell", action="store_true", help="ring the terminal bell on a new best and a failed trial")
    opts.add_argument("--workers", type=workers_count, metavar="N|auto",
                      help="start N worker processes on this machine, spread over its GPUs (auto: one per GPU, else 1)")
    opts.add_argument("--gpus", metavar="0,1,...", help="the GPUs the workers use, one worker per entry (0,0,1,1: two "
                      "on each; sets CUDA_VISIBLE_DEVICES)")
    opts.add_argument("--jit-compile", choices=("off", "auto", "on"), help="XLA for each trial's model (default off)")
    opts.add_argument("--trial-timeout", type=float, metavar="S",
                      help="a trial still training after S seconds stops as FAIL (default 0: no limit)")
    opts.add_argument("--max-failures", type=int, metavar="N",
                      help="end the study after N failed trials in a row (default 3; 0 = never)")
    opts.add_argument("--artifacts", metavar="URL", help="where models and figures go for any machine: file:///PATH "
                      "or s3://BUCKET/PREFIX (default: beside a SQLite or journal file)")
    opts.add_argument("--warm-start", metavar="OTHER[@URL]", help="run another study's best parameter sets first")
    opts.add_argument("--warm-start-top", type=int, metavar="K", help="how many of them (default 3)")
    opts.add_argument("--prior", action="store_true", default=None, help="with --warm-start: give its finished trials "
                      "to the sampler instead of running them (same model, data and objective)")
    opts.add_argument("--heartbeat", type=int, metavar="S",
                      help="seconds between heartbeats; a silent worker's trial fails after 2x and is retried")
    opts.add_argument("--storage-retry", type=float, metavar="S", help="ride out a storage that stops answering for "
                      "up to S seconds, retrying (default 120; 0 = no retry)")
    return opts


def study_address(parser: argparse.ArgumentParser, name_required: bool = True) -> None:
    """--storage and --study-name of a command that reads or controls a stored study."""
    parser.add_argument("--storage", metavar="URL", help="default: $TUNEDECK_STORAGE or $OPTUNA_STORAGE")
    parser.add_argument("--study-name", required=name_required, metavar="NAME")


def build_parser() -> Parser:
    parser = Parser(prog="tunedeck", description="Tune Keras MLP/CNN models with Optuna, in the terminal.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    options = study_options()
    sub.add_parser("app", parents=[options], help="open the app (the default with no command)")
    sub.add_parser("run", parents=[options], help="run a study headless with a progress display")
    watch = sub.add_parser("watch", help="open the dashboard of a study that runs elsewhere (read-only; s stops it)")
    study_address(watch, name_required=False)
    stop = sub.add_parser("stop", help="ask every worker of a study to stop after its trial")
    study_address(stop)
    stop.add_argument("--now", action="store_true", help="stop the running trials at their next batch")
    export = sub.add_parser("export", help="write a study's Markdown summary")
    study_address(export)
    export.add_argument("-o", "--output", metavar="FILE.md", help="default: print to stdout")
    export.add_argument("--no-plots", action="store_true", help="no PNG figures beside the summary")
    retrain = sub.add_parser("retrain", help="train a trial once more on all training data: final.keras, final.md")
    study_address(retrain)
    retrain.add_argument("--trial", type=int, metavar="N", help="the trial to retrain (default: the best)")
    retrain.add_argument("--out", metavar="DIR", help="where final.keras and final.md go (default: the run folder)")
    retrain.add_argument("--force", action="store_true", help="retrain a model file that changed since the study "
                         "(its sha256; the card says so)")
    proxy = sub.add_parser("proxy", help="serve a storage to many workers over gRPC: they give --storage "
                           "grpc://HOST:PORT and the database sees one process's connections")
    proxy.add_argument("--storage", metavar="URL", help="the SQLite, PostgreSQL or MySQL storage to serve "
                       "(default: $TUNEDECK_STORAGE or $OPTUNA_STORAGE)")
    proxy.add_argument("--port", type=int, required=True, metavar="N", help="the port workers connect to")
    proxy.add_argument("--host", default="127.0.0.1", metavar="H", help="the address to listen on (default "
                       "127.0.0.1; 0.0.0.0 for workers on other hosts: the channel has no authentication)")
    get = sub.add_parser("get", help="download a study's model from its artifact store, from any machine")
    study_address(get)
    get.add_argument("--trial", type=int, metavar="N", help="this trial's kept model (default: the final model, else "
                     "the best trial's)")
    get.add_argument("-o", "--output", default=".", metavar="DIR", help="the folder to write it in (default: here)")
    get.add_argument("--force", action="store_true", help="replace a file of the same name there")
    compare = sub.add_parser("compare", help="studies side by side: best, counts, times, parameters, settings; "
                             "--export FILE.md writes it with best-so-far PNGs")
    compare.add_argument("studies", nargs="*", metavar="STUDY", help="two or more study names, or NAME@URL for a "
                         "study in another storage")
    compare.add_argument("--storage", metavar="URL", help="default: $TUNEDECK_STORAGE or $OPTUNA_STORAGE")
    compare.add_argument("--export", metavar="FILE.md", help="also write the table as Markdown, with "
                         "compare-by-time.png and compare-by-trial.png beside it")
    compare.add_argument("--no-plots", action="store_true", help="no PNG figures beside the Markdown")
    compare.add_argument("--force", action="store_true", help="replace an existing --export file")
    add_study_parsers(sub, study_address)  # fork, status
    init = sub.add_parser("init-config", help="write a commented default config")
    init.add_argument("path", nargs="?", default="tunedeck.toml", metavar="PATH")
    init.add_argument("--model", default="mlp", metavar="mlp|cnn|FILE.py", help="whose default space to write")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    return parser


def parse_fix(item: str) -> tuple[str, Any]:
    """`epochs=1` -> ("epochs", 1); values are read as TOML (numbers, strings, lists)."""
    from engine import ConfigError

    name, sep, text = item.partition("=")
    if not sep or not name.strip() or not text.strip():
        raise ConfigError(f"--fix: expected NAME=VALUE (e.g. epochs=1), got {item!r}")
    text = text.strip()
    try:
        return name.strip(), tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return name.strip(), float(text)  # numbers TOML does not spell: .001, 1., 5e-4 with a leading dot
    except ValueError:
        raise ConfigError(f"--fix {name.strip()}: {text!r} is not a number, a string in quotes or a list") from None


def build_config(args: argparse.Namespace):
    """The config file (if any) with the flags laid over it, validated."""
    from engine.study import config_from_dict, read_toml

    data: dict[str, Any] = read_toml(args.config) if args.config else {}
    base = Path(args.config).absolute().parent if args.config else None  # a model file in it is relative to it
    for dest, key in FLAG_FIELDS.items():
        value = getattr(args, dest)
        if value is not None:
            data[key] = str(Path(value).absolute()) if key == "model" and value.endswith(".py") else value
    for item in args.fix:
        name, value = parse_fix(item)
        data.setdefault("space", {})[name] = value
    return config_from_dict(data, base)


def mistyped_command(word: str) -> str | None:
    """The command a first word that is neither a command, an option nor an existing file was meant to be."""
    if word.startswith("-") or word in COMMANDS or word == "app" or Path(word).exists() or word.endswith(".toml"):
        return None
    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    return close[0] if close else ""


def main(argv: list[str] | None = None) -> int:
    """The `tunedeck` command. Ctrl-C at any moment ends it with status 130 and no traceback."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        print("tunedeck: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    import engine  # noqa: F401  (NumPy, Optuna: imported with Ctrl-C held, see engine/__init__)

    if argv and (meant := mistyped_command(argv[0])) is not None:
        hint = f"did you mean {meant!r}? " if meant else ""
        print(f"tunedeck: error: {argv[0]!r} is not a command or a config file; {hint}commands: "
              f"{', '.join(COMMANDS)} (none opens the app)", file=sys.stderr)
        return 2
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("app", "-h", "--help")):
        argv.insert(0, "app")
    args = build_parser().parse_args(argv)
    from engine import UserError
    from engine.store import mask_secrets

    try:
        return COMMAND_FUNCS[args.command](args)
    except UserError as exc:
        print(f"tunedeck: error: {mask_secrets(str(exc), getattr(args, 'storage', None) or '')}", file=sys.stderr)
        return 2


def storage_of(args: argparse.Namespace) -> str:
    """--storage, else the environment's; a command that reads a stored study needs one."""
    from engine import ConfigError
    from engine.store import check_url, url_from_env

    url = args.storage or url_from_env()
    if not url:
        raise ConfigError("storage: give --storage URL (or set TUNEDECK_STORAGE), e.g. "
                          "--storage sqlite:///runs/mlp-mnist-5k/study.db")
    check_url(url)
    return url


def cmd_run(args: argparse.Namespace) -> int:
    from engine.logs import keep_native_log, native_stderr_held
    from tui.headless import run_headless

    with native_stderr_held() as held:  # a model file's TensorFlow logs go to the run's log, not the terminal
        config = build_config(args)
    try:
        return run_headless(config, args.export, plots=not args.no_plots, bell=args.bell)
    finally:
        keep_native_log(config.run_dir / "tensorflow.log", held)


def cmd_retrain(args: argparse.Namespace) -> int:
    from tui.headless import run_retrain

    return run_retrain(storage_of(args), args.study_name, args.trial, args.out, args.force)


def cmd_app(args: argparse.Namespace) -> int:
    from engine.logs import keep_native_log, native_stderr_held
    from tui.app import run_app

    with native_stderr_held() as held:  # a model file's TensorFlow logs go to the app's log, not the terminal
        config = build_config(args)
    try:
        return run_app(config, config_path=args.config, bell=args.bell, export=args.export, plots=not args.no_plots)
    finally:
        keep_native_log(Path(config.out_dir) / "tensorflow.log", held)


def cmd_watch(args: argparse.Namespace) -> int:
    from engine import ConfigError
    from engine.store import check_study, default_storages, dialect, url_from_env
    from tui.app import run_app

    if not (args.storage or url_from_env()):  # the studies `tunedeck run` left here by default
        found = default_storages(Path("."))  # relative: short in the picker
        if not found:
            raise ConfigError("storage: no runs/*/study.db under this folder; give --storage URL (or set "
                              "TUNEDECK_STORAGE), e.g. --storage sqlite:///runs/mlp-mnist-5k/study.db")
        if args.study_name:
            found = [url for url in found if study_in(url, args.study_name)][:1] or found[:1]
            return run_app(watch=(found[0], args.study_name))
        return run_app(watch=(found, None))
    url = storage_of(args)
    if dialect(url) in ("sqlite", "journal"):
        check_study(url, None)  # a missing file: one line here; a server not up yet, or a study not there yet,
    return run_app(watch=(url, args.study_name))  # is waited for in the app


def study_in(url: str, name: str) -> bool:
    from engine.store import list_studies

    try:
        return any(row.name == name for row in list_studies(url))
    except Exception:  # noqa: BLE001 - an unreadable file is not where the study is
        return False


def cmd_stop(args: argparse.Namespace) -> int:
    from engine.store import stop_study

    running = stop_study(storage_of(args), args.study_name, args.now, f"tunedeck stop on {platform.node()}")
    when = "at their next batch" if args.now else "after their running trial"
    print(f"asked every worker of study {args.study_name!r} to stop {when} ({running} trials running); "
          f"they see it within a few seconds")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from engine.report import render_report, write_report
    from engine.store import reading_study

    with reading_study(storage_of(args), args.study_name) as study:
        if not args.output:
            print(render_report(study))
            return 0
        try:
            path = write_report(study, args.output, plots=not args.no_plots)
        except OSError as exc:  # a full disk, a file size limit: the old summary is left as it was
            print(f"tunedeck: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    print(f"summary written to {path}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from engine.store import get_model

    path, what = get_model(storage_of(args), args.study_name, args.trial, Path(args.output), args.force)
    print(f"wrote {path}: {what} of study {args.study_name}")
    return 0


def cmd_proxy(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; either ends it with status 0."""
    from engine.store import mask_url, serve_proxy

    url = storage_of(args)
    serve_proxy(url, args.port, args.host, announce=lambda address: print(
        f"tunedeck proxy: serving {mask_url(url)} at {address}; workers give --storage {address} "
        f"(Ctrl-C stops)", flush=True))
    print("tunedeck proxy: stopped", flush=True)
    return 0


def cmd_init_config(args: argparse.Namespace) -> int:
    from engine import ConfigError, save_config
    from engine.study import config_from_dict

    path = Path(args.path)
    if path.exists() and not args.force:
        raise ConfigError(f"init-config: {path} already exists; pass --force to overwrite it")
    model = str(Path(args.model).absolute()) if args.model.endswith(".py") else args.model
    save_config(config_from_dict({"model": model}), path, comments=True)
    print(f"wrote {path}; run it with: tunedeck run {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tui.compare_cmd import cmd_compare as compare

    return compare(args)


COMMAND_FUNCS = {"run": cmd_run, "app": cmd_app, "watch": cmd_watch, "stop": cmd_stop, "export": cmd_export,
                 "get": cmd_get, "compare": cmd_compare,
                 "retrain": cmd_retrain, "proxy": cmd_proxy, "init-config": cmd_init_config,
                 "fork": cmd_fork, "status": cmd_status}

if __name__ == "__main__":
    sys.exit(main())
