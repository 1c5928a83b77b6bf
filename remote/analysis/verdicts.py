"""Who holds each requested port on a host, and why. Pure: parsed evidence in, verdicts out.

The rules (see README "How port80 decides"):
- ``http.sys``: a TCP listener on the port owned by PID 4 (the kernel HTTP listener) and/or a live
  HTTP.sys registration (servicestate) on the port: explicit port, or 80/443 by scheme.
- ``process``: a user-mode PID listens on the port.
- both at once is possible (HTTP.sys restricted by the IP listen list to one address, Apache on
  another): ``holder`` is then ``http.sys+process`` and ``holders`` lists both.
- ``free``: the listener table was read and nothing listens, and no registration exists.
- ``unknown``: the evidence needed to decide is missing or unreadable.
Reservations (urlacl) never hold a port; they are listed with their users.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, TypeVar

from remote.analysis import binding, knowledge
from remote.analysis.urls import parse_url, url_key
from remote.enums import StrEnum
from remote.evidence.bundle import Bundle
from remote.evidence.kinds import FILES, KINDS, PARSED, REQUIRED
from remote.parsers.records import (
    ExcludedPortRangeResult,
    GetServiceResult,
    IisAppPoolsResult,
    IisSitesResult,
    IpListenResult,
    NetstatResult,
    ProcessesResult,
    RequestQueue,
    ServicesResult,
    ServiceStateResult,
    SslCertResult,
    TasklistResult,
    UrlAclResult,
)
from remote.runner.failures import FAILED, HostStatus

HTTP_SYS_PID = 4


class Holder(StrEnum):
    """Who holds a port (README "How port80 decides")."""

    HTTP_SYS = "http.sys"  # a PID 4 listener and/or a live HTTP.sys registration
    PROCESS = "process"  # a user-mode process listens
    BOTH = "http.sys+process"  # both, on different addresses
    FREE = "free"  # the listener table was read and nothing listens
    UNKNOWN = "unknown"  # the evidence needed is missing
MAX_PID = 0xFFFFFFFF  # a Windows process ID is a DWORD


@dataclass
class Listener:
    address: str
    port: int
    pid: Optional[int]
    process: Optional[str]
    proto: str = "TCP"
    evidence: str = ""


@dataclass
class Registration:
    url: str
    queue: Optional[str]  # request queue name; "(unnamed)" when unnamed; None when not linked
    pids: list[int] = field(default_factory=list)
    controller_pid: Optional[int] = None
    processes: list[str] = field(default_factory=list)  # "svchost.exe (1234)"
    services: list[str] = field(default_factory=list)
    product: str = ""
    product_key: str = ""
    advice: str = ""
    critical: bool = False
    evidence: str = ""
    iis: Optional[dict[str, Any]] = None  # {"site", "site_id", "app_pool"} for an IIS registration
    shadowed_by: Optional[str] = None  # the registration that receives this one's URLs instead


@dataclass
class ReservationView:
    url: str
    users: list[str] = field(default_factory=list)
    product: Optional[str] = None
    evidence: str = ""


@dataclass
class PortVerdict:
    port: int
    holder: Holder
    holders: list[Holder] = field(default_factory=list)  # http.sys and/or process
    listeners: list[Listener] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)
    reservations: list[ReservationView] = field(default_factory=list)
    iplisten: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bindable: Optional[bool] = None  # can a new process bind 0.0.0.0:PORT now (None: evidence missing)
    blockers: list[dict[str, Any]] = field(default_factory=list)  # every reason it cannot (remote/analysis/binding.py)
    excluded_ranges: list[dict[str, Any]] = field(default_factory=list)
    tls: list[dict[str, Any]] = field(default_factory=list)  # certificate bindings on the port


@dataclass
class HostReport:
    host: str
    status: HostStatus = HostStatus.OK
    error: Optional[str] = None
    address: Optional[str] = None
    os_version: Optional[str] = None
    collected_at: Optional[str] = None
    evidence_dir: Optional[str] = None
    ports: list[PortVerdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # inventory groups (host.json "groups" of a scan)


class Evidence:
    """Parsed evidence of one host by kind (remote/evidence/kinds.py); a kind absent was not collected."""

    def __init__(self, **parsed: Any) -> None:
        unknown = set(parsed) - set(KINDS)
        if unknown:
            raise TypeError(f"not evidence kinds: {', '.join(sorted(unknown))}")
        self.parsed: dict[str, Any] = {k: v for k, v in parsed.items() if v is not None}

    def get(self, kind: str) -> Any:
        return self.parsed.get(kind)

    def usable(self, kind: str) -> bool:
        r = self.parsed.get(kind)
        return r is not None and not r.error

    # typed views of the kinds the verdict rules read
    @property
    def netstat(self) -> Optional[NetstatResult]:
        return self.parsed.get("netstat")

    @property
    def servicestate(self) -> Optional[ServiceStateResult]:
        return self.parsed.get("servicestate")

    @property
    def urlacl(self) -> Optional[UrlAclResult]:
        return self.parsed.get("urlacl")

    @property
    def iplisten(self) -> Optional[IpListenResult]:
        return self.parsed.get("iplisten")

    @property
    def services(self) -> Optional[ServicesResult]:
        return self.parsed.get("services")

    @property
    def tasklist(self) -> Optional[TasklistResult]:
        return self.parsed.get("tasklist")

    @property
    def processes(self) -> Optional[ProcessesResult]:
        return self.parsed.get("processes")

    @property
    def sslcert(self) -> Optional[SslCertResult]:
        return self.parsed.get("sslcert")

    @property
    def excludedportrange(self) -> Optional[ExcludedPortRangeResult]:
        return self.parsed.get("excludedportrange")

    @property
    def excludedportrange6(self) -> Optional[ExcludedPortRangeResult]:
        return self.parsed.get("excludedportrange6")

    @property
    def iis_sites(self) -> Optional[IisSitesResult]:
        return self.parsed.get("iis_sites")

    @property
    def iis_apppools(self) -> Optional[IisAppPoolsResult]:
        return self.parsed.get("iis_apppools")

    @property
    def nettcpconnection(self) -> Optional[NetstatResult]:
        return self.parsed.get("nettcpconnection")

    @property
    def getservice(self) -> Optional[GetServiceResult]:  # the service dependency graph (port80 fix orders by it)
        return self.parsed.get("getservice")


class _Parsed(Protocol):
    error: Optional[str]


ParsedT = TypeVar("ParsedT", bound=_Parsed)


def _ok(result: Optional[ParsedT]) -> Optional[ParsedT]:
    """The parsed result when it is usable (present, and not an error message), else None."""
    return result if result is not None and not result.error else None


def parse_evidence(texts: dict[str, Optional[str]]) -> Evidence:
    ev = Evidence()
    for kind in PARSED:
        text = texts.get(kind)
        if text is not None:
            ev.parsed[kind] = KINDS[kind].analyse(text)
    return ev


def _file(kind: str) -> str:
    return FILES.get(kind, f"{kind}.txt")


class _Owners:
    """PID → process name and services, from the best evidence available."""

    def __init__(self, ev: Evidence):
        self.names: dict[int, str] = {HTTP_SYS_PID: "System"}
        self.services: dict[int, list[str]] = {}
        if (tasks := _ok(ev.tasklist)) is not None:
            for p in tasks.processes:
                self.names.setdefault(p.pid, p.image)
                if p.services:
                    self.services.setdefault(p.pid, list(p.services))
        if (procs := _ok(ev.processes)) is not None:
            for proc in procs.processes:
                name = _image_name(proc.name, proc.path)
                if name:
                    self.names[proc.pid] = name
        if (svcs := _ok(ev.services)) is not None:
            by_pid: dict[int, list[str]] = {}
            for s in svcs.services:
                if s.pid and s.pid > 0:
                    by_pid.setdefault(s.pid, []).append(s.name)
            if by_pid:
                self.services.update(by_pid)
        if (ns := _ok(ev.netstat)) is not None:
            for sock in ns.sockets:
                if sock.pid is not None and sock.owner and sock.pid not in self.names:
                    self.names[sock.pid] = sock.owner
                if sock.pid is not None and sock.owner_services and sock.pid not in self.services:
                    self.services[sock.pid] = list(sock.owner_services)
        if (ss := _ok(ev.servicestate)) is not None:
            for q in ss.request_queues:
                for qp in q.processes:
                    if qp.image and qp.pid not in self.names:
                        self.names[qp.pid] = _image_name(None, qp.image) or qp.image

    def label(self, pid: int) -> str:
        name = self.names.get(pid)
        return f"{name} ({pid})" if name else f"PID {pid}"

    def name(self, pid: Optional[int]) -> Optional[str]:
        return None if pid is None else self.names.get(pid)


@functools.lru_cache(maxsize=512)  # pure: the same images on every host (parsers/common.py CACHE_NOTE)
def _image_name(name: Optional[str], path: Optional[str]) -> Optional[str]:
    if path:
        base = path.replace("/", "\\").rsplit("\\", 1)[-1]
        if base and base != "<?>":
            return base
    if name:
        return name if name.lower().endswith(".exe") or name in ("System", "Idle", "Registry") else name + ".exe"
    return None


def analyze_evidence(host: str, ev: Evidence, ports: list[int]) -> HostReport:
    report = HostReport(host=host)
    owners = _Owners(ev)
    problems = []
    for kind in REQUIRED:
        r = ev.get(kind)
        if r is None:
            if any(ev.usable(k) for k in KINDS[kind].stand_ins):
                continue
            problems.append(f"{FILES[kind]} missing")
        elif r.error:
            problems.append(f"{FILES[kind]}: {r.error}")
        for w in r.warnings if r is not None else ():
            report.warnings.append(f"{FILES[kind]}: {w}")
    gs = ev.getservice
    if gs is not None and gs.error:
        problems.append(f"{FILES['getservice']}: {gs.error}")
    elif gs is not None and not gs.has_graph:
        report.warnings.append(f"{FILES['getservice']}: no complete dependency lists (port80 fix cannot order the "
                               "services it stops)")
    if problems:
        report.status = HostStatus.PARTIAL
        report.error = "; ".join(problems)
    for port in ports:
        report.ports.append(_verdict(port, ev, owners))
    return report


def _verdict(port: int, ev: Evidence, owners: _Owners) -> PortVerdict:
    v = PortVerdict(port=port, holder=Holder.UNKNOWN)
    iplisten = ipl.addresses if (ipl := _ok(ev.iplisten)) is not None else []
    v.iplisten = list(iplisten)

    source, source_kind = _listener_source(ev)
    no_pid: list[str] = []  # listeners whose PID is missing or not a process ID (-5, 10^23, garbage)
    if source is not None:
        seen = set()
        for s in source.sockets:
            if s.proto.upper().startswith("TCP") and s.local_port == port and s.listening:
                key = (s.local_address, s.pid)
                if key in seen:
                    continue
                seen.add(key)
                if s.pid is None or not 0 <= s.pid <= MAX_PID:
                    no_pid.append(f"{_file(source_kind)}:{s.line}")
                    continue
                v.listeners.append(Listener(
                    address=_show_address(s.local_address, s.ipv6), port=port, pid=s.pid,
                    process=owners.name(s.pid) or s.owner, evidence=f"{_file(source_kind)}:{s.line}"))

    if (ss := _ok(ev.servicestate)) is not None:
        v.registrations = _registrations(port, ss, owners)

    if (acl := _ok(ev.urlacl)) is not None:
        for r in acl.reservations:
            u = parse_url(r.url)
            if u and u.port == port:
                prod = knowledge.identify_reservation(u.path, u.port)
                v.reservations.append(ReservationView(
                    url=r.url, users=[x.user for x in r.users], product=prod.label if prod else None,
                    evidence=f"urlacl.txt:{r.line}"))

    kernel = [l for l in v.listeners if l.pid == HTTP_SYS_PID]
    user = [l for l in v.listeners if l.pid != HTTP_SYS_PID]
    holders: list[Holder] = []
    if kernel or v.registrations:
        holders.append(Holder.HTTP_SYS)
    if user:
        holders.append(Holder.PROCESS)
    v.holders = list(holders)
    if no_pid:  # something listens, owner unknown: never a "PID None" process
        v.notes.append(f"a listener on port {port} has no readable process ID ({', '.join(no_pid[:5])}): "
                       "its owner is unknown")
    if holders:
        v.holder = Holder.BOTH if len(holders) == 2 else holders[0]
    elif no_pid:
        v.holder = Holder.UNKNOWN
    elif source is not None:
        v.holder = Holder.FREE
    else:
        v.holder = Holder.UNKNOWN
        v.notes.append("netstat output missing or unreadable: cannot tell whether anything listens")

    _notes(v, ev, kernel, user)
    _binding(v, ev, source)
    return v


def _listener_source(ev: Evidence) -> tuple[Optional[NetstatResult], str]:
    """netstat, or Get-NetTCPConnection where netstat is unavailable (a JEA role may expose only that)."""
    if ev.usable("netstat"):
        return ev.netstat, "netstat"
    if ev.usable("nettcpconnection"):
        return ev.nettcpconnection, "nettcpconnection"
    return None, "netstat"


def _binding(v: PortVerdict, ev: Evidence, source: Optional[NetstatResult]) -> None:
    """bindable, blockers, excluded ranges, certificate bindings, IIS sites and HTTP.sys precedence."""
    sites = iis.sites if (iis := _ok(ev.iis_sites)) is not None else None
    if (ss := _ok(ev.servicestate)) is not None:
        queues: dict[str, RequestQueue] = {}
        for q in ss.request_queues:
            for u in q.urls:
                queues.setdefault(u.casefold(), q)
        index = binding.IisIndex(ss, sites)
        for r in v.registrations:
            rq = queues.get(r.url.casefold())
            is_iis = r.product_key == "iis" or any(s.lower() in ("w3svc", "was") for s in r.services)
            r.iis = binding.iis_for(r.url, rq, ss, sites, is_iis, index)
            by_site = knowledge.product_for_site(r.iis.get("site")) if r.iis else None
            if by_site is not None:  # an IIS site that names its product (Exchange Back End)
                r.product, r.product_key, r.advice = by_site.label, by_site.key, by_site.advice
    for i, url in binding.shadowed_by(v.registrations).items():
        v.registrations[i].shadowed_by = url
    v.excluded_ranges = binding.excluded_ranges(
        v.port, ev.excludedportrange if ev.usable("excludedportrange") else None,
        ev.excludedportrange6 if ev.usable("excludedportrange6") else None,
        (_file("excludedportrange"), _file("excludedportrange6")))
    v.tls = binding.tls_bindings(v.port, ev.sslcert, _file("sslcert"), v.registrations, sites)
    ipl = list(zip(il.addresses, il.lines)) if (il := _ok(ev.iplisten)) is not None else []
    v.blockers = binding.blockers(v, source, ipl, _file("iplisten"), v.excluded_ranges)
    v.bindable = binding.bindable(v.blockers, source is not None, ev.usable("excludedportrange"))


def _registrations(port: int, ss: ServiceStateResult, owners: _Owners) -> list[Registration]:
    regs: list[Registration] = []
    covered: set[str] = set()
    for q in ss.request_queues:
        for url in q.urls:
            u = parse_url(url)
            if not u or u.port != port:
                continue
            covered.add(url_key(url))
            pids = list(dict.fromkeys(q.pids or [p.pid for p in q.processes]))
            svc: list[str] = []
            for pid in [*pids, q.controller_pid]:
                for s in owners.services.get(pid, []) if pid is not None else []:
                    if s not in svc:
                        svc.append(s)
            prod = knowledge.identify(u.path, port, svc, q.name, has_owner=bool(pids or q.controller_pid))
            procs = [owners.label(p) for p in pids]
            if q.controller_pid is not None:
                procs.append(f"{owners.label(q.controller_pid)} controller")
            regs.append(Registration(
                url=url, queue=q.name or "(unnamed)", pids=pids, controller_pid=q.controller_pid,
                processes=procs, services=svc, product=prod.label, product_key=prod.key, advice=prod.advice,
                critical=prod.critical or any(knowledge.is_critical(s) for s in svc),
                evidence=f"servicestate.txt:{q.line}"))
    for g in ss.url_groups:
        for url in g.urls:
            u = parse_url(url)
            if not u or u.port != port or url_key(url) in covered:
                continue
            covered.add(url_key(url))
            prod = knowledge.identify(u.path, port, (), g.queue_name, has_owner=False)
            regs.append(Registration(
                url=url, queue=g.queue_name, product=prod.label, product_key=prod.key, advice=prod.advice,
                critical=prod.critical, evidence=f"servicestate.txt:{g.line}"))
    return regs


def _notes(v: PortVerdict, ev: Evidence, kernel: list[Listener], user: list[Listener]) -> None:
    for r in v.registrations:
        if not r.pids and r.controller_pid is not None:
            v.notes.append(
                f"request queue {r.queue} has no worker process attached (idle application pool): "
                f"the port is still held, by its controller {r.processes[-1].replace(' controller', '')}")
        elif not r.pids and r.controller_pid is None and r.queue is not None:
            v.notes.append(f"{r.url}: no process attached to its request queue")
        elif r.queue is None:
            v.notes.append(f"{r.url}: registered, but the output does not link it to a request queue")
    if kernel and not v.registrations:
        if ev.usable("servicestate"):
            v.notes.append("PID 4 (HTTP.sys) listens but no registration on this port is visible in the "
                           "servicestate output (truncated, or registered by another server session)")
        else:
            v.notes.append("PID 4 (HTTP.sys) listens; servicestate output missing, so the registrant is unknown")
    if v.registrations and (ev.usable("netstat") or ev.usable("nettcpconnection")) and not kernel:
        v.notes.append("HTTP.sys has a registration on this port but netstat shows no PID 4 listener")
    if v.iplisten:
        v.notes.append("HTTP.sys listens only on its IP listen list: " + ", ".join(v.iplisten))
    if "http.sys" in v.holders and user:
        v.notes.append("HTTP.sys and a user-mode process share the port on different addresses: "
                       + ", ".join(f"{l.address} {l.process or 'PID ' + str(l.pid)}" for l in user))
    for res in v.reservations:
        if res.product and knowledge.product_by_label(res.product).reservation_only:
            v.notes.append(f"{res.url} is a reservation only; it never holds the port by itself")


def _show_address(addr: str, ipv6: bool) -> str:
    return f"[{addr}]" if ipv6 and not addr.startswith("[") else addr


def analyze_bundle(bundle: Bundle, ports: list[int]) -> HostReport:
    ev = parse_evidence(bundle.texts)
    report = analyze_evidence(bundle.host, ev, ports)
    meta = bundle.meta
    report.os_version = meta.get("os_version")
    report.collected_at = meta.get("collected_at")
    report.address = meta.get("address")
    report.evidence_dir = str(bundle.path) if bundle.path else None
    report.groups = [str(g) for g in meta.get("groups") or [] if isinstance(g, str)]
    report.warnings = bundle.problems + report.warnings
    scan_status = meta.get("status")
    if scan_status in FAILED:
        report.status = HostStatus(scan_status)
        report.error = meta.get("error") or report.error
    elif scan_status == HostStatus.PARTIAL and meta.get("error"):
        report.status = HostStatus.PARTIAL
        report.error = meta.get("error")
    return report


def failed_host(host: str, status: str, error: str, ports: list[int], address: Optional[str] = None) -> HostReport:
    """A host whose evidence could not be collected: every requested port is ``unknown``."""
    return HostReport(host=host, status=HostStatus(status), error=error, address=address,
                      ports=[PortVerdict(port=p, holder=Holder.UNKNOWN, notes=[f"not scanned: {status}"]) for p in ports])

