"""Remediation planning for ``port80 fix``: what to change on a host to free a port, what it was before,
and how to undo each change. Pure: reports and evidence texts in, plans out. No IO, no pypsrp
(``remote.remediation.apply`` runs the plans; ``journal`` reads the journal and builds undo plans;
``render`` prints plans and outcomes).

Two strategies:

- ``disable-services``: stop and disable the services the analysis attributes to the HTTP.sys
  registrations on the port (``Stop-Service -Name X``, then ``Set-Service -Name X -StartupType
  Disabled``), ordered from the host's own service dependency graph (its ``Get-Service`` evidence,
  ``remote.analysis.servicegraph``): every service stops after the services that need it. Never
  ``-Force`` (Stop-Service -Force silently stops every running dependent, which the journal would not
  record and undo would not restart): a running dependent joins the plan instead — stopped (not
  disabled: it cannot start while what it needs is disabled), journaled, restarted by undo, and shown
  in the dry run with why — or, when it is critical or something the remoting session needs, blocks
  the plan with that reason. Without the graph, a single service is planned (if it has a running
  dependent, Stop-Service fails loudly and nothing else stops); several cannot be ordered: skipped.
- ``iplisten``: add addresses to HTTP.sys's IP listen list (``netsh.exe http add iplisten
  ipaddress=A``) so HTTP.sys binds only those and another web server can bind the others. On real
  Windows the HTTP service reads the list when it starts: a restart of HTTP (which restarts WinRM too)
  or a reboot, in a maintenance window, is needed; port80 does not do it.

Safety rules (a host is either planned whole or skipped with its reason; never half a plan):

- never a service the remoting session depends on — found through the graph from WinRM (WinRM → HTTP,
  RPCSS → …), plus ``REMOTING_SERVICES`` for a host without a graph — whatever ``--force-service``
  says, nor a service that would have to stop with one; a registration whose product is critical (the WinRM compatibility
  listener ``HTTP://+:80/WSMAN/``, WinRM, RDP over HTTP) skips the host with the manual command;
- only services the analysis attributes to a registration on the requested port;
- other services the knowledge base marks critical only with ``--force-service NAME``;
- a user-mode process on the port: skipped (port80 does not kill processes); a free port: nothing to do;
- every change needs its state before (from the scan's services.json / iplisten.txt), or the host
  is skipped: what cannot be recorded cannot be undone;
- ``iplisten`` never leaves out the address port80 reaches the host on (WinRM is served by HTTP.sys:
  it would become unreachable once HTTP restarts).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from remote.analysis import knowledge
from remote.analysis.servicegraph import ServiceGraph, dependents_of, graph_from_text, remoting_needs, stop_order
from remote.analysis.verdicts import HTTP_SYS_PID, HostReport, PortVerdict, Registration
from remote.parsers.common import is_ip
from remote.runner.failures import FAILED
from remote.parsers import PARSERS
from remote.parsers.services import _START_WORDS
from remote.parsers.records import to_dict

STRATEGIES = ("disable-services", "iplisten")
FORMATS = ("table", "markdown", "json")

# Services the remoting session itself depends on: never touched, not even with --force-service.
REMOTING_SERVICES = frozenset(s.lower() for s in (
    "WinRM", "Wecsvc", "HTTP", "RpcSs", "RpcEptMapper", "DcomLaunch", "SamSs", "Netlogon", "BFE", "mpssvc",
))

IPLISTEN_NOTE = ("on real Windows the HTTP service reads the IP listen list when it starts: restart the HTTP "
                 "service (this restarts WinRM and every HTTP.sys user too) or reboot, in a maintenance window, "
                 "for the change to take effect; port80 does not do it")

# kind -> (command, the state keys its before/after are about)
KINDS = ("stop-service", "start-service", "set-start-mode", "iplisten-add", "iplisten-delete")
_SET_SERVICE_WORD = {"Auto": "Automatic", "Manual": "Manual", "Disabled": "Disabled"}


def norm_mode(mode: Optional[str]) -> Optional[str]:
    """A start mode in Win32_Service's words (Auto, Manual, Disabled, Boot, System)."""
    if mode is None:
        return None
    return _START_WORDS.get(str(mode).strip().casefold(), str(mode).strip())


def norm_state(state: Optional[str]) -> Optional[str]:
    if state is None:
        return None
    s = str(state).strip().replace(" ", "").casefold()
    return {"running": "Running", "stopped": "Stopped"}.get(s, str(state).strip())


# --- actions ---------------------------------------------------------------------------------------


@dataclass
class Action:
    """One change on one host, with the state it finds (``before``) and why it is planned."""

    kind: str  # one of KINDS
    target: str  # service name, or IP address for iplisten-*
    value: Optional[str] = None  # set-start-mode: the start mode to set (Win32 words: Auto, Manual, Disabled)
    before: dict[str, Any] = field(default_factory=dict)  # {"state", "start_mode"} or {"iplisten": [...]}
    why: str = ""

    @property
    def command(self) -> str:
        return " ".join(_words(self))

    def invocation(self) -> tuple[str, list[tuple[Optional[str], Any]], bool]:
        """(command, [(parameter or None for an argument, value)], native) as it goes over PSRP."""
        if self.kind == "stop-service":
            return "Stop-Service", [("Name", self.target)], False
        if self.kind == "start-service":
            return "Start-Service", [("Name", self.target)], False
        if self.kind == "set-start-mode":
            return "Set-Service", [("Name", self.target), ("StartupType", _SET_SERVICE_WORD[self.value or ""])], False
        verb = "add" if self.kind == "iplisten-add" else "delete"
        return "netsh.exe", [(None, "http"), (None, verb), (None, "iplisten"), (None, f"ipaddress={self.target}")], True

    @property
    def service(self) -> bool:
        return self.kind in ("stop-service", "start-service", "set-start-mode")

    def expected(self) -> dict[str, Any]:
        """The state the action leads to (what the check after it compares against)."""
        if self.kind == "stop-service":
            return {"state": "Stopped"}
        if self.kind == "start-service":
            return {"state": "Running"}
        if self.kind == "set-start-mode":
            return {"start_mode": self.value}
        lst = [a for a in self.before.get("iplisten") or [] if not same_ip(a, self.target)]
        return {"iplisten": lst + [self.target] if self.kind == "iplisten-add" else lst}

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "target": self.target, "before": dict(self.before), "why": self.why}
        if self.value is not None:
            d["value"] = self.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Action":
        kind = d.get("kind")
        if kind not in KINDS or not isinstance(d.get("target"), str) or not d["target"]:
            raise ValueError(f"not an action: {d!r}")
        if kind == "set-start-mode" and norm_mode(d.get("value")) not in _SET_SERVICE_WORD:
            raise ValueError(f"set-start-mode to {d.get('value')!r}")
        return cls(kind=kind, target=d["target"], value=norm_mode(d.get("value")) if kind == "set-start-mode" else None,
                   before=dict(d.get("before") or {}), why=str(d.get("why") or ""))


def _words(a: Action) -> list[str]:
    cmd, params, _ = a.invocation()
    words = [cmd]
    for name, value in params:
        if name is None:
            words.append(str(value))
        elif value is True:
            words.append(f"-{name}")
        else:
            words.append(f"-{name} {value}")
    return words


def same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.strip("[]").split("%")[0]) == ipaddress.ip_address(b.strip("[]").split("%")[0])
    except ValueError:
        return a.strip("[]").lower() == b.strip("[]").lower()


def check(action: Action, observed: Any) -> Optional[str]:
    """Did ``action`` take effect? ``observed``: for a service action, ``{"state", "start_mode"}`` as read
    back from the host (None: no such service); for iplisten, the list read back. None = it did;
    otherwise one line saying what is wrong."""
    if action.service:
        if observed is None:
            return f"service {action.target} not found on the host"
        if action.kind == "set-start-mode":
            got = norm_mode(observed.get("start_mode"))
            return None if got == action.value else f"{action.target} start mode is {got or 'unknown'}, not {action.value}"
        want = action.expected()["state"]
        got = norm_state(observed.get("state"))
        return None if got == want else f"{action.target} is {got or 'in an unknown state'}, not {want}"
    present = any(same_ip(a, action.target) for a in observed or [])
    if action.kind == "iplisten-add":
        return None if present else f"{action.target} is not in the IP listen list after the add"
    return None if not present else f"{action.target} is still in the IP listen list after the delete"


def inverse(action: Action) -> Optional[Action]:
    """The action that restores what ``action`` changed (None: nothing to restore)."""
    before = action.before
    why = f"undo: {action.command}"
    if action.kind == "stop-service":
        if norm_state(before.get("state")) == "Stopped":
            return None
        return Action("start-service", action.target, before={"state": "Stopped"}, why=why)
    if action.kind == "start-service":
        if norm_state(before.get("state")) != "Stopped":
            return None
        return Action("stop-service", action.target, before={"state": "Running"}, why=why)
    if action.kind == "set-start-mode":
        old = norm_mode(before.get("start_mode"))
        if old is None or old == action.value:
            return None
        if old not in _SET_SERVICE_WORD:
            raise ValueError(f"{action.target}: start mode {old} cannot be restored with Set-Service")
        return Action("set-start-mode", action.target, value=old, before={"start_mode": action.value}, why=why)
    after = action.expected()["iplisten"]
    if action.kind == "iplisten-add":
        if any(same_ip(a, action.target) for a in before.get("iplisten") or []):
            return None
        return Action("iplisten-delete", action.target, before={"iplisten": after}, why=why)
    if not any(same_ip(a, action.target) for a in before.get("iplisten") or []):
        return None
    return Action("iplisten-add", action.target, before={"iplisten": after}, why=why)


# --- host facts from the evidence bundle ----------------------------------------------------------


@dataclass
class ServiceState:
    name: str
    state: Optional[str] = None  # Running, Stopped, …
    start_mode: Optional[str] = None  # Auto, Manual, Disabled, … (None: unknown, e.g. from tasklist)


@dataclass
class HostFacts:
    """What the planner needs besides the verdict: service states and the IP listen list (None: unknown)."""

    services: Optional[dict[str, ServiceState]] = None  # lower-case name -> state
    iplisten: Optional[list[str]] = None
    graph: Optional[ServiceGraph] = None  # the service dependency graph (getservice.json); None: unknown

    def service(self, name: str) -> Optional[ServiceState]:
        return (self.services or {}).get(name.lower())


def facts_from_texts(texts: dict[str, Optional[str]]) -> HostFacts:
    """Service states (services.json, else getservice.json's, else the running services of tasklist.txt,
    start mode unknown), the service dependency graph (getservice.json) and the IP listen list, from a
    bundle's texts."""
    facts = HostFacts(graph=graph_from_text(texts.get("getservice")))
    text = texts.get("services")
    if text is not None:
        res = PARSERS["services"](text)
        if not res.error and res.services:
            facts.services = {s.name.lower(): ServiceState(s.name, norm_state(s.state), norm_mode(s.start_mode))
                              for s in res.services}
    if facts.services is None and facts.graph is not None:
        facts.services = {k: ServiceState(n.name, norm_state(n.status), norm_mode(n.start_type))
                          for k, n in facts.graph.nodes.items()}
    tasklist = texts.get("tasklist")
    if facts.services is None and tasklist is not None:
        res = PARSERS["tasklist"](tasklist)
        if not res.error and res.processes:
            facts.services = {s.lower(): ServiceState(s, "Running", None) for p in res.processes for s in p.services}
    iplisten = texts.get("iplisten")
    if iplisten is not None:
        res = PARSERS["iplisten"](iplisten)
        if not res.error:
            facts.iplisten = list(res.addresses)
    return facts


# --- plans ------------------------------------------------------------------------------------------


@dataclass
class HostPlan:
    host: str
    port: int
    strategy: str
    status: str  # "planned" | "skipped" | "nothing"
    reason: str = ""
    manual: Optional[str] = None  # a command for the admin to run by hand, when port80 will not
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    holder: str = "unknown"  # the verdict before
    who: str = ""  # products/processes holding the port before (for undo: what it is to be again)
    address: Optional[str] = None
    state_now: Optional[dict[str, str]] = None  # undo: {"holder", "who"} verified after the apply, when known
    stops_with: dict[str, list[str]] = field(default_factory=dict)  # service behind a registration -> running
    # services that stop with it (its dependents, stop order; from the host's Get-Service graph)

    def journal_state(self) -> dict[str, str]:
        """The verdict the host has when this plan starts running (the journal's "host" record)."""
        return dict(self.state_now) if self.state_now else {"holder": self.holder, "who": self.who}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = to_dict(self)
        d["actions"] = [dict(a.to_dict(), command=a.command) for a in self.actions]
        return d


def who_holds(v: PortVerdict) -> str:
    who: list[str] = []
    for r in v.registrations:
        label = r.product or r.url
        if label not in who:
            who.append(label)
    for l in v.listeners:
        if l.pid != HTTP_SYS_PID:
            label = f"{l.process or 'PID'} ({l.pid}) on {l.address}" if l.process else f"PID {l.pid} on {l.address}"
            if label not in who:
                who.append(label)
    if not who and v.holder not in ("free", "unknown"):
        who.append(v.holder)
    return ", ".join(who)


def _user_listeners(v: PortVerdict) -> str:
    return ", ".join(f"{l.process or 'PID ' + str(l.pid)} (PID {l.pid}) on {l.address}"
                     for l in v.listeners if l.pid != HTTP_SYS_PID)


def _manual_for(prod: knowledge.Product, port: int) -> str:
    if prod.key == "winrm-compat":
        kind = "Https" if port == 443 else "Http"
        return f'winrm set winrm/config/service @{{EnableCompatibility{kind}Listener="false"}}'
    return prod.advice


def plan_host(report: HostReport, facts: HostFacts, *, port: int = 80, strategy: str = "disable-services",
              iplisten: Sequence[str] = (), force_services: Iterable[str] = ()) -> HostPlan:
    """The plan for one host from its fresh scan (pure). See the module doc for the rules."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    plan = HostPlan(host=report.host, port=port, strategy=strategy, status="skipped", address=report.address)
    if report.status in FAILED:
        plan.reason = f"not scanned: {report.status}" + (f" ({report.error})" if report.error else "")
        return plan
    v = next((p for p in report.ports if p.port == port), None)
    if v is None:
        plan.reason = f"the scan has no verdict for port {port}"
        return plan
    plan.holder, plan.who = v.holder, who_holds(v)
    if v.holder == "free":
        plan.status, plan.reason = "nothing", f"port {port} is free: nothing to do"
        return plan
    if v.holder == "unknown":
        plan.reason = f"cannot tell who holds port {port}" + (f": {'; '.join(v.notes)}" if v.notes else "")
        return plan
    if strategy == "iplisten":
        plan = _plan_iplisten(plan, v, facts, iplisten)
    else:
        plan = _plan_services(plan, v, facts, list(force_services))
    if plan.status == "skipped" and report.status == "partial" and report.error:
        plan.reason += f" (the scan was partial: {report.error})"
    return plan


def _plan_services(plan: HostPlan, v: PortVerdict, facts: HostFacts, force_services: list[str]) -> HostPlan:
    forced = {s.lower() for s in force_services}
    port = v.port
    if "process" in v.holders:
        plan.reason = (f"port {port} is held by a user-mode process: {_user_listeners(v)}; port80 does not kill "
                       "processes (stop or reconfigure it yourself)")
        return plan
    if not v.registrations:
        plan.reason = (f"HTTP.sys (PID 4) listens on port {port} but no registration on it is visible in the "
                       "servicestate output: port80 cannot tell which service to stop")
        return plan
    # a registration whose product the remoting session depends on: hands off the whole host
    for r in v.registrations:
        prod = knowledge.product(r.product_key)
        if prod.critical:
            plan.reason = (f"{r.url} is the {prod.label}: the remoting session port80 uses depends on it, so "
                           f"port80 does not touch it; to free port {port}, run on the host:")
            plan.manual = _manual_for(prod, port)
            return plan
    targets: list[tuple[str, str]] = []  # (service, why)
    for r in v.registrations:
        chosen, problem = _services_of(r, forced)
        if problem:
            plan.reason = problem
            return plan
        for s in chosen:
            if s.lower() not in {t.lower() for t, _ in targets}:
                targets.append((s, f"behind {r.url} ({r.product or 'unknown product'})"))
    for f in [f for f in dict.fromkeys(force_services) if f.lower() not in {t.lower() for t, _ in targets}]:
        plan.notes.append(f"--force-service {f}: not behind a registration on port {port} here; ignored")
    g = facts.graph
    # what stops: the targets and every running service that needs one of them (Stop-Service without
    # -Force refuses to stop a service while a dependent runs), each stopping before what it needs
    joined: dict[str, str] = {}  # lower name -> why it joins
    for name, _ in targets:
        deps = dependents_of(g, name) if g is not None else []
        plan.stops_with[name] = [d for d in deps if g is not None and g.running(d)]
        for d in plan.stops_with[name]:
            if d.lower() not in {t.lower() for t, _ in targets}:
                joined.setdefault(d.lower(), f"running dependent of {name}: it needs {name}, and Stop-Service "
                                             f"without -Force refuses to stop {name} while it runs")
    names = [n for n, _ in targets] + [g.name(k) for k in joined] if g is not None else [n for n, _ in targets]
    protected = remoting_needs(g) if g is not None else {}
    for s in names:
        if s.lower() in protected or s.lower() in REMOTING_SERVICES:
            path = protected.get(s.lower())
            via = f" ({' -> '.join(path)})" if path and len(path) > 1 else ""
            if s.lower() in joined:
                target = next(t for t, _ in targets if s in plan.stops_with.get(t, []))
                plan.reason = (f"stopping {target} would stop {s}, which the remoting session port80 uses depends "
                               f"on{via}: port80 never stops it (not even with --force-service)")
            else:
                plan.reason = (f"{s} is behind a registration on port {port}, but the remoting session port80 uses "
                               f"depends on it{via}: port80 never stops it (not even with --force-service)")
            return plan
        if knowledge.is_critical(s) and s.lower() not in forced:
            if s.lower() in joined:
                plan.reason = (f"{s} would have to stop too ({joined[s.lower()]}) and it is critical (knowledge "
                               f"base): port80 refuses; rerun with --force-service {s} if you are sure")
            else:
                plan.reason = (f"{s} is critical (knowledge base): port80 refuses to stop it; rerun with "
                               f"--force-service {s} if you are sure")
            return plan
    if facts.services is None:
        plan.reason = ("service states unknown (services.json and getservice.json missing or unreadable): port80 "
                       "records the state of everything it changes, so it plans nothing here")
        return plan
    if g is None:
        if len(targets) > 1:
            plan.reason = (f"the service dependency graph is unknown (getservice.json missing or unreadable): port80 "
                           f"cannot order stopping {', '.join(n for n, _ in targets)} safely, so it plans nothing here")
            return plan
        plan.notes.append(f"the service dependency graph is unknown (no getservice.json): if {targets[0][0]} has a "
                          "running dependent, Stop-Service fails (port80 never uses -Force) and nothing else changes")
    elif not g.complete:
        plan.notes.append("the Get-Service evidence misses some dependency lists: the order follows what it shows")
    why_of = {n.lower(): w for n, w in targets} | joined
    target_keys = {n.lower() for n, _ in targets}
    for name in (stop_order(g, names) if g is not None else names):
        why = why_of[name.lower()]
        st = facts.service(name)
        if st is None:
            plan.reason = f"{name} is not in the host's service list: its state before cannot be recorded"
            plan.actions = []
            return plan
        if name.lower() not in target_keys:  # a dependent: stopped only, it cannot start without what it needs
            if st.state != "Stopped":
                plan.actions.append(Action("stop-service", st.name, before={"state": st.state,
                                                                            "start_mode": st.start_mode}, why=why))
            continue
        if st.start_mode is None:
            plan.reason = f"{name}: start mode unknown (no services.json): its state before cannot be recorded"
            plan.actions = []
            return plan
        if st.start_mode not in _SET_SERVICE_WORD:
            plan.reason = f"{name}: start mode {st.start_mode} cannot be restored with Set-Service; not touched"
            plan.actions = []
            return plan
        before = {"state": st.state, "start_mode": st.start_mode}
        if st.state != "Stopped":
            plan.actions.append(Action("stop-service", st.name, before=dict(before), why=why))
        if st.start_mode != "Disabled":
            plan.actions.append(Action("set-start-mode", st.name, value="Disabled",
                                       before={"start_mode": st.start_mode}, why=why))
    for name, deps in plan.stops_with.items():
        plan.notes.append(f"{name} stops with: " + (", ".join(deps) if deps else "nothing else")
                          if g is not None else f"{name} stops with: unknown (no dependency graph)")
    if not plan.actions:
        listed = ", ".join(n for n, _ in targets)
        plan.reason = (f"{listed} already stopped and disabled, yet port {port} is still registered: "
                       "the evidence is stale or another process holds the registration")
        return plan
    plan.status = "planned"
    return plan


def _services_of(r: Registration, forced: set[str]) -> tuple[list[str], Optional[str]]:
    """The services to stop for one registration, or why none can be chosen."""
    if not r.services:
        if r.pids or r.controller_pid is not None:
            procs = ", ".join(r.processes) or ", ".join(f"PID {p}" for p in r.pids)
            return [], (f"{r.url} is registered by {procs}, which runs no service port80 knows of: port80 does "
                        "not kill processes")
        return [], f"{r.url}: no process is attached to its request queue; port80 cannot tell who registered it"
    prod = knowledge.product(r.product_key)
    known = [s for s in r.services if s.lower() in prod.services]
    if known:
        return known, None
    if len(r.services) == 1:
        return list(r.services), None
    picked = [s for s in r.services if s.lower() in forced]
    if picked:
        return picked, None
    return [], (f"{r.url} is registered by a process hosting several services ({', '.join(r.services)}): "
                "port80 cannot tell which one; name it with --force-service NAME")


def _plan_iplisten(plan: HostPlan, v: PortVerdict, facts: HostFacts, wanted: Sequence[str]) -> HostPlan:
    port = v.port
    if "http.sys" not in v.holders:
        plan.reason = (f"port {port} is held by a user-mode process ({_user_listeners(v)}), not HTTP.sys: the "
                       "IP listen list would change nothing; port80 does not kill processes")
        return plan
    if not wanted:
        plan.reason = "no --iplisten address for this host"
        return plan
    if facts.iplisten is None:
        plan.reason = ("the current IP listen list is unknown (iplisten.txt missing or unreadable): its state "
                       "before cannot be recorded")
        return plan
    current = list(facts.iplisten)
    final = current + [a for a in wanted if not any(same_ip(a, c) for c in current)]
    addr = plan.address
    if addr and is_ip(addr) and not any(same_ip(addr, a) for a in final):
        plan.reason = (f"the IP listen list would leave out {addr}, the address port80 reaches this host on: "
                       "WinRM is served by HTTP.sys and would become unreachable once the HTTP service restarts; "
                       f"add --iplisten {plan.host}={addr}")
        return plan
    if addr and not is_ip(addr):
        plan.notes.append(f"make sure the address {addr} resolves to is in the list: WinRM is served by "
                          "HTTP.sys and listens only on the listed addresses once HTTP restarts")
    lst = list(current)
    for a in wanted:
        if any(same_ip(a, c) for c in lst):
            continue
        plan.actions.append(Action("iplisten-add", a, before={"iplisten": list(lst)},
                                   why=f"restrict HTTP.sys to {', '.join(final)}"))
        lst.append(a)
    extra = [c for c in current if not any(same_ip(c, w) for w in wanted)]
    if extra:
        plan.notes.append("the IP listen list also holds " + ", ".join(extra) + " (kept)")
    if not plan.actions:
        plan.status, plan.reason = "nothing", "the IP listen list already holds " + ", ".join(wanted)
        return plan
    plan.notes.append(IPLISTEN_NOTE)
    plan.status = "planned"
    return plan




def parse_iplisten_args(values: Iterable[str], hosts: Iterable[str] = ()) -> tuple[list[str], dict[str, list[str]]]:
    """``--iplisten`` values: ``ADDR`` (every host) or ``HOST=ADDR`` (that host only).
    Returns (common addresses, host -> its own addresses); ValueError names a bad value."""
    known = set(hosts)
    common: list[str] = []
    per_host: dict[str, list[str]] = {}
    for raw in values:
        host, sep, addr = raw.rpartition("=")
        addr = addr.strip()
        if not is_ip(addr):
            raise ValueError(f"--iplisten {raw}: {addr!r} is not an IP address")
        addr = str(ipaddress.ip_address(addr.strip("[]").split("%")[0])) if "%" not in addr else addr.strip("[]")
        if sep:
            if known and host not in known:
                raise ValueError(f"--iplisten {raw}: {host} is not among the hosts")
            per_host.setdefault(host, []).append(addr)
        else:
            common.append(addr)
    return common, per_host


def iplisten_for(host: str, common: list[str], per_host: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for a in [*common, *per_host.get(host, [])]:
        if not any(same_ip(a, b) for b in out):
            out.append(a)
    return out


# --- verification ------------------------------------------------------------------------------------


def verify(plan: HostPlan, report: Optional[HostReport]) -> "Verified":
    """One word and detail for the host after the change, from the re-scan's report (``.ok``: the change
    did what it was for)."""
    if report is None:
        return Verified("unknown (not re-scanned)", False)
    if report.status in FAILED:
        return Verified(f"unknown ({report.status}: {report.error or 'no detail'})", False)
    v = next((p for p in report.ports if p.port == plan.port), None)
    if v is None or v.holder == "unknown":
        return Verified(f"unknown (cannot tell who holds port {plan.port})", False)
    if plan.strategy == "undo":
        now = v.holder if v.holder == "free" else f"held by {who_holds(v)}"
        was = plan.holder if plan.holder == "free" else f"held by {plan.who or plan.holder}"
        same = (v.holder == plan.holder and (v.holder == "free" or who_holds(v) == plan.who)) or plan.holder == "unknown"
        return Verified(f"as before: {now}", True) if same else Verified(f"differs: now {now}, before {was}", False)
    if plan.strategy == "iplisten":
        allowed = plan.actions[-1].expected()["iplisten"] if plan.actions else []
        kernel = [l for l in v.listeners if l.pid == HTTP_SYS_PID]
        outside = [l.address for l in kernel if not any(same_ip(l.address.strip("[]"), a) for a in allowed)]
        if outside:
            return Verified(f"not restricted yet: HTTP.sys still listens on {', '.join(outside)} (the HTTP service "
                            "reads the list at start)", False)
        return Verified("restricted: HTTP.sys listens only on " + (", ".join(l.address for l in kernel) or "no address"),
                        True)
    if v.holder == "free":
        return Verified("free", True)
    return Verified(f"still held by {who_holds(v)}", False)


class Verified(str):
    """The verification sentence (journal, outcome table), and whether it means success (``ok``): decided
    where the sentence is made, never read back from its words."""

    ok: bool

    def __new__(cls, text: str, ok: bool) -> "Verified":
        v = super().__new__(cls, text)
        v.ok = ok
        return v


@dataclass
class HostOutcome:
    """What happened on one host when a plan ran."""

    host: str
    status: str = "ok"  # ok | failed | a failure class (unreachable, timeout, …) | skipped
    error: Optional[str] = None
    applied: list[str] = field(default_factory=list)  # commands
    failed: Optional[str] = None  # the command that failed
    not_run: list[str] = field(default_factory=list)
    verified: Optional[Verified] = None
