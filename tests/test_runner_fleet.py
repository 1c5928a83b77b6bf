"""The one fleet runner (remote/runner/fleet.py): forks, deadlines, failures as data, hand-over."""

from __future__ import annotations

import threading
import time

from remote.runner.failures import DeadlineExceeded
from remote.runner.fleet import Context, FleetRunner, Job, Result


def run(task, jobs, **kw):
    got: list[Result] = []
    kw.setdefault("forks", 4)
    kw.setdefault("timeout", 5.0)
    runner = FleetRunner(task, lambda r: got.append(r) or ("failed" if r.failed else "ok"), **kw)
    interrupted = runner.run(jobs)
    return got, interrupted


def test_every_job_once_with_its_value_or_its_failure():
    def task(n: int, ctx: Context) -> int:
        if n % 3 == 0:
            raise ValueError(f"bad {n}")
        return n * 10

    got, interrupted = run(task, [Job(f"h{n}", n) for n in range(20)])
    assert not interrupted
    assert sorted(r.name for r in got) == sorted(f"h{n}" for n in range(20))
    for r in got:
        n = r.job.item
        if n % 3 == 0:
            assert isinstance(r.exc, ValueError) and r.value is None and r.failed
        else:
            assert r.value == n * 10 and r.exc is None and not r.failed


def test_never_more_than_forks_in_flight():
    lock = threading.Lock()
    now = [0]
    peak = [0]

    def task(n: int, ctx: Context) -> None:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.02)
        with lock:
            now[0] -= 1

    got, _ = run(task, [Job(str(n), n) for n in range(30)], forks=3)
    assert len(got) == 30 and peak[0] == 3


def test_deadline_is_a_timeout_result_and_sets_cancel():
    cancelled = threading.Event()
    release = threading.Event()

    def task(n: int, ctx: Context) -> str:
        if n == 0:
            ctx.cancel.wait(10)
            if ctx.cancel.is_set():
                cancelled.set()
            release.wait(10)
            return "late"
        return "quick"

    t0 = time.monotonic()
    got, _ = run(task, [Job("slow", 0), Job("fast", 1)], timeout=0.5)
    release.set()
    by = {r.name: r for r in got}
    assert time.monotonic() - t0 < 5
    assert isinstance(by["slow"].exc, DeadlineExceeded) and "0.5 s per-host deadline" in str(by["slow"].exc)
    assert by["fast"].value == "quick"
    assert cancelled.wait(2)
    assert len(got) == 2  # the late value of the abandoned task is ignored


def test_hand_over_returns_the_result_while_the_task_still_closes():
    seen_at: dict[str, float] = {}
    closed = threading.Event()

    def task(n: int, ctx: Context) -> str:
        ctx.hand_over("evidence")
        time.sleep(0.3)  # closing the session
        closed.set()
        raise ConnectionResetError("the close failed")  # after the hand-over: does not change the result

    runner = FleetRunner(task, lambda r: seen_at.setdefault(r.value, time.monotonic()) and "ok",
                         forks=1, timeout=5)
    t0 = time.monotonic()
    runner.run([Job("a", 0)])
    assert closed.is_set()  # run() waited for the task to end (its slot stayed taken)
    assert list(seen_at) == ["evidence"]
    assert seen_at["evidence"] - t0 < 0.25


def test_deferred_results_are_all_processed_before_run_returns():
    def task(n: int, ctx: Context) -> None:
        ctx.hand_over(n)
        time.sleep(0.01)

    got, _ = run(task, [Job(str(n), n) for n in range(50)], forks=10, defer=True)
    assert sorted(r.value for r in got) == list(range(50))


def test_ctrl_c_stops_starting_hosts_and_reports_what_finished():
    import _thread

    def task(n: int, ctx: Context) -> int:
        if n == 2:
            _thread.interrupt_main()
        time.sleep(0.05)
        return n

    got, interrupted = run(task, [Job(str(n), n) for n in range(200)], forks=2)
    assert interrupted and len(got) < 200

