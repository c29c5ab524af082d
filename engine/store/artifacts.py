"""Where a study's models and figures travel: an Optuna artifact store the study records (schema.ARTIFACT_STORE),
so that any machine that reaches the storage and the store can fetch the best model, whichever worker trained it.

`file:///PATH` is Optuna's FileSystemArtifactStore (a folder: local, or shared such as NFS); `s3://BUCKET/PREFIX`
its Boto3ArtifactStore (boto3, extra `[s3]`), with the usual AWS environment variables and AWS_ENDPOINT_URL for
MinIO and other S3-compatible stores. Artifacts are linked to their trial or study by Optuna (system attributes),
so optuna-dashboard's `--artifact-dir` shows a file store's too.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

import optuna
from optuna.artifacts import ArtifactMeta, download_artifact, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial

from engine.errors import ConfigError, StorageError, UserError, first_line
from engine.store import schema
from engine.store.urls import dialect, journal_path, sqlite_path

log = logging.getLogger("tunedeck")
MODEL_SUFFIX = ".keras"


class PrefixedStore:
    """An artifact store whose artifact ids live under a key prefix (s3://BUCKET/PREFIX)."""

    def __init__(self, store: Any, prefix: str) -> None:
        self.store, self.prefix = store, prefix

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self.store.open_reader(self.prefix + artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.store.write(self.prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self.store.remove(self.prefix + artifact_id)


def check_artifacts_url(url: str) -> None:
    """A ConfigError unless `url` is file:///PATH or s3://BUCKET[/PREFIX]."""
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.path and parsed.netloc in ("", "localhost"):
        return
    if parsed.scheme == "s3" and parsed.netloc:
        return
    raise ConfigError(f"artifacts: expected file:///PATH or s3://BUCKET/PREFIX, got {url!r}")


def open_artifact_store(url: str) -> Any:
    """The Optuna artifact store `url` names (a file store's folder is made)."""
    check_artifacts_url(url)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        folder = Path(parsed.path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"artifacts: cannot use {str(folder)!r}: {exc.strerror or exc}") from None
        return optuna.artifacts.FileSystemArtifactStore(folder)
    try:
        import boto3
    except ImportError:
        raise ConfigError("artifacts: s3:// stores need boto3: pip install 'tunedeck[s3]'") from None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    client = boto3.client("s3", endpoint_url=endpoint)
    store = optuna.artifacts.Boto3ArtifactStore(parsed.netloc, client=client)
    prefix = parsed.path.strip("/")
    return PrefixedStore(store, prefix + "/") if prefix else store


def check_writable(store: Any, url: str) -> None:
    """Write and remove a probe in the store: a read-only folder or a refused bucket is a one-line error before a
    study is made, not a warning on every trial."""
    import io

    probe = f".tunedeck-probe-{os.getpid()}"
    try:
        store.write(probe, io.BytesIO(b"probe"))
        store.remove(probe)
    except Exception as exc:
        raise ConfigError(f"artifacts: cannot write to {url}: {first_line(exc)}") from None


def default_artifacts_url(storage_url: str, run_dir: Path) -> str:
    """A folder beside a SQLite or journal file (it travels with it); else the run folder on this host."""
    path = journal_path(storage_url) if dialect(storage_url) == "journal" else sqlite_path(storage_url)
    folder = path.parent if path is not None else run_dir
    return (folder / "artifacts").absolute().as_uri()


def study_artifacts_url(study: optuna.Study) -> str:
    """Where the study's artifacts are ("" for a study that records no store)."""
    recorded = study.user_attrs.get(schema.ARTIFACT_STORE, "")
    return recorded if isinstance(recorded, str) else ""


def reachable(url: str, creator_host: str, host: str) -> None:
    """A worker on another host than the study's creator cannot use a file store it does not see: say so."""
    parsed = urlparse(url)
    if parsed.scheme == "file" and creator_host and creator_host != host and not Path(parsed.path).is_dir():
        raise ConfigError(f"artifacts: the study keeps its models in {url} on {creator_host}, which this host "
                          f"({host}) does not see; share that folder here, or create the study with --artifacts "
                          f"s3://BUCKET/PREFIX")


def upload(store: Any, path: Path, study_or_trial: Any, storage: Any = None) -> str:
    """Upload a file as an artifact of a trial or study; its id. Errors name the store's trouble in one line."""
    try:
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study_or_trial,
                               storage=storage)
    except Exception as exc:  # a full disk, a refused bucket, no credentials
        raise StorageError(f"artifacts: cannot upload {path.name}: {first_line(exc)}") from exc


def replace_study_artifact(store: Any, path: Path, study: optuna.Study) -> str:
    """Upload a file as a study artifact, removing the older copies of the same name from the store (an export
    run again replaces its figures; Optuna keeps the records of the older ones, which then no longer download)."""
    for meta in artifacts_of(study):
        if meta.filename == path.name:
            with contextlib.suppress(Exception):
                store.remove(meta.artifact_id)
    return upload(store, path, study)


def upload_to_study(study: optuna.Study, paths: list[Path]) -> None:
    """Files of the study (final model, figures), also in its artifact store, replacing older copies. Optional: the
    files are written already, so a store that fails is logged, not raised."""
    url = study_artifacts_url(study)
    if not url or not paths:
        return
    try:
        store = open_artifact_store(url)
        for path in paths:
            replace_study_artifact(store, path, study)
    except UserError as exc:
        log.warning("%s not uploaded: %s", ", ".join(path.name for path in paths), exc)


def artifacts_of(study_or_trial: optuna.Study | FrozenTrial, storage: Any = None) -> list[ArtifactMeta]:
    return get_all_artifact_meta(study_or_trial, storage=storage)


def models_of(study_or_trial: optuna.Study | FrozenTrial, storage: Any = None) -> list[ArtifactMeta]:
    """The .keras artifacts of a trial (its kept model) or a study (final models), oldest first."""
    return [meta for meta in artifacts_of(study_or_trial, storage) if meta.filename.endswith(MODEL_SUFFIX)]


def remove_models(store: Any, trial: FrozenTrial, storage: Any) -> int:
    """Remove a trial's model artifacts from the store (it dropped out of the best k); how many."""
    removed = 0
    for meta in models_of(trial, storage):
        try:
            store.remove(meta.artifact_id)
            removed += 1
        except Exception:  # already gone (another worker removed it), or unreachable: a leftover, not an error
            continue
    return removed


def download(store: Any, meta: ArtifactMeta, folder: Path, overwrite: bool = False) -> Path:
    """Download an artifact into `folder` under its file name; an existing file is kept unless `overwrite`."""
    target = folder / meta.filename
    if target.exists() and not overwrite:
        raise ConfigError(f"output: {target} exists; choose another -o folder, or pass --force to replace it")
    try:
        store.open_reader(meta.artifact_id).close()  # there, before a folder is made for it
    except ArtifactNotFound:
        raise StorageError(f"artifacts: {meta.filename} is no longer in the store (a model that dropped out of "
                           f"the best kept is removed)") from None
    except Exception as exc:  # a store that does not answer, no credentials
        raise StorageError(f"artifacts: cannot read {meta.filename} from the store: {first_line(exc)}") from exc
    made = not folder.exists()
    partial = folder / f".{meta.filename}.{os.getpid()}.part"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        download_artifact(artifact_store=store, file_path=str(partial), artifact_id=meta.artifact_id)
        partial.replace(target)
    except Exception as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
            if made:
                folder.rmdir()
        if isinstance(exc, OSError):
            raise ConfigError(f"output: cannot write {target}: {exc.strerror or exc}") from None
        raise StorageError(f"artifacts: cannot download {meta.filename}: {first_line(exc)}") from exc
    return target


def get_model(storage_url: str, study_name: str, number: int | None, folder: Path,
              overwrite: bool = False) -> tuple[Path, str]:
    """Download a study's model from its store: trial `number`'s kept model, or (None) the final model when
    there is one, else the best trial's. Returns the file and what it is."""
    from engine.store.follower import study_objective
    from engine.store.opening import reading_study

    with reading_study(storage_url, study_name) as study:
        url = study_artifacts_url(study)
        if not url:
            raise ConfigError(f"study-name: {study_name!r} records no artifact store (a study made before tunedeck "
                              f"kept one, or by another tool): its models are in the run folder of the worker that "
                              f"trained them")
        store = open_artifact_store(url)
        trials = study.get_trials(deepcopy=False)
        if number is None:
            finals = models_of(study)
            if finals:
                return download(store, finals[-1], folder, overwrite), "the final model (tunedeck retrain)"
            goal = study_objective(study)
            best = goal.best((t for t in trials if schema.state_name(t) == "COMPLETE"), lambda t: t.value)
            if best is None:
                raise ConfigError(f"study-name: {study_name!r} has no complete trial, so no model yet")
            number = best.number
        if not 0 <= number < len(trials):
            raise ConfigError(f"trial: no trial {number}; the study has trials 0..{len(trials) - 1}")
        kept = models_of(trials[number], study._storage)
        if not kept:
            raise ConfigError(f"trial: trial {number} has no kept model (the study keeps its best keep_best models)")
        return download(store, kept[-1], folder, overwrite), f"trial {number}'s model"


def trial_artifacts(storage_url: str, study_name: str, number: int) -> list[tuple[str, bool]]:
    """A trial's artifacts (its kept model) as its detail lists them: (file name, still in the store)."""
    from engine.store.opening import reading_study

    with reading_study(storage_url, study_name) as study:
        trials = study.get_trials(deepcopy=False)
        url = study_artifacts_url(study)
        if not 0 <= number < len(trials) or not url:
            return []
        store = open_artifact_store(url)
        return [(meta.filename, in_store(store, meta)) for meta in artifacts_of(trials[number], study._storage)]


def in_store(store: Any, meta: ArtifactMeta) -> bool:
    try:
        store.open_reader(meta.artifact_id).close()
    except Exception:  # removed (it dropped out of the best k), or the store does not answer
        return False
    return True
