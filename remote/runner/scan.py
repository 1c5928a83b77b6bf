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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from remote.evidence.bundle import Bundle, read_bundle, write_bundle
from remote.remoting.collect import Collected, ConnectionSpec, check, collect
from remote.runner.failures import classify, one_line, partial_message
from remote.runner.fleet import Context, FleetRunner, Job, Result, bounded

if TYPE_CHECKING:
    from remote.analysis.verdicts import HostReport

# remote.analysis.verdicts and remote.report.render (parsers, knowledge base, tabulate) load when the first host is
# done, not before the first host starts: they are a fifth of a scan's start-up time.

log = logging.getLogger("port80.scan")
RESULTS = "results.jsonl"


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
    def _task(self, spec: ConnectionSpec, ctx: Context) -> Any:
        """One host's task for the fleet runner: collect (or check), handing the complete evidence
        over before the session is closed, so it is stored and analysed while the Delete request
        is on the wire."""
        password = self.password_for(spec)
        spec = bounded(spec, ctx.deadline)
        if self.opts.mode == "check":
            return check(spec, password)
        return collect(spec, password, on_evidence=ctx.hand_over)

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
    def _on_result(self, fh: Any) -> Callable[[Result[ConnectionSpec]], str]:
        def on_result(result: Result[ConnectionSpec]) -> str:
            report = self._safe_finish(result.job.item, result.value, result.exc, result.elapsed)
            self._record(report, fh)
            return report.status

        return on_result

    def run(self) -> list[HostReport]:
        self.dir.mkdir(parents=True, exist_ok=True)
        todo = list(self.targets)
        if self.opts.resume:
            for r in load_results(self.results_path):
                self.reports[r.host] = r
            todo = [t for t in todo if t.name not in self.reports]
        for t in self.targets:
            self._dirname(t)
        with open(self.results_path, "a", encoding="utf-8") as fh:
            # complete evidence (collect's hand-over) is stored and analysed when the hosts in flight
            # leave the CPU alone: see FleetRunner's ``defer``
            runner = FleetRunner(self._task, self._on_result(fh), forks=self.opts.forks, timeout=self.opts.timeout,
                                 progress=self.opts.progress, defer=True)
            self.interrupted = runner.run(Job(t.name, t) for t in todo)
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
