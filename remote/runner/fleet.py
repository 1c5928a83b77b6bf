"""The one fleet runner: a task (a callable per host) run over many hosts at once.

Scan, check and fix are tasks; this module owns what they share: how many hosts are in flight
(``forks``), port80's own per-host deadline, results handed back as each host ends (in the calling
thread, so the caller writes files without locks), progress on stderr, Ctrl-C, and the garbage
collector and scheduling work the benchmark justified (scripts/bench_fleet.py). A failure is data:
whatever a task raises, and a deadline that runs out, comes back as a ``Result`` with ``exc`` set,
never as an exception out of ``run``.

A task is called in a worker thread of its own as ``task(item, ctx)``; everything it creates
(pypsrp objects, sockets) stays in that thread. It returns its value, or hands it over early with
``ctx.hand_over(value)`` while it still has work to do that the result does not depend on (closing
the remote session): the host keeps its slot until the task returns, but its result is processed
at once. ``ctx.cancel`` is set when the deadline runs out (a task that checks it between steps stops
cleanly; one blocked on the network is abandoned, its late result ignored).
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable, Generic, Iterable, Optional, TypeVar

from remote.runner.failures import DeadlineExceeded
from remote.runner.limits import slow_handoff

T = TypeVar("T")

GC_EVERY = 100  # finished hosts between two full garbage collections (see FleetRunner.run)
DEFER_QUIET_S = 0.02  # deferred results are processed when no host message came for this long...
DEFER_MAX_S = 1.5  # ...or when the oldest waited this long
GC_GEN0 = 10000  # gen-0 threshold while a fleet runs (Python's default is 700)
FINISHERS = 4  # threads that process results (see FleetRunner: ``process``)
_CLOSED = object()
_PROCESSED = -1  # token of a message from a finisher thread


@dataclass
class Job(Generic[T]):
    """One host's unit of work: a unique ``name`` (the host) and what the task gets (``item``)."""

    name: str
    item: T


@dataclass
class Result(Generic[T]):
    """What one host's task produced: its ``value``, or the exception that ended it (``exc``; a
    deadline that ran out is a ``DeadlineExceeded``). ``elapsed`` is seconds since the task started."""

    job: Job[T]
    value: Any = None
    exc: Optional[BaseException] = None
    elapsed: float = 0.0

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def failed(self) -> bool:
        return self.exc is not None


class Context:
    """What a task gets besides its item: its deadline, a cancel flag, and ``hand_over``."""

    __slots__ = ("deadline", "cancel", "_token", "_out", "_handed", "_defer")

    def __init__(self, deadline: float, token: int, out: "queue.SimpleQueue", defer: bool) -> None:
        self.deadline = deadline  # seconds this host may take (for the task's own timeouts)
        self.cancel = threading.Event()
        self._token, self._out, self._handed, self._defer = token, out, False, defer

    def hand_over(self, value: Any, defer: Optional[bool] = None) -> None:
        """This host's result is ``value``; what the task still does (closing a session) does not
        change it. ``defer``: process it when the hosts in flight leave the CPU alone (see
        ``FleetRunner``); default: the runner's ``defer`` setting."""
        if self._handed:
            return
        self._handed = True
        self._out.put((self._token, value, None, self._defer if defer is None else defer))

    @property
    def handed_over(self) -> bool:
        return self._handed


class Progress:
    """The progress line on stderr (done/total, counts per status, hosts running)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done = total, enabled, 0
        self.counts: dict[str, int] = {}
        self._last = 0.0

    def update(self, status: Optional[str], running: int) -> None:
        self.done += 1
        if status:
            self.counts[status] = self.counts.get(status, 0) + 1
        if self.enabled:
            now = time.monotonic()
            if now - self._last < 0.1 and self.done < self.total:  # at most 10 redraws a second
                return
            self._last = now
            width = 30
            filled = int(width * self.done / max(1, self.total))
            counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {counts} "
                             f"running {running}   ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")


class FleetRunner(Generic[T]):
    """Runs ``task`` over jobs, ``forks`` at once, each within ``timeout`` seconds.

    ``on_result(result)`` is called in the thread that called ``run``, once per job that started
    (also for failures and deadlines), as soon as the result is in; it returns a status word for
    the progress line (or None). A result handed over with ``defer`` waits until no host message
    came for ``DEFER_QUIET_S`` (or ``DEFER_MAX_S`` at most): hundreds of hosts answer in the same
    instant, and processing one result (~2 ms for a scan: files and analysis) while the others
    decode their answers delays the requests they are about to send. Deferred results are all
    processed before ``run`` returns, also after Ctrl-C.

    ``process(result)``, when given, turns a result into what ``on_result`` records, in one of
    ``finishers`` threads (a scan writes the host's evidence files and analyses them there: ~1 ms of
    disk wait per file on the development VM, which 1,000 hosts finishing at once queued behind
    each other in one thread). A failure in ``process`` comes back as the result's ``exc``.

    Garbage collection: hundreds of hosts in flight allocate millions of short-lived objects
    (SOAP/CLIXML, records): at the default gen-0 threshold (700) Python ran ~500 collections,
    several of them full, per 200 hosts, ~4 ms of client CPU per host. The threshold is raised
    while the fleet runs (restored afterwards), plus one full collection per ``GC_EVERY`` finished
    hosts while more hosts are still to start, which frees the reference cycles finished hosts
    leave behind, so memory stays flat however many hosts (a pause of ~50 ms with 200 hosts in
    flight: none once the last host has started). With more hosts in flight a full collection costs
    more (~250 ms at 1,000: a 10,000-host scan made 90 of them, ~2 ms of CPU per host), so it comes
    every ``max(GC_EVERY, forks // 4)`` finished hosts (at 1,000 forks every 250: a 3,000-host scan
    peaked at 296 MB against 306 MB before), and the objects that exist when the fleet starts (the
    imported modules: typer, pydantic, pypsrp, cryptography...) are frozen out of every collection
    (``gc.freeze``; ~250 → ~160 ms per full collection at 1,000 in flight), unfrozen at the end. What
    survives each periodic collection is frozen too: the reports of the hosts finished so far (and what
    the hosts in flight hold then) are not scanned again by the next one, so a full collection costs
    what came since the last, not everything so far. A 10,000-host scan at 1,000 in flight: 0.67 →
    0.20 ms of garbage collection per host, 14.8 → 12.7 ms of client CPU per host, peak RSS 386 → 393
    MB (cyclic garbage of hosts in flight at a freeze waits for the end of the fleet)."""

    def __init__(self, task: Callable[[T, Context], Any], on_result: Callable[[Result[T]], Optional[str]], *,
                 forks: int, timeout: float, progress: bool = False, defer: bool = False,
                 process: Optional[Callable[[Result[T]], Result[T]]] = None, finishers: int = FINISHERS,
                 gc_every: int = GC_EVERY, thread_name: str = "port80") -> None:
        self.task, self.on_result, self.process = task, on_result, process
        self.forks, self.timeout = max(1, int(forks)), float(timeout)
        self.progress, self.defer, self.gc_every = progress, defer, gc_every
        self.finishers = max(1, int(finishers))
        self.thread_name = thread_name
        self.interrupted = False

    def _finisher(self, todo: "queue.SimpleQueue", out: "queue.SimpleQueue") -> None:
        assert self.process is not None
        while True:
            result = todo.get()
            if result is None:
                return
            try:
                done = self.process(result)
            except BaseException as e:  # noqa: BLE001 - a failure is data, also here
                done = Result(result.job, None, e, result.elapsed)
            out.put((_PROCESSED, done, None, False))

    def _work(self, token: int, job: Job[T], ctx: Context, out: "queue.SimpleQueue") -> None:
        try:
            value = self.task(job.item, ctx)
            if not ctx.handed_over:
                ctx._handed = True
                out.put((token, value, None, False))
        except BaseException as e:  # a failure is data; none escapes the worker
            if not ctx.handed_over:
                ctx._handed = True
                out.put((token, None, e, False))
        finally:
            out.put((token, _CLOSED, None, False))  # this host's task has ended (session closed or given up)

    def run(self, jobs: Iterable[Job[T]]) -> bool:
        """Run every job; returns True when interrupted (Ctrl-C) before all were done."""
        pending = list(jobs)
        pending.reverse()
        progress = Progress(len(pending), self.progress)
        out: "queue.SimpleQueue" = queue.SimpleQueue()
        # token -> (job, started, ctx); insertion order is start order, and every job has the same
        # timeout, so the first entry has the earliest deadline (O(1) per message, not O(forks))
        active: "OrderedDict[int, tuple[Job[T], float, Context]]" = OrderedDict()
        closing: "OrderedDict[int, float]" = OrderedDict()  # token -> started: result in, task still closing
        backlog: list[tuple[Result[T], float]] = []  # deferred results, with the time they came in
        token = 0
        finished = 0
        processing = 0  # results handed to the finisher threads, not back yet
        timeout = self.timeout
        todo: "queue.SimpleQueue" = queue.SimpleQueue()
        finishers = []
        if self.process is not None:
            for i in range(self.finishers):
                t = threading.Thread(target=self._finisher, args=(todo, out), daemon=True,
                                     name=f"{self.thread_name}-finish-{i}")
                t.start()
                finishers.append(t)

        def record(result: Result[T]) -> None:
            nonlocal finished
            status = self.on_result(result)
            progress.update(status, len(active))
            finished += 1
            if gc_every and finished % gc_every == 0 and pending:
                gc.collect()  # only while hosts are still to start: memory is flat when none comes after
                gc.freeze()  # what survived (finished hosts' reports) is not scanned by the next one

        def finish(result: Result[T]) -> None:
            nonlocal processing
            if self.process is None:
                record(result)
            else:
                processing += 1
                todo.put(result)

        def flush() -> None:
            while backlog:
                finish(backlog.pop(0)[0])

        gc_every = max(self.gc_every, self.forks // 4) if self.gc_every else 0
        gc_threshold = gc.get_threshold()
        gc.set_threshold(max(gc_threshold[0], GC_GEN0), *gc_threshold[1:])
        switch = slow_handoff()  # a thread per host in flight: remote/runner/limits.py says why
        try:
            gc.freeze()  # what exists before the first host (modules, the inventory) is never garbage
            while pending or active or closing or backlog or processing:
                while pending and len(active) + len(closing) < self.forks:
                    job = pending.pop()
                    token += 1
                    ctx = Context(timeout, token, out, self.defer)
                    active[token] = (job, time.monotonic(), ctx)
                    threading.Thread(target=self._work, args=(token, job, ctx, out), daemon=True,
                                     name=f"{self.thread_name}-{job.name}").start()
                now = time.monotonic()
                firsts = [st for _, st, _ in (next(iter(active.values())),)] if active else []
                if closing:
                    firsts.append(next(iter(closing.values())))
                next_deadline = min(firsts) + timeout if firsts else now + 0.5
                wait = max(0.01, min(0.5, next_deadline - now))
                try:
                    tok, value, exc, deferred = out.get(timeout=DEFER_QUIET_S if backlog else wait)
                except queue.Empty:
                    tok = None
                    flush()
                if tok == _PROCESSED:
                    processing -= 1
                    record(value)
                elif tok is not None and value is _CLOSED:
                    closing.pop(tok, None)
                    entry = active.pop(tok, None)
                    if entry is not None:  # cannot happen (a result always comes first); never lose a host
                        job, started, _ = entry
                        finish(Result(job, None, RuntimeError("the task ended without a result"),
                                      time.monotonic() - started))
                elif tok is not None and tok in active:
                    job, started, _ = active.pop(tok)
                    closing[tok] = started
                    arrived = time.monotonic()
                    result = Result(job, value, exc, arrived - started)
                    if deferred and exc is None:
                        backlog.append((result, arrived))
                    else:
                        finish(result)
                now = time.monotonic()
                if backlog and now - backlog[0][1] >= DEFER_MAX_S:
                    flush()
                while closing:
                    tok_c, started = next(iter(closing.items()))
                    if now - started < timeout:
                        break
                    del closing[tok_c]  # the session close hangs: the host is recorded, stop waiting
                while active:
                    tok_a, (job, started, ctx) = next(iter(active.items()))
                    if now - started < timeout:
                        break
                    del active[tok_a]  # its thread is abandoned; a late result is ignored
                    ctx.cancel.set()  # a task that checks it stops before its next step
                    finish(Result(job, None, DeadlineExceeded(
                        f"no result within the {timeout:g} s per-host deadline"), now - started))
        except KeyboardInterrupt:
            self.interrupted = True
            for _, _, ctx in active.values():
                ctx.cancel.set()
        finally:
            try:
                flush()
                while processing:  # every result handed to a finisher is recorded before run() returns
                    tok, value, _, _ = out.get()
                    if tok == _PROCESSED:
                        processing -= 1
                        record(value)
            finally:
                for _ in finishers:
                    todo.put(None)
                progress.close()
                gc.set_threshold(*gc_threshold)
                gc.unfreeze()
                sys.setswitchinterval(switch)
        return self.interrupted


def bounded(spec: Any, deadline: float) -> Any:
    """A ``ConnectionSpec`` whose pypsrp timeouts fit inside ``deadline``, so an abandoned task ends
    soon after the runner gave up on it."""
    read = max(1.0, min(float(spec.read_timeout), deadline))
    op = max(1, min(int(spec.operation_timeout), int(read) - 1 if read > 2 else 1))
    return replace(spec, read_timeout=read, operation_timeout=op,
                   connection_timeout=max(1.0, min(float(spec.connection_timeout), deadline)))


__all__ = ["Context", "FleetRunner", "Job", "Progress", "Result", "bounded", "GC_EVERY"]
