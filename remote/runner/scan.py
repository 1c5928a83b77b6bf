"""The fleet runner: many hosts at once, one worker thread per host, a deadline per host enforced
here (not by pypsrp), every host accounted for, results streamed to disk as each host finishes.

Layout of a scan folder (``--evidence-dir``)::

    results.jsonl          one line per finished host (the report's host record), appended as it ends
    <host>/                the host's evidence bundle (raw text as received) + host.json (status, error)
    report.json, report.csv written at the end (also after Ctrl-C, from what finished)

Nothing here parses or decides; ``remote.analysis.verdicts`` does, from the bundle just written.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Optional

from typing import TYPE_CHECKING

from remote.evidence.bundle import Bundle, read_bundle, write_bundle
from remote.remoting.collect import Collected, ConnectionSpec, check, collect
from remote.runner.failures import DeadlineExceeded, classify, one_line, partial_message

if TYPE_CHECKING:
    from remote.analysis.verdicts import HostReport

# remote.analysis.verdicts and remote.report.render (parsers, knowledge base, tabulate) load when the first host is
# done, not before the first host starts: they are a fifth of a scan's start-up time.

log = logging.getLogger("port80.scan")
RESULTS = "results.jsonl"
GC_EVERY = 100  # finished hosts between two full garbage collections (see Scan.run)
GRACE_S = 2.0  # a timed-out host is reported at most this long after its deadline
_CLOSED = object()  # a worker's last message: its remote session is closed
DEFER_QUIET_S = 0.02  # see Scan.run: analyse complete evidence when no host message came for this long...
DEFER_MAX_S = 1.5  # ...or when the oldest waited this long


@dataclass
class ScanOptions:
    ports: list[int] = field(default_factory=lambda: [80])
    evidence_dir: Path = Path("port80-scan")
    forks: int = 32
    timeout: float = 120.0  # per-host deadline, seconds
    resume: bool = False
    progress: bool = False
    mode: str = "scan"  # "scan" collects evidence; "check" only tests reachability/credentials/elevation


def safe_dirname(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "host"
    return s[:100]


def _bounded(spec: ConnectionSpec, deadline: float) -> ConnectionSpec:
    """pypsrp timeouts that fit inside the deadline, so an abandoned worker ends soon too."""
    read = max(1.0, min(float(spec.read_timeout), deadline))
    op = max(1, min(int(spec.operation_timeout), int(read) - 1 if read > 2 else 1))
    return replace(spec, read_timeout=read, operation_timeout=op,
                   connection_timeout=max(1.0, min(float(spec.connection_timeout), deadline)))


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done = total, enabled, 0
        self.counts: dict[str, int] = {}

    def update(self, status: str, running: int) -> None:
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        if self.enabled:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {counts} "
                             f"running {running}   ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")


def load_results(path: Path) -> list[HostReport]:
    """Host records from a results.jsonl (a torn last line from a crash is skipped)."""
    from remote.report.render import host_from_dict

    reports = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    reports.append(host_from_dict(json.loads(line)))
                except (ValueError, TypeError, AttributeError):
                    log.warning("%s: skipped an unreadable line", path)
    except FileNotFoundError:
        pass
    return reports


class Scan:
    def __init__(self, targets: list[ConnectionSpec], password_for: Callable[[ConnectionSpec], Optional[str]],
                 opts: ScanOptions, secrets: Iterable[str] = ()):
        self.targets = targets
        self.password_for = password_for
        self.opts = opts
        self.secrets = [s for s in secrets if s]
        self.dir = Path(opts.evidence_dir)
        self.results_path = self.dir / RESULTS
        self.reports: dict[str, HostReport] = {}
        self._dirnames: dict[str, str] = {}
        self._used_dirnames: set[str] = set()
        self.interrupted = False

    # -- one host ---------------------------------------------------------------------------------
    def _work(self, spec: ConnectionSpec, token: int, out: "queue.Queue") -> None:
        sent = []

        def evidence(collected: Collected) -> None:
            # complete evidence, handed over before the session is closed: the runner stores and
            # analyses it while this thread's Delete request is on the wire
            sent.append(True)
            out.put((token, spec, collected, None))

        try:
            password = self.password_for(spec)
            bounded = _bounded(spec, self.opts.timeout)
            if self.opts.mode == "check":
                out.put((token, spec, check(bounded, password), None))
            else:
                result = collect(bounded, password, on_evidence=evidence)
                if not sent:
                    out.put((token, spec, result, None))
        except BaseException as e:  # every failure is classified; none escapes the worker
            if not sent:
                out.put((token, spec, None, e))
        finally:
            out.put((token, None, _CLOSED, None))  # this host's session is closed (or given up)

    def _dirname(self, spec: ConnectionSpec) -> str:
        if spec.name not in self._dirnames:
            base = safe_dirname(spec.name)
            name, n = base, 1
            while name in self._used_dirnames:
                n += 1
                name = f"{base}-{n}"
            self._dirnames[spec.name] = name
            self._used_dirnames.add(name)
        return self._dirnames[spec.name]

    def _finish(self, spec: ConnectionSpec, result, exc: Optional[BaseException], elapsed: float) -> HostReport:
        from remote.analysis.verdicts import HostReport, analyze_bundle, failed_host

        bdir = self.dir / self._dirname(spec)
        if exc is not None:
            status, error = classify(exc, self.secrets)
            log.debug("%s: %s (%s)", spec.name, status, error, exc_info=log.isEnabledFor(logging.DEBUG))
            meta = {"host": spec.name, "address": spec.address, "status": status, "error": error,
                    "elapsed_s": round(elapsed, 3)}
            write_bundle(bdir, Bundle(host=spec.name, meta=meta))
            report = failed_host(spec.name, status, error, self.opts.ports, spec.address)
            report.evidence_dir = str(bdir)
            return report
        if self.opts.mode == "check":
            meta = dict(result)
            report = HostReport(host=spec.name, address=spec.address, status="ok", evidence_dir=None,
                                os_version=meta.get("os_version"))
            if meta.get("elevated") is False:
                report.status, report.error = "partial", "session is not elevated (netsh http output may be incomplete)"
            elif meta.get("errors"):
                report.status, report.error = "partial", partial_message(meta["errors"])
            return report
        collected: Collected = result
        meta = dict(collected.meta)
        err = partial_message(collected.command_errors)
        meta["status"] = "partial" if err else "ok"
        if err:
            meta["error"] = err
        meta["elapsed_s"] = round(elapsed, 3)
        write_bundle(bdir, Bundle(host=spec.name, texts=collected.texts, meta=meta))
        report = analyze_bundle(read_bundle(bdir), self.opts.ports)
        report.host = spec.name
        return report

    def _safe_finish(self, spec: ConnectionSpec, result, exc: Optional[BaseException], elapsed: float) -> HostReport:
        """``_finish``, but a failure while writing or analysing one host (disk full, a parser bug)
        becomes that host's ``error`` line instead of stopping the fleet; its evidence stays on disk."""
        from remote.analysis.verdicts import failed_host

        try:
            return self._finish(spec, result, exc, elapsed)
        except Exception as e:  # noqa: BLE001 - one host's problem must not stop the others
            log.debug("%s: could not finish", spec.name, exc_info=True)
            msg = one_line(f"{type(e).__name__}: {e}", self.secrets, 300)
            report = failed_host(spec.name, "error", f"port80 could not process this host's evidence ({msg})",
                                 self.opts.ports, spec.address)
            report.evidence_dir = str(self.dir / self._dirname(spec))
            return report

    def _record(self, report: HostReport, fh) -> None:
        from remote.report.render import host_to_dict

        self.reports[report.host] = report
        fh.write(json.dumps(host_to_dict(report), ensure_ascii=False) + "\n")
        fh.flush()

    # -- the fleet ----------------------------------------------------------------------------------
    def run(self) -> list[HostReport]:
        self.dir.mkdir(parents=True, exist_ok=True)
        todo = list(self.targets)
        if self.opts.resume:
            for r in load_results(self.results_path):
                self.reports[r.host] = r
            todo = [t for t in todo if t.name not in self.reports]
        for t in self.targets:
            self._dirname(t)
        progress = _Progress(len(todo), self.opts.progress)
        done_q: "queue.Queue" = queue.Queue()
        active: dict[int, tuple[ConnectionSpec, float]] = {}  # token -> (spec, started)
        closing: dict[int, float] = {}  # token -> started: recorded hosts whose session is still being closed
        pending = list(reversed(todo))
        token = 0
        # Hundreds of hosts in flight allocate millions of short-lived objects (SOAP/CLIXML, records):
        # at the default gen-0 threshold (700) Python ran ~500 collections, several of them full, per
        # 200 hosts, ~4 ms of client CPU per host (scripts/bench_fleet.py). Fewer, restored afterwards;
        # plus one full collection per GC_EVERY finished hosts while more hosts are still to start, which
        # frees the reference cycles finished hosts leave behind, so memory stays flat however many hosts
        # (each is a ~50 ms pause with 200 hosts in flight: none once the last host has started).
        gc_threshold = gc.get_threshold()
        finished = 0
        # Complete evidence is stored and analysed when the hosts in flight leave the CPU alone (no
        # message for DEFER_QUIET_S) or after DEFER_MAX_S at most: hundreds of hosts answer in the same
        # instant, and analysing one host's evidence (~2 ms) while the others decode their answers
        # delays the close requests they are about to send (scripts/bench_fleet.py). Nothing is lost:
        # the backlog is flushed before run() returns, also after Ctrl-C.
        backlog: list[tuple[ConnectionSpec, Collected, float, float]] = []  # spec, evidence, started, arrived

        with open(self.results_path, "a", encoding="utf-8") as fh:

            def finish(spec: ConnectionSpec, result, exc: Optional[BaseException], elapsed: float) -> None:
                nonlocal finished
                report = self._safe_finish(spec, result, exc, elapsed)
                self._record(report, fh)
                progress.update(report.status, len(active))
                finished += 1
                if finished % GC_EVERY == 0 and pending:
                    gc.collect()  # only while hosts are still to start: memory is flat when none comes after

            def flush() -> None:
                while backlog:
                    spec, result, started, arrived = backlog.pop(0)
                    finish(spec, result, None, arrived - started)

            gc.set_threshold(max(gc_threshold[0], 10000), *gc_threshold[1:])
            try:
                while pending or active or closing or backlog:
                    while pending and len(active) + len(closing) < max(1, self.opts.forks):
                        spec = pending.pop()
                        token += 1
                        active[token] = (spec, time.monotonic())
                        threading.Thread(target=self._work, args=(spec, token, done_q), daemon=True,
                                         name=f"port80-{spec.name}").start()
                    now = time.monotonic()
                    next_deadline = min([st + self.opts.timeout for _, st in active.values()]
                                        + [st + self.opts.timeout for st in closing.values()] + [now + 0.5])
                    wait = max(0.01, min(0.5, next_deadline - now))
                    try:
                        tok, spec, result, exc = done_q.get(timeout=DEFER_QUIET_S if backlog else wait)
                    except queue.Empty:
                        tok = None
                        flush()
                    if tok is not None and result is _CLOSED:
                        closing.pop(tok, None)
                    elif tok is not None and tok in active:
                        _, started = active.pop(tok)
                        closing[tok] = started
                        if exc is None and isinstance(result, Collected):
                            backlog.append((spec, result, started, time.monotonic()))
                        else:
                            finish(spec, result, exc, time.monotonic() - started)
                    now = time.monotonic()
                    if backlog and now - backlog[0][3] >= DEFER_MAX_S:
                        flush()
                    for t, started in list(closing.items()):
                        if now - started >= self.opts.timeout:
                            del closing[t]  # the session close hangs: the host is recorded, stop waiting
                    for t, (spec, started) in list(active.items()):
                        if now - started >= self.opts.timeout:
                            del active[t]  # its thread is abandoned; a late result is ignored
                            exc = DeadlineExceeded(f"no result within the {self.opts.timeout:g} s per-host deadline")
                            finish(spec, None, exc, now - started)
            except KeyboardInterrupt:
                self.interrupted = True
            finally:
                try:
                    flush()
                finally:
                    progress.close()
                    gc.set_threshold(*gc_threshold)
        return self.ordered()

    def ordered(self) -> list[HostReport]:
        order = {t.name: i for i, t in enumerate(self.targets)}
        return sorted(self.reports.values(), key=lambda r: (order.get(r.host, len(order)), r.host))

    def write_reports(self) -> dict[str, Path]:
        from remote.report.render import render

        reports = self.ordered()
        paths = {"json": self.dir / "report.json", "csv": self.dir / "report.csv"}
        for fmt, path in paths.items():
            tmp = path.with_name(path.name + ".part")
            tmp.write_text(render(reports, fmt, self.opts.ports), encoding="utf-8", newline="")
            os.replace(tmp, path)
        return paths


def merge_results(paths: Iterable[Path]) -> list[HostReport]:
    """Join results.jsonl files (or scan folders holding one) from several runners/shards.
    A host seen twice keeps its best result (ok > partial > failed), then the latest."""
    from remote.report.render import host_from_dict

    rank = {"ok": 0, "partial": 1}
    best: dict[str, HostReport] = {}
    for p in paths:
        p = Path(p)
        f = p / RESULTS if p.is_dir() else p
        if not f.is_file():
            raise FileNotFoundError(f"{p}: no {RESULTS} here")
        if f.suffix == ".json":
            doc = json.loads(f.read_text(encoding="utf-8"))
            items = [host_from_dict(h) for h in doc.get("hosts", [])]
        else:
            items = load_results(f)
        for r in items:
            old = best.get(r.host)
            if old is None or rank.get(r.status, 2) <= rank.get(old.status, 2):
                best[r.host] = r
    return list(best.values())


__all__ = ["Scan", "ScanOptions", "merge_results", "load_results"]
