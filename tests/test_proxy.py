"""`tunedeck proxy`: workers reach a PostgreSQL study through one gRPC proxy process (grpc://HOST:PORT).

The workers train with the fake trainer (tests/fakes.py): what is tested is the proxy, the grpc:// storage and the
runner's lease on it (a grpc:// storage has no Optuna heartbeat).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from fakes import fake_config, join, start_workers, wait_until
from optuna.trial import TrialState

from engine import ConfigError
from engine.store import check_url, has_heartbeat, open_storage, schema
from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_grpc_url_is_host_and_port():
    check_url("grpc://host:1234")
    check_url("grpc://127.0.0.1:13000")
    assert not has_heartbeat("grpc://host:1234")  # its trials carry tunedeck's lease, like a journal's


@pytest.mark.parametrize("url", ["grpc://host", "grpc://:1234", "grpc://host:0", "grpc://host:99999",
                                 "grpc://host:port", "grpc://host:1234/db", "grpc://user@host:1234"])
def test_a_bad_grpc_url_says_how_one_is_written(url):
    with pytest.raises(ConfigError, match=r"grpc://HOST:PORT \(where tunedeck proxy serves\), got") as caught:
        check_url(url)
    assert "\n" not in str(caught.value)


def test_proxy_refuses_what_it_cannot_serve(tmp_path, capsys):
    assert main(["proxy", "--storage", f"journal:///{tmp_path}/study.log", "--port", "13000"]) == 2
    assert "Optuna's gRPC proxy does not serve journals" in capsys.readouterr().err
    assert main(["proxy", "--storage", f"sqlite:///{tmp_path}/study.db", "--port", "70000"]) == 2
    assert "port: expected a port in 1..65535, got 70000" in capsys.readouterr().err
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["proxy", "--storage", f"sqlite:///{tmp_path}/study.db", "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in error and error.count("\n") == 1
    assert not (tmp_path / "study.db").exists()  # refused before anything was opened


def test_eight_workers_through_a_proxy_finish_exactly_the_budget(postgres_url, tmp_path):
    port = free_port()
    proxy = subprocess.Popen([sys.executable, "-m", "tui.cli", "proxy", "--storage", postgres_url, "--port",
                              str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: listening(port) or proxy.poll() is not None, 60)
        assert proxy.poll() is None, proxy.communicate()
        config = fake_config(tmp_path, f"grpc://127.0.0.1:{port}", n_trials=16, epochs=2)
        assert join(start_workers(config, 8, epoch_seconds=0.05), 120) == [0] * 8
    finally:
        proxy.send_signal(signal.SIGTERM)
        out, err = proxy.communicate(timeout=30)
    assert proxy.returncode == 0, err  # SIGTERM (or Ctrl-C) ends the proxy cleanly
    assert out.splitlines() == [f"tunedeck proxy: serving {postgres_url} at grpc://127.0.0.1:{port}; workers give "
                                f"--storage grpc://127.0.0.1:{port} (Ctrl-C stops)", "tunedeck proxy: stopped"]
    trials = optuna.load_study(study_name=config.name, storage=open_storage(postgres_url)).get_trials(deepcopy=False)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 16
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert all(t.user_attrs.get(schema.STOPPED_BY) == "budget" for t in trials if t.state == TrialState.FAIL)
    assert len({t.user_attrs[schema.WORKER]["id"] for t in trials}) >= 2
    assert all(schema.LEASE in t.user_attrs for t in trials if t.state == TrialState.COMPLETE)
