"""One stop and one objective: a StopRequest only escalates and is never lost; an Objective answers "is it better"."""

from __future__ import annotations

import math
import os
import signal
import threading

import pytest
from fakes import wait_until

from engine import Cause, Objective, Scope, StopRequest
from engine.contract import StopLatch
from engine.signals import SignalRelay

AFTER_HERE = StopRequest(now=False, scope=Scope.PROCESS, cause=Cause.USER)
NOW_STUDY = StopRequest(now=True, scope=Scope.STUDY, cause=Cause.USER)
SIGTERM_HERE = StopRequest(now=True, scope=Scope.PROCESS, cause=Cause.SIGNAL)


def test_a_later_request_escalates_and_never_downgrades():
    latch = StopLatch()
    assert latch.request is None and not latch.now.is_set()
    latch.ask(AFTER_HERE)
    assert latch.request == AFTER_HERE and not latch.now.is_set()
    assert latch.ask(NOW_STUDY) == StopRequest(now=True, scope=Scope.STUDY, cause=Cause.USER)
    assert latch.now.is_set()
    assert latch.ask(AFTER_HERE) == StopRequest(now=True, scope=Scope.STUDY, cause=Cause.USER)  # not downgraded


def test_a_signal_s_cause_is_not_overwritten_by_a_later_user_request():
    latch = StopLatch()
    latch.ask(StopRequest(now=False, scope=Scope.PROCESS, cause=Cause.USER))  # `s`
    assert latch.ask(SIGTERM_HERE).cause == Cause.SIGNAL  # the signal made it stop now: its cause
    assert latch.ask(StopRequest(now=True, cause=Cause.USER)).cause == Cause.SIGNAL
    assert latch.request.text() == "stopped by signal"


def test_a_study_wide_now_arriving_while_the_first_request_is_written_is_still_written():
    latch = StopLatch()
    latch.ask(StopRequest(now=False, scope=Scope.STUDY))
    being_written = latch.unwritten()
    assert being_written == StopRequest(now=False, scope=Scope.STUDY)
    latch.ask(NOW_STUDY)  # arrives while the poller writes the first one
    latch.mark_written(being_written)
    assert latch.unwritten() == NOW_STUDY  # the escalation is written next, not lost
    latch.mark_written(latch.unwritten())
    assert latch.unwritten() is None
    latch.ask(AFTER_HERE)
    assert latch.unwritten() is None  # nothing new for the other workers


def test_a_process_request_is_never_written_and_a_stored_one_is_not_written_again():
    latch = StopLatch()
    latch.ask(SIGTERM_HERE)
    assert latch.unwritten() is None
    other = StopLatch()
    other.seen_in_storage(StopRequest(now=True, scope=Scope.STUDY, by="host:1/cpu"))
    assert other.now.is_set() and other.unwritten() is None and other.request.text() == "stopped by host:1/cpu"


@pytest.mark.parametrize("order", ["study first", "process first"])
def test_a_stop_now_for_this_process_never_becomes_one_for_the_whole_study(order):
    """`s` (every worker, after the trial) and a SIGTERM (this process, now): here it stops now, but the other
    workers are only ever told to stop after their trial."""
    latch = StopLatch()
    first, second = (StopRequest(), SIGTERM_HERE) if order == "study first" else (SIGTERM_HERE, StopRequest())
    latch.ask(first)
    if order == "study first":
        latch.mark_written(latch.unwritten())
    latch.ask(second)
    assert latch.request.now and latch.now.is_set()
    pending = latch.unwritten()
    assert pending is None if order == "study first" else pending == StopRequest()
    seen = StopLatch()
    seen.seen_in_storage(StopRequest(by="host:1/cpu"))  # another worker's `s`, read from the storage
    seen.ask(SIGTERM_HERE)
    assert seen.unwritten() is None  # not written back, escalated


def test_requests_from_many_threads_merge_to_the_strongest():
    latch = StopLatch()
    requests = [AFTER_HERE] * 50 + [NOW_STUDY] + [AFTER_HERE] * 50
    threads = [threading.Thread(target=latch.ask, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (latch.request.now, latch.request.scope) == (True, Scope.STUDY)


def test_a_signal_relay_calls_back_off_the_handler_even_while_the_main_thread_holds_the_lock():
    """A handler that took the display's lock while the main thread redraws under it would hang for good."""
    lock = threading.Lock()
    seen: list[int] = []

    def on_signal(signum: int) -> None:
        with lock:
            seen.append(signum)

    with SignalRelay((signal.SIGUSR1,), on_signal):
        with lock:  # the main thread "redraws"
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(1000):  # bytecodes run: the Python handler runs here, and must not block
                pass
            assert seen == []  # the relay waits for the lock, on its own thread
        wait_until(lambda: seen == [signal.SIGUSR1], 10)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # restored


def test_a_signal_relay_s_immediate_hook_may_end_the_run_in_the_handler():
    def immediate(signum: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), SignalRelay((signal.SIGUSR1,), lambda signum: None, immediate):
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(1000):
            pass


@pytest.mark.parametrize("metric, maximize", [("val_accuracy", True), ("test_accuracy", True), ("val_loss", False)])
def test_objective_of_a_metric(metric, maximize):
    goal = Objective.of(metric)
    assert (goal.maximize, goal.direction, goal.mode) == (maximize, "maximize" if maximize else "minimize",
                                                          "max" if maximize else "min")
    assert goal.label == metric.replace("_", " ")
    assert goal.monitored.metric == ("val_loss" if metric == "val_loss" else "val_accuracy")


def test_objective_better_best_and_sort_for_both_directions():
    accuracy, loss = Objective("val_accuracy", True), Objective("val_loss", False)
    assert accuracy.better(0.9, 0.8) and not accuracy.better(0.8, 0.9) and not accuracy.better(0.8, 0.8)
    assert loss.better(0.2, 0.3) and not loss.better(0.3, 0.2)
    for goal in (accuracy, loss):
        assert goal.better(0.5, None) and goal.better(0.5, math.nan)
        assert not goal.better(None, 0.5) and not goal.better(math.nan, 0.5) and not goal.better(None, None)
    values = [0.3, None, 0.9, math.nan, 0.1, 0.9]
    assert accuracy.best(values) == 0.9 and loss.best(values) == 0.1
    assert accuracy.best(range(len(values)), lambda i: values[i]) == 2  # the first of equals
    assert accuracy.best([None, math.nan]) is None
    assert sorted(values[:3] + [0.1], key=accuracy.sort_key) == [0.9, 0.3, 0.1, None]
    assert sorted(values[:3] + [0.1], key=loss.sort_key) == [0.1, 0.3, 0.9, None]


def test_fail_points_sit_past_the_worst_end_never_on_the_best():
    accuracy, loss = Objective("val_accuracy", True), Objective("val_loss", False)
    values = [0.9, 0.95, 0.8]
    assert accuracy.fail_position(values) < 0.8
    assert loss.fail_position([0.2, 0.4, 0.3]) > 0.4  # 0.0 would be the best end of a loss axis
    assert loss.fail_position([]) > accuracy.fail_position([])
    assert accuracy.fail_position([0.5, 0.5]) < 0.5 and loss.fail_position([0.5]) > 0.5
