"""Run remediation plans over PowerShell remoting (pypsrp), journal every change, verify with a re-scan.

With remote/remoting/collect.py, the only module that talks to hosts. Per host: one WSMan + one RunspacePool,
created, used and closed in that host's worker thread; the plan's actions run in order, one pipeline
each, and each is checked: an error record fails it; otherwise the state is read back (the
collector's own Win32_Service / ``netsh http show iplisten`` statements) and compared with what the
action should have done. The first failed action ends that host's run.

The journal (JSONL, see remote.remediation.plan) gets an ``intent`` line with the state before BEFORE each
action runs and an ``applied`` / ``failed`` / ``unknown`` line after it, each appended, flushed and
fsynced on its own, so a crash, a deadline or a broken connection leaves it accurate. Concurrency,
the per-host deadline and the failure classes are the fleet scan's (remote.runner.scan, remote.runner.failures).
"""

from __future__ import annotations

import json
import logging
import os
import secrets as _random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from remote.errors import Port80Error
from remote.remediation import journal as rj
from remote.remediation import plan as rm
from remote.remediation import render as rr
from remote.analysis.verdicts import HostReport
from remote.runner.failures import FAILED, HostStatus
from remote.evidence.bundle import read_bundle
from remote.remoting.collect import EVIDENCE, ConnectionSpec, as_text, connect, run_pipeline, tuned_pool
from remote.runner.failures import classify, one_line
from remote.parsers import PARSERS
from remote.remediation.plan import Action, HostOutcome, HostPlan
from remote.runner.fleet import Context, FleetRunner, Job, Result, bounded
from remote.runner.scan import Scan, ScanOptions

if TYPE_CHECKING:
    from pypsrp.powershell import RunspacePool

log = logging.getLogger("port80.fix")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _line(text: Any, secrets: Iterable[str] = ()) -> str:
    return one_line(text, secrets, 300)


class JournalWriter:
    """Appends one JSON line at a time, flushed and fsynced (thread-safe; no handle kept open)."""

    def __init__(self, path: Path, mode: str, run: Optional[str] = None):
        self.path = Path(path)
        self.mode = mode
        self.run = run or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + _random.token_hex(3)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields: Any) -> None:
        rec = {"ts": _now(), "event": event, "run": self.run, "mode": self.mode, **fields}
        data = json.dumps(rec, ensure_ascii=False) + "\n"
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())


def read_journal_file(path: Path) -> rj.Journal:
    with open(path, encoding="utf-8") as fh:
        return rj.read_journal(fh)


# --- one host ------------------------------------------------------------------------------------------


class ActionFailed(Port80Error):
    """An action whose outcome is known to be a failure (error record, or the state read back is wrong)."""


class OutcomeUnknown(Port80Error):
    """The action ran, but what it did could not be read back."""


def _invoke(pool: RunspacePool, action: Action, secrets: list[str]) -> None:
    from pypsrp.powershell import PowerShell

    ps = PowerShell(pool)
    cmd, params, native = action.invocation()
    ps.add_cmdlet(cmd)
    for name, value in params:
        if name is None:
            ps.add_argument(value)
        else:
            ps.add_parameter(name, value)
    if native:
        ps.add_cmdlet("Out-String")
    output = ps.invoke()
    if output:
        log.debug("%s: %s", action.command, _line(as_text(output), secrets))
    errors = [_line(str(e) or getattr(e, "message", "") or getattr(e, "fq_error", "") or "error", secrets)
              for e in ps.streams.error]
    if errors or ps.had_errors:
        raise ActionFailed(errors[0] if errors else "the pipeline failed")


def _observe(pool: RunspacePool, action: Action, secrets: list[str]) -> Any:
    """The state ``action`` is about, read back from the host with the collector's statements."""
    kind = "services" if action.service else "iplisten"
    results, errors = run_pipeline(pool, [kind], EVIDENCE)
    if kind not in results:
        raise OutcomeUnknown(f"cannot read the state back: {_line(errors.get(kind, 'no output'), secrets)}")
    parsed = PARSERS[kind](as_text(results[kind]))
    if parsed.error:
        raise OutcomeUnknown(f"cannot read the state back: {_line(parsed.error, secrets)}")
    if kind == "iplisten":
        return list(parsed.addresses)
    for s in parsed.services:
        if s.name.lower() == action.target.lower():
            return {"state": s.state, "start_mode": s.start_mode}
    return None


def run_host_plan(spec: ConnectionSpec, password: Optional[str], plan: HostPlan, journal: JournalWriter,
                  outcome: HostOutcome, cancel: threading.Event, secrets: list[str],
                  settled: threading.Event) -> None:
    """Run ``plan`` on one host, journaling each action; fills ``outcome`` as it goes. Raises what
    pypsrp/requests raise (the runner classifies it) after journaling the action in flight as unknown.
    ``settled`` is set as soon as no action is in flight any more (before the session closes)."""
    from pypsrp.powershell import RunspacePool

    with connect(spec, password) as wsman:
        with tuned_pool(RunspacePool(wsman, configuration_name=spec.configuration_name)) as pool:
            journal.write("host", host=plan.host, port=plan.port, strategy=plan.strategy, **plan.journal_state())
            try:
                _run_actions(pool, plan, journal, outcome, cancel, secrets)
            finally:
                settled.set()


def _run_actions(pool: Any, plan: HostPlan, journal: JournalWriter, outcome: HostOutcome,
                 cancel: threading.Event, secrets: list[str]) -> None:
    """The actions in order, journaled; stops before the next one once ``cancel`` is set."""
    for seq, action in enumerate(plan.actions, 1):
        if cancel.is_set():
            outcome.not_run = [a.command for a in plan.actions[seq - 1:]]
            return
        journal.write("intent", host=plan.host, seq=seq, action=action.to_dict(), command=action.command)
        try:
            _invoke(pool, action, secrets)
            problem = rm.check(action, _observe(pool, action, secrets))
            if problem:
                raise ActionFailed(problem)
        except (ActionFailed, OutcomeUnknown) as e:
            event = "failed" if isinstance(e, ActionFailed) else "unknown"
            journal.write(event, host=plan.host, seq=seq, command=action.command, error=str(e))
            if outcome.status == "ok":  # a deadline already reported keeps its class
                outcome.status, outcome.error = "failed", str(e)
            outcome.failed = action.command
            outcome.not_run = [a.command for a in plan.actions[seq:]]
            return
        except BaseException as e:
            _, msg = classify(e, secrets)
            journal.write("unknown", host=plan.host, seq=seq, command=action.command, error=msg)
            outcome.failed = action.command
            outcome.not_run = [a.command for a in plan.actions[seq:]]
            raise
        journal.write("applied", host=plan.host, seq=seq, command=action.command)
        outcome.applied.append(action.command)


# --- the fleet ---------------------------------------------------------------------------------------------


def run_plans(specs: dict[str, ConnectionSpec], password_for: Callable[[ConnectionSpec], Optional[str]],
              plans: list[HostPlan], journal: JournalWriter, *, forks: int, timeout: float,
              secrets: Iterable[str] = ()) -> dict[str, HostOutcome]:
    """Run every plan that has actions, ``forks`` hosts at once, each within ``timeout`` seconds
    (port80's own deadline, as in a scan). Returns host -> outcome for every plan that had actions."""
    secrets = [s for s in secrets if s]
    todo = [p for p in plans if p.actions]
    outcomes: dict[str, HostOutcome] = {p.host: HostOutcome(host=p.host) for p in todo}
    for p in todo:
        if p.host not in specs:
            outcomes[p.host] = HostOutcome(host=p.host, status="skipped", error="not in the inventory (or --limit)",
                                           not_run=[a.command for a in p.actions])
    todo = [p for p in todo if p.host in specs]

    settled = {p.host: threading.Event() for p in todo}  # set once the host has no action in flight
    begun: set[str] = set()

    def task(plan: HostPlan, ctx: Context) -> None:
        spec = specs[plan.host]
        begun.add(plan.host)
        # ctx.cancel is set at the deadline: the worker stops before its next action, so its
        # journal lines stay accurate
        try:
            run_host_plan(bounded(spec, ctx.deadline), password_for(spec), plan, journal, outcomes[plan.host],
                          ctx.cancel, secrets, settled[plan.host])
        finally:
            settled[plan.host].set()  # also when it failed before its first action

    ended: set[str] = set()

    def on_result(result: Result[HostPlan]) -> str:
        o = outcomes[result.name]
        ended.add(result.name)
        if result.exc is not None:
            o.status, o.error = classify(result.exc, secrets)
            log.debug("%s: %s (%s)", result.name, o.status, o.error)
        return o.status

    runner = FleetRunner(task, on_result, forks=forks, timeout=timeout, thread_name="port80-fix")
    if runner.run(Job(p.host, p) for p in todo):
        # Ctrl-C/SIGTERM while changing hosts: no new host, no new action (cancel is set). A change
        # in flight is let finish (a service half-way through stopping is the worst state to leave),
        # so that each outcome says exactly what was done; a second Ctrl-C stops waiting.
        _let_settle([h for h in begun if h not in ended], settled, min(timeout, SETTLE_S))
        for p in todo:
            o = outcomes[p.host]
            if p.host not in ended:
                done = set(o.applied) | ({o.failed} if o.failed else set())
                o.not_run = o.not_run or [a.command for a in p.actions if a.command not in done]
                o.status = "interrupted"
                if settled[p.host].is_set() or p.host not in begun:
                    o.error = ("interrupted before it started" if not o.applied and not o.failed else
                               "interrupted before its next change")
                else:
                    o.error = "interrupted: an action may have been in flight (the journal says which)"
        raise Interrupted(outcomes)
    return outcomes


SETTLE_S = 15.0  # after Ctrl-C/SIGTERM: how long a change already in flight is given to finish


def _let_settle(hosts: list[str], settled: dict[str, threading.Event], grace: float) -> None:
    """Wait (at most ``grace`` seconds) until no host in ``hosts`` has a change in flight."""
    waiting = [h for h in hosts if not settled[h].is_set()]
    if not waiting:
        return
    log.warning("stopping: letting the change in flight on %d host(s) finish (up to %g s; Ctrl-C again to "
                "stop waiting)", len(waiting), grace)
    end = time.monotonic() + grace
    try:
        for h in waiting:
            settled[h].wait(max(0.0, end - time.monotonic()))
    except KeyboardInterrupt:  # the second Ctrl-C/SIGTERM: report now, the journal says what was in flight
        pass


class Interrupted(KeyboardInterrupt):
    """Ctrl-C/SIGTERM during ``apply``: ``outcomes`` says what was done on each host so far."""

    def __init__(self, outcomes: dict[str, HostOutcome]):
        super().__init__("interrupted")
        self.outcomes = outcomes


# --- the whole fix: scan, plan, apply, verify ----------------------------------------------------------------


@dataclass
class FixOptions:
    port: int = 80
    strategy: str = "disable-services"
    iplisten: list[str] = field(default_factory=list)  # ADDR or HOST=ADDR
    force_services: list[str] = field(default_factory=list)
    evidence_dir: Path = Path("port80-fix")
    journal: Optional[Path] = None  # default: <evidence_dir>/journal.jsonl
    forks: int = 32
    timeout: float = 120.0
    progress: bool = False

    @property
    def journal_path(self) -> Path:
        return Path(self.journal) if self.journal else Path(self.evidence_dir) / "journal.jsonl"


def load_facts(report: HostReport) -> rm.HostFacts:
    """The planner's facts from the host's evidence bundle (empty when there is none)."""
    if not report.evidence_dir or report.status in FAILED:
        return rm.HostFacts()
    return rm.facts_from_texts(read_bundle(Path(report.evidence_dir)).texts)


class Fixer:
    """``port80 fix`` without the CLI: scan → plan → (apply → verify) and undo."""

    def __init__(self, specs: list[ConnectionSpec], password_for: Callable[[ConnectionSpec], Optional[str]],
                 opts: FixOptions, secrets: Iterable[str] = ()):
        self.specs = {s.name: s for s in specs}
        self.order = [s.name for s in specs]
        self.password_for = password_for
        self.opts = opts
        self.secrets = [s for s in secrets if s]
        self.reports: dict[str, HostReport] = {}
        self.interrupted = False

    def scan(self, names: Iterable[str], subdir: str) -> dict[str, HostReport]:
        specs = [self.specs[n] for n in names if n in self.specs]
        opts = ScanOptions(ports=[self.opts.port], evidence_dir=Path(self.opts.evidence_dir) / subdir,
                           forks=self.opts.forks, timeout=self.opts.timeout, progress=self.opts.progress)
        scan = Scan(specs, self.password_for, opts, secrets=self.secrets)
        reports = scan.run()
        scan.write_reports()
        self.interrupted = self.interrupted or scan.interrupted
        return {r.host: r for r in reports}

    def plan(self) -> list[HostPlan]:
        """A fresh scan of every host, then each host's plan (changes nothing)."""
        common, per_host = rm.parse_iplisten_args(self.opts.iplisten, self.order)
        self.reports = self.scan(self.order, "scan")
        plans = []
        for name in self.order:
            report = self.reports.get(name) or HostReport(host=name, status=HostStatus.ERROR, error="not scanned (interrupted)")
            plans.append(rm.plan_host(report, load_facts(report), port=self.opts.port, strategy=self.opts.strategy,
                                      iplisten=rm.iplisten_for(name, common, per_host),
                                      force_services=self.opts.force_services))
        self._write_plan(plans, "plan.json")
        return plans

    def undo_plan(self, journal_path: Path) -> tuple[list[HostPlan], list[str]]:
        """The undo plan of a journal (no scan); warnings about the journal itself."""
        journal = read_journal_file(journal_path)
        plans = rj.undo_plans(journal)
        for p in plans:
            if p.host not in self.specs and p.actions:
                p.status, p.reason = "skipped", "not in the inventory (or --limit): not undone"
                p.actions = []
        self.opts.port = plans[0].port if plans else self.opts.port
        self._write_plan(plans, "undo-plan.json")
        return plans, journal.warnings

    def apply(self, plans: list[HostPlan], mode: str = "apply", undoes: Optional[Path] = None) -> dict[str, HostOutcome]:
        journal = JournalWriter(self.opts.journal_path, mode)
        journal.write("run", port=self.opts.port, strategy=self.opts.strategy if mode == "apply" else "undo",
                      hosts=[p.host for p in plans if p.actions], **({"undoes": str(undoes)} if undoes else {}))
        outcomes = run_plans(self.specs, self.password_for, plans, journal, forks=self.opts.forks,
                             timeout=self.opts.timeout, secrets=self.secrets)
        self.verify(plans, outcomes, journal)
        return outcomes

    def verify(self, plans: list[HostPlan], outcomes: dict[str, HostOutcome], journal: JournalWriter) -> None:
        """Re-scan the hosts something ran on and say, per host, whether the port is free now."""
        names = [p.host for p in plans if p.host in outcomes and outcomes[p.host].status != "skipped"]
        if not names:
            return
        after = self.scan(names, "verify")
        for p in plans:
            o = outcomes.get(p.host)
            if o is None or p.host not in names:
                continue
            report = after.get(p.host)
            o.verified = rm.verify(p, report)
            v = next((x for x in report.ports if x.port == p.port), None) if report else None
            journal.write("verified", host=p.host, verified=o.verified,
                          holder=v.holder if v and report and report.status not in FAILED else "unknown",
                          who=rm.who_holds(v) if v else "")

    def _write_plan(self, plans: list[HostPlan], name: str) -> None:
        path = Path(self.opts.evidence_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rr.render_plans(plans, "json"), encoding="utf-8")
