"""The scan and check tasks: what one host's collection becomes on disk and in the report. The fleet
runner (remote/runner/fleet.py) runs them: many hosts at once, a deadline per host enforced by
port80 (not by pypsrp), every host accounted for, results streamed to disk as each host finishes.

Layout of a scan folder (``--evidence-dir``)::

    results.jsonl          one line per finished host (the report's host record), appended as it ends
    <host>/                the host's evidence bundle (raw text as received) + host.json (status, error)
    report.json, report.csv written at the end (also after Ctrl-C, from what finished)

Nothing here parses or decides; ``remote.analysis.verdicts`` does, from the bundle just written.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Optional

from remote.evidence.bundle import Bundle, write_bundle
from remote.remoting.collect import Collected, ConnectionSpec, check, collect
from remote.evidence.textio import REPLACED_NOTE, valid_unicode
from remote.report.sanitize import json_text
from remote.runner.failures import DISK_FULL_ERRNOS, LOCAL, HostStatus, classify, one_line, partial_message
from remote.runner.fleet import Context, FleetRunner, Job, Result, bounded

if TYPE_CHECKING:
    from remote.analysis.verdicts import HostReport

# remote.analysis.verdicts and remote.report.render (parsers, knowledge base, tabulate) load when the first host is
# done, not before the first host starts: they are a fifth of a scan's start-up time.

log = logging.getLogger("port80.scan")
RESULTS = "results.jsonl"
# Per-host cap on collected output, in bytes received (CLIXML in SOAP, base64: ~1.6x the text). The
# biggest real outputs are a few MB of text (a 5,267-site IIS host's servicestate is 5 MB, ~8 MB on
# the wire); a host sending more is broken or hostile. Measured (lab, 12.6 MB netstat): uncapped,
# client peak RSS 292 MB (a completed object costs ~23x its text to decode; a 50 MB netstat took
# 774 MB); capped at 16 MB, 84 MB, the host partial with the reason.
DEFAULT_MAX_OUTPUT_MB = 16.0


@dataclass
class ScanOptions:
    ports: list[int] = field(default_factory=lambda: [80])
    evidence_dir: Path = Path("port80-scan")
    forks: int = 32
    timeout: float = 120.0  # per-host deadline, seconds
    resume: bool = False
    progress: bool = False
    mode: str = "scan"  # "scan" collects evidence; "check" only tests reachability/credentials/elevation
    cluster: Optional[str] = None  # a Dask scheduler address: the hosts run on its workers (remote/runner/cluster.py)
    segments: dict[str, str] = field(default_factory=dict)  # host -> network segment (inventory port80_segment)
    batch: int = 0  # hosts per Dask task (0: --forks)
    max_output_mb: Optional[float] = None  # per-host cap on what a host may send (None: DEFAULT_MAX_OUTPUT_MB)


def safe_dirname(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "host"
    return s[:100]


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


def is_local_failure(r: HostReport) -> bool:
    """A failure that was port80's, not the host's (class ``local``; older scans wrote ``error``
    with this message)."""
    return r.status == LOCAL or (r.status == "error" and (r.error or "").startswith("port80 could not "))


def repair_results(path: Path) -> Optional[str]:
    """Make results.jsonl safe to append to: a torn last line (a crash or a full disk mid-write) is
    terminated when it is a complete record, otherwise cut off (that host is simply not done yet).
    Returns what was done (also logged), or None when the file was fine."""
    try:
        fh = open(path, "rb+")
    except FileNotFoundError:
        return None
    with fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return None
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return None
        pos, chunk = size, 1 << 16
        start = 0
        while pos > 0:  # the last newline, reading backwards
            step = min(chunk, pos)
            pos -= step
            fh.seek(pos)
            i = fh.read(step).rfind(b"\n")
            if i >= 0:
                start = pos + i + 1
                break
        fh.seek(start)
        tail = fh.read()
        try:
            json.loads(tail.decode("utf-8"))
            complete = True
        except (ValueError, UnicodeDecodeError, RecursionError):
            complete = False
        if complete:
            fh.seek(0, os.SEEK_END)
            fh.write(b"\n")
            what = f"{path}: its last line had no line end (an interrupted write); terminated it"
        else:
            fh.truncate(start)
            what = f"{path}: removed a torn last line ({len(tail)} bytes, an interrupted write); that host is scanned again"
        fh.flush()
        os.fsync(fh.fileno())
    log.warning("%s", what)
    return what


def host_task(spec: ConnectionSpec, ctx: Context, mode: str,
              password_for: Callable[[ConnectionSpec], Optional[str]]) -> Any:
    """One host's task for the fleet runner (here or on a Dask worker): collect (or check), handing
    the complete evidence over before the session is closed, so it is stored and analysed while the
    Delete request is on the wire."""
    password = password_for(spec)
    spec = bounded(spec, ctx.deadline)
    if mode == "check":
        return check(spec, password)
    return collect(spec, password, on_evidence=ctx.hand_over)


class Scan:
    def __init__(self, targets: list[ConnectionSpec], password_for: Callable[[ConnectionSpec], Optional[str]],
                 opts: ScanOptions, secrets: Iterable[str] = ()):
        cap = int((opts.max_output_mb or DEFAULT_MAX_OUTPUT_MB) * 1e6)
        self.targets = [t if t.max_output_bytes else replace(t, max_output_bytes=cap) for t in targets]
        self.password_for = password_for
        self.opts = opts
        self.secrets = [s for s in secrets if s]
        self.dir = Path(opts.evidence_dir)
        self.results_path = self.dir / RESULTS
        self.reports: dict[str, HostReport] = {}
        self._dirnames: dict[str, str] = {}
        self._used_dirnames: set[str] = set()
        self.interrupted = False
        self.disk_full: Optional[OSError] = None  # set when a write failed for want of space

    # -- one host ---------------------------------------------------------------------------------
    def _task(self, spec: ConnectionSpec, ctx: Context) -> Any:
        return host_task(spec, ctx, self.opts.mode, self.password_for)

    def ports_of(self, spec: ConnectionSpec) -> list[int]:
        """The ports audited on this host: its inventory's ``port80_ports``, else the run's."""
        return list(spec.ports) if spec.ports and self.opts.mode != "check" else list(self.opts.ports)

    def audited_ports(self) -> list[int]:
        """Every port audited on some host, the run's first (the report's columns)."""
        return list(dict.fromkeys([*self.opts.ports, *(p for t in self.targets for p in self.ports_of(t))]))

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

    def _finish(self, spec: ConnectionSpec, result: Any, exc: Optional[BaseException], elapsed: float) -> HostReport:
        # result: what the host's task returned, collect()'s Collected (scan) or check()'s dict (check)
        from remote.analysis.verdicts import HostReport, analyze_bundle, failed_host

        bdir = self.dir / self._dirname(spec)
        if exc is not None:
            status, error = classify(exc, self.secrets)
            log.debug("%s: %s (%s)", spec.name, status, error, exc_info=log.isEnabledFor(logging.DEBUG))
            meta = {"host": spec.name, "address": spec.address, "status": status, "error": error,
                    "elapsed_s": round(elapsed, 3), "groups": list(spec.groups)}
            write_bundle(bdir, Bundle(host=spec.name, meta=meta))
            report = failed_host(spec.name, status, error, self.ports_of(spec), spec.address)
            report.evidence_dir, report.groups = str(bdir), list(spec.groups)
            return report
        if self.opts.mode == "check":
            meta = dict(result)
            report = HostReport(host=spec.name, address=spec.address, status=HostStatus.OK, evidence_dir=None,
                                os_version=str(meta["os_version"]) if meta.get("os_version") else None)
            if meta.get("elevated") is False:
                report.status, report.error = HostStatus.PARTIAL, "session is not elevated (netsh http output may be incomplete)"
            elif meta.get("errors"):
                report.status, report.error = HostStatus.PARTIAL, partial_message(dict(meta["errors"]))  # type: ignore[call-overload]
            return report
        collected: Collected = result
        meta = dict(collected.meta)
        err = partial_message(collected.command_errors)
        meta["status"] = "partial" if err else "ok"
        if err:
            meta["error"] = err
        meta["elapsed_s"] = round(elapsed, 3)
        meta["groups"] = list(spec.groups)
        written = write_bundle(bdir, Bundle(host=spec.name, texts=collected.texts, meta=meta))
        report = analyze_bundle(written, self.ports_of(spec))  # the bundle as read back from disk
        report.host = spec.name
        return report

    def _local_failure(self, spec: ConnectionSpec, e: BaseException, what: str) -> HostReport:
        """The host's report when port80 itself failed on it (disk full, a parser bug): class ``local``,
        which ``--resume`` runs again; evidence already on disk stays there."""
        from remote.analysis.verdicts import failed_host

        log.debug("%s: %s", spec.name, what, exc_info=True)
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
            self.disk_full = e
        msg = one_line(f"{type(e).__name__}: {e}", self.secrets, 300)
        report = failed_host(spec.name, LOCAL, f"port80 {what} ({msg})", self.ports_of(spec), spec.address)
        report.evidence_dir, report.groups = str(self.dir / self._dirname(spec)), list(spec.groups)
        return report

    def finish_host(self, spec: ConnectionSpec, result: Any, exc: Optional[BaseException], elapsed: float) -> HostReport:
        """``_finish``, but a failure while writing or analysing one host (disk full, a parser bug)
        becomes that host's ``local`` line instead of stopping the fleet; its evidence stays on disk."""
        try:
            return self._finish(spec, result, exc, elapsed)
        except Exception as e:  # noqa: BLE001 - one host's problem must not stop the others
            return self._local_failure(spec, e, "could not process this host's evidence")

    def record(self, report: HostReport, fh: IO[str]) -> None:
        """Append the host's results line: text UTF-8 cannot hold (a lone surrogate) is written as
        U+FFFD and noted in the host's warnings, never raised."""
        from remote.report.render import host_from_dict, host_to_dict

        line, n = valid_unicode(json_text(json.dumps(host_to_dict(report), ensure_ascii=False)))
        if n:
            report = host_from_dict(json.loads(line))
            report.warnings.append(f"{n} {REPLACED_NOTE} in this host's report")
            line = json.dumps(host_to_dict(report), ensure_ascii=False)
        self.reports[report.host] = report
        fh.write(line + "\n")
        fh.flush()

    # -- the fleet ----------------------------------------------------------------------------------
    def _process(self, result: Result[ConnectionSpec]) -> Result[ConnectionSpec]:
        """In a finisher thread: the host's result becomes its bundle on disk and its report."""
        report = self.finish_host(result.job.item, result.value, result.exc, result.elapsed)
        return replace(result, value=report, exc=None)

    def record_finished(self, spec: ConnectionSpec, report: HostReport, fh: IO[str]) -> HostReport:
        """Record a finished host's report in results.jsonl (and in ``reports``), inside the per-host
        guard: a failure to write it fails that host only."""
        try:
            self.record(report, fh)
        except Exception as e:  # noqa: BLE001 - e.g. results.jsonl on a full disk
            report = self._local_failure(spec, e, "could not write this host's result")
            self.reports[report.host] = report  # still in report.json/csv if those can be written
        return report

    def _on_result(self, fh: IO[str]) -> Callable[[Result[ConnectionSpec]], str]:
        def on_result(result: Result[ConnectionSpec]) -> str:  # in run()'s thread: the one writer of results.jsonl
            # everything done for one host is inside this guard: one host can fail only itself
            spec = result.job.item
            if result.exc is not None:  # the finisher failed outside finish_host's own guard
                report = self._local_failure(spec, result.exc, "could not process this host's evidence")
                self.reports[report.host] = report
                return report.status
            return self.record_finished(spec, result.value, fh).status

        return on_result

    def run(self) -> list[HostReport]:
        self.dir.mkdir(parents=True, exist_ok=True)
        todo = list(self.targets)
        repair_results(self.results_path)
        if self.opts.resume:
            self._resume()
            todo = [t for t in todo if t.name not in self.reports]
        for t in self.targets:
            self._dirname(t)
        if self.opts.cluster:
            from remote.runner.cluster import run_on_cluster

            with open(self.results_path, "a", encoding="utf-8") as fh:
                self.interrupted = run_on_cluster(self, todo, fh)
            return self.ordered()
        with open(self.results_path, "a", encoding="utf-8") as fh:
            # complete evidence (collect's hand-over) is stored and analysed by finisher threads when
            # the hosts in flight leave the CPU alone: see FleetRunner's ``defer`` and ``process``
            runner = FleetRunner(self._task, self._on_result(fh), forks=self.opts.forks, timeout=self.opts.timeout,
                                 progress=self.opts.progress, defer=True, process=self._process)
            self.interrupted = runner.run(Job(t.name, t) for t in todo)
        return self.ordered()

    def _resume(self) -> None:
        """Keep the hosts already done; a host whose failure was port80's own (``local``: disk full,
        a bug processing its evidence) is done again. results.jsonl is rewritten with one line per
        kept host when anything is dropped, so every host is in it once after the resumed run."""
        loaded = load_results(self.results_path)
        for r in loaded:
            self.reports[r.host] = r  # the latest line of a host wins
        again = [h for h, r in self.reports.items() if is_local_failure(r)]
        for h in again:
            del self.reports[h]
        if again or len(loaded) != len(self.reports):
            from remote.report.render import host_to_dict

            log.warning("%s: %d host(s) that failed on port80's side are scanned again", self.results_path,
                        len(again))
            tmp = self.results_path.with_name(self.results_path.name + ".part")
            with open(tmp, "w", encoding="utf-8") as fh:
                for r in self.reports.values():
                    fh.write(json.dumps(host_to_dict(r), ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.results_path)

    def ordered(self) -> list[HostReport]:
        order = {t.name: i for i, t in enumerate(self.targets)}
        return sorted(self.reports.values(), key=lambda r: (order.get(r.host, len(order)), r.host))

    def write_reports(self) -> dict[str, Path]:
        from remote.report.render import render

        reports = self.ordered()
        paths = {"json": self.dir / "report.json", "csv": self.dir / "report.csv"}
        for fmt, path in paths.items():
            tmp = path.with_name(path.name + ".part")
            tmp.write_text(render(reports, fmt, self.audited_ports()), encoding="utf-8", newline="")
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
