"""The storage, the source of truth every worker and view shares: URLs, the stored schema, stop requests, the
studies it holds, a study followed as events, and who ran each trial."""

from engine.store import schema
from engine.store.artifacts import (
    artifacts_of,
    check_artifacts_url,
    check_writable,
    default_artifacts_url,
    download,
    get_model,
    models_of,
    open_artifact_store,
    reachable,
    remove_models,
    replace_study_artifact,
    study_artifacts_url,
    trial_artifacts,
    upload,
    upload_to_study,
)
from engine.store.catalog import StudyRow, default_storages, list_studies
from engine.store.control import read_stop_request, run_again, stop_request_id, stop_study, write_stop_request
from engine.store.follower import Counts, StudyFollower, epochs_of, study_objective, trial_finished_event
from engine.store.fork import RUNNING_WHEN_FORKED, fork_study
from engine.store.identity import (
    WorkerInfo,
    fail_dead_local_trials,
    pid_alive,
    process_start,
    reap_expired_leases,
    renew_lease,
    this_worker,
)
from engine.store.opening import (
    check_study,
    close_storage,
    creating_study,
    load_study,
    open_existing_storage,
    open_storage,
    reading_study,
)
from engine.store.proxy import serve_proxy
from engine.store.retrying import StorageUnreachable, fail_trial_now, transient, unreachable_in
from engine.store.status import STATES, storage_status, study_status
from engine.store.urls import (
    check_storage_files,
    check_url,
    dialect,
    has_heartbeat,
    mask_secrets,
    mask_url,
    url_from_env,
    with_driver,
)

__all__ = [
    "artifacts_of", "check_artifacts_url", "check_writable", "default_artifacts_url", "download", "get_model",
    "models_of", "open_artifact_store", "reachable", "remove_models", "replace_study_artifact", "study_artifacts_url",
    "trial_artifacts", "upload", "upload_to_study",
    "Counts", "StorageUnreachable", "StudyFollower", "StudyRow", "WorkerInfo", "check_storage_files", "check_study",
    "check_url", "close_storage", "creating_study", "default_storages", "dialect", "epochs_of",
    "fail_dead_local_trials", "fail_trial_now", "has_heartbeat", "list_studies", "load_study", "mask_secrets",
    "mask_url", "open_existing_storage", "open_storage", "pid_alive", "process_start", "read_stop_request",
    "reading_study", "reap_expired_leases", "renew_lease", "run_again", "schema", "serve_proxy", "stop_request_id",
    "stop_study", "study_objective", "this_worker", "transient", "trial_finished_event", "unreachable_in",
    "url_from_env", "with_driver", "write_stop_request",
    "RUNNING_WHEN_FORKED", "STATES", "fork_study", "storage_status", "study_status",
]
