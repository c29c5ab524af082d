"""A study forked: copied (Optuna's copy_study: its direction, trials, user and system attributes) under a new name,
in the same storage or another, so that it can go on with another sampler, pruner or budget while the original
stays as it was. Only the copy is written; the original is read once.

The copy's tunedeck records are then made its own: its stored config names it, it records where it came from
(schema.FORKED_FROM), and a stop request of the original is not carried over (a stopped original must not read as a
stopped fork). A trial still running in the original is copied as FAIL "running in the original when forked": its
worker goes on in the original, and nothing would ever finish it in the copy (an RDB storage has no heartbeat for
it, so it would hold a slot of the budget forever). Waiting (queued) trials are copied as they are: the fork runs
them. Trial numbers are kept, so every trial keeps its number, its parameters, its worker and its model file's name.
"""

from __future__ import annotations

import datetime
from typing import Any

import optuna
from optuna.trial import TrialState

from engine.errors import StorageError, first_line
from engine.store import schema
from engine.store.opening import close_storage, load_study, open_existing_storage, open_storage
from engine.store.urls import check_storage_files, mask_secrets, mask_url

RUNNING_WHEN_FORKED = "running in the original when forked"


def fork_study(old: str, new: str, from_url: str, to_url: str | None = None) -> dict[str, Any]:
    """Copy study `old` of `from_url` as `new` in `to_url` (default: the same storage) and make the copy's records
    its own; returns the copy's FORKED_FROM record ({"study", "storage", "at", "trials", "running"}: the original,
    masked, when, how many trials were copied, and the numbers of those copied as FAIL because they ran). A missing
    original or an existing `new` is a StorageError, with nothing created."""
    to_url = to_url or from_url
    check_storage_files(to_url)  # a URL that is no storage, or a file that is not Optuna's: refused before anything
    source = open_existing_storage(from_url)
    target = None
    try:
        original = load_study(source, from_url, old)  # a missing study names those that are there
        target = source if to_url == from_url else open_storage(to_url)
        where = f"{new!r} in {mask_url(to_url)}"
        if _exists(target, new):
            raise StorageError(f"study-name: study {where} already exists; fork into another name")
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # not Optuna's "A new study created" on stderr
        try:
            optuna.copy_study(from_study_name=original.study_name, from_storage=source, to_storage=target,
                              to_study_name=new)
        except optuna.exceptions.DuplicatedStudyError:  # made by someone else in the meantime
            raise StorageError(f"study-name: study {where} already exists; fork into another name") from None
        except Exception as exc:
            _delete_partial(target, new)
            raise StorageError(f"fork: cannot copy {old!r} into {where}: "
                               f"{mask_secrets(mask_secrets(first_line(exc), to_url), from_url)}") from None
        finally:
            optuna.logging.set_verbosity(verbosity)
        try:
            return _make_own(optuna.load_study(study_name=new, storage=target), old, from_url, to_url)
        except Exception as exc:
            _delete_partial(target, new)
            raise StorageError(f"fork: cannot record the fork {where}: {mask_secrets(first_line(exc), to_url)}") \
                from None
    finally:
        if target is not None and target is not source:
            close_storage(target)
        close_storage(source)


def _exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def _delete_partial(storage: optuna.storages.BaseStorage, name: str) -> None:
    """A copy that failed half-way is removed, so that the same command can be run again."""
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except Exception:  # noqa: BLE001 - the storage is gone: the error that brought us here says so
        pass


def _make_own(copy: optuna.Study, old: str, from_url: str, to_url: str) -> dict[str, Any]:
    """The copy's tunedeck records, made the fork's: its running trials failed, its config renamed, the original's
    stop request dropped, where it came from recorded."""
    storage = copy._storage
    running = []
    for trial in copy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, schema.ERROR, RUNNING_WHEN_FORKED)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        running.append(trial.number)
    attrs = copy.user_attrs
    config = attrs.get(schema.CONFIG)
    if isinstance(config, dict):
        copy.set_user_attr(schema.CONFIG, {**config, "study_name": copy.study_name, "storage": mask_url(to_url)})
    if schema.STOP_REQUEST in attrs:  # Optuna cannot delete an attribute: no request reads as no request
        copy.set_user_attr(schema.STOP_REQUEST, None)
    record: dict[str, Any] = {"study": old, "storage": mask_url(from_url),
                              "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                              "trials": len(copy.get_trials(deepcopy=False)), "running": running}
    if isinstance(attrs.get(schema.FORKED_FROM), dict):
        record["previous"] = attrs[schema.FORKED_FROM]  # a fork of a fork keeps its whole line
    copy.set_user_attr(schema.FORKED_FROM, record)
    return record
