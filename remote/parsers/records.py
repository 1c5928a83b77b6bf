"""Typed records that the parsers return and the analysis consumes.

Every record keeps ``line``: the 1-based line number in the source text where it starts, so a
verdict can be traced back to the evidence it came from. Every parse result carries ``warnings``
(what the parser could not make sense of, with line numbers) and ``error`` (set when the text is an
error message instead of output, e.g. "The requested operation requires elevation").

Parsers never raise: they return what they could, plus warnings.
"""

from __future__ import annotations

from enum import Enum
from operator import attrgetter
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # dataclass -> its field names (fields() is slow, reports are many)


def to_dict(obj: Any) -> Any:
    """Plain JSON-ready form of a record (dataclass → dict, recursively)."""
    cls = type(obj)
    if cls in _PLAIN:
        return obj
    names = _FIELD_NAMES.get(cls)
    if names is not None:
        return {n: to_dict(getattr(obj, n)) for n in names}
    if hasattr(obj, "__dataclass_fields__"):
        if not isinstance(obj, type):  # an instance (a dataclass itself is not cached as its metaclass)
            _FIELD_NAMES[cls] = tuple(f.name for f in fields(obj))
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Enum):  # port80's str-valued enums (status, holder): their plain value
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# --- netstat -ano / -abno -------------------------------------------------------------------------


@dataclass
class Socket:
    proto: str  # "TCP" or "UDP" (TCPv6/UDPv6 are folded into TCP/UDP; see `ipv6`)
    local_address: str  # without brackets or zone id kept as printed: "0.0.0.0", "::", "fe80::1%4"
    local_port: Optional[int]
    remote_address: Optional[str]
    remote_port: Optional[int]  # None for "*:*" (UDP)
    state: Optional[str]  # normalized English: LISTENING, ESTABLISHED, ... ; None for UDP
    pid: Optional[int]
    ipv6: bool = False
    owner: Optional[str] = None  # -b: image name, e.g. "svchost.exe"
    owner_services: list[str] = field(default_factory=list)  # -b: service line(s), e.g. ["RpcSs"]
    owner_unknown: bool = False  # -b: "Can not obtain ownership information"
    line: int = 0

    @property
    def listening(self) -> bool:
        return self.state == "LISTENING"


@dataclass
class NetstatResult:
    sockets: list[Socket] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


# --- netsh http show servicestate ----------------------------------------------------------------


@dataclass
class QueueProcess:
    pid: int
    image: Optional[str] = None  # "<?>" is kept as None; full path when printed


@dataclass
class RequestQueue:
    name: Optional[str]  # None when "Request queue is unnamed." (or its localized form)
    state: Optional[str] = None
    version: Optional[str] = None
    pids: list[int] = field(default_factory=list)
    processes: list[QueueProcess] = field(default_factory=list)  # newer "Processes:" form
    controller_pid: Optional[int] = None
    active_processes: Optional[int] = None  # "Number of active processes attached"
    urls: list[str] = field(default_factory=list)  # registered URLs linked to this queue
    url_group_ids: list[str] = field(default_factory=list)
    urls_linked_by: Optional[str] = None  # "queue" (printed under it), "name", "order", or None
    line: int = 0


@dataclass
class UrlGroup:
    id: Optional[str]
    state: Optional[str] = None
    queue_name: Optional[str] = None  # None when unnamed
    urls: list[str] = field(default_factory=list)
    server_session_id: Optional[str] = None
    line: int = 0
    log_dir: Optional[str] = None  # "Log directory:" (IIS: ...\\W3SVC<site id>)


@dataclass
class ServerSession:
    id: str
    version: Optional[str] = None
    state: Optional[str] = None
    url_group_ids: list[str] = field(default_factory=list)
    line: int = 0


@dataclass
class ServiceStateResult:
    view: Optional[str] = None  # "session" | "requestq" | None when the title is missing
    request_queues: list[RequestQueue] = field(default_factory=list)
    url_groups: list[UrlGroup] = field(default_factory=list)
    server_sessions: list[ServerSession] = field(default_factory=list)
    truncated: bool = False  # "...[snip]..." markers, excerpts, cut-off text
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


# --- netsh http show urlacl ----------------------------------------------------------------------


@dataclass
class UrlAclUser:
    user: str
    listen: Optional[bool] = None
    delegate: Optional[bool] = None


@dataclass
class Reservation:
    url: str
    users: list[UrlAclUser] = field(default_factory=list)
    sddl: Optional[str] = None
    line: int = 0


@dataclass
class UrlAclResult:
    reservations: list[Reservation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


# --- netsh http show iplisten --------------------------------------------------------------------


@dataclass
class IpListenResult:
    addresses: list[str] = field(default_factory=list)  # empty list = HTTP.sys binds every address
    lines: list[int] = field(default_factory=list)  # source line of each address (same order)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


# --- tasklist /svc -------------------------------------------------------------------------------


@dataclass
class TaskProcess:
    image: str
    pid: int
    services: list[str] = field(default_factory=list)  # [] for "N/A"
    line: int = 0


@dataclass
class TasklistResult:
    processes: list[TaskProcess] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


# --- services.json / processes.json --------------------------------------------------------------


@dataclass
class Service:
    name: str
    display_name: Optional[str] = None
    state: Optional[str] = None  # "Running", "Stopped", ...
    start_mode: Optional[str] = None  # "Auto", "Manual", "Disabled", ...
    pid: Optional[int] = None  # 0 / None when not running


@dataclass
class ServicesResult:
    services: list[Service] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


@dataclass
class ProcessInfo:
    pid: int
    name: Optional[str] = None  # "svchost" (Get-Process ProcessName, no .exe)
    path: Optional[str] = None


@dataclass
class ProcessesResult:
    processes: list[ProcessInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


# --- netsh http show sslcert ---------------------------------------------------------------------


@dataclass
class SslCertBinding:
    kind: str  # "ipport" | "hostnameport" (SNI) | "ccs" (central certificate store) | "other"
    binding: str  # the value as printed: "0.0.0.0:443", "[::]:443", "www.contoso.com:443", "443"
    address: Optional[str] = None  # ipport: "0.0.0.0", "::", "10.0.0.5" (no brackets)
    hostname: Optional[str] = None  # hostnameport: "www.contoso.com"
    port: Optional[int] = None
    cert_hash: Optional[str] = None  # as printed (lower-case hex on real output)
    cert_store: Optional[str] = None  # "MY", "My", "WebHosting"; None for "(null)"
    app_id: Optional[str] = None  # "{4dc3e181-e14b-4a21-b022-59fc669b0914}" as printed
    fields: dict[str, str] = field(default_factory=dict)  # every "label : value" of the block, labels as printed
    line: int = 0


@dataclass
class SslCertResult:
    bindings: list[SslCertBinding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


# --- netsh int ipv4|ipv6 show excludedportrange protocol=tcp ---------------------------------------


@dataclass
class ExcludedRange:
    start: int
    end: int
    administered: bool = False  # "*": added with "netsh int ipv4 add excludedportrange" (or by an admin tool)
    protocol: Optional[str] = None  # "tcp" | "udp" from the table title; None when the title was not captured
    table: int = 0  # 0-based index of the table in the text (a text may hold several listings)
    line: int = 0


@dataclass
class ExcludedPortRangeResult:
    ranges: list[ExcludedRange] = field(default_factory=list)
    tables: int = 0  # listings seen (a title or a column header starts one)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


# --- IIS: Get-Website / Get-IISSite, Get-IISAppPool / IIS:\AppPools, appcmd list site|apppool|wp ------


@dataclass
class IisBinding:
    protocol: str  # "http", "https", "ftp", "net.tcp", ...
    information: str  # bindingInformation as printed: "*:80:", "192.168.1.3:443:host", ":8080:", "808:*"
    address: Optional[str] = None  # "*", "" (all unassigned), "10.0.0.5", "::1"
    port: Optional[int] = None
    host: Optional[str] = None  # host header; "" when none
    ssl_flags: Optional[str] = None  # "0", "1", "None", "Sni" ... when printed
    line: int = 0


@dataclass
class IisSite:
    name: str
    id: Optional[int] = None
    state: Optional[str] = None  # "Started", "Stopped", None when blank (FTP-only site)
    physical_path: Optional[str] = None
    bindings: list[IisBinding] = field(default_factory=list)
    line: int = 0


@dataclass
class IisSitesResult:
    sites: list[IisSite] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None


@dataclass
class IisAppPool:
    name: str
    state: Optional[str] = None  # "Started", "Stopped", "Unknown"
    clr_version: Optional[str] = None  # "v4.0", "v2.0", "" (No Managed Code)
    pipeline_mode: Optional[str] = None  # "Integrated", "Classic"
    start_mode: Optional[str] = None  # "OnDemand", "AlwaysRunning"
    applications: list[str] = field(default_factory=list)  # IIS:\AppPools view only
    worker_pids: list[int] = field(default_factory=list)  # appcmd list wp only
    line: int = 0


@dataclass
class IisAppPoolsResult:
    pools: list[IisAppPool] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None



# --- Get-Service (the service dependency graph) ----------------------------------------------------


@dataclass
class ServiceNode:
    """One ``Get-Service`` object: run state, start type and its dependency lists (service names).

    ``dependents`` is ``DependentServices``: every service that needs this one to run, indirect ones
    included, in reverse start order (EnumDependentServices); ``depends_on`` is ``ServicesDependedOn``
    (RequiredServices): the services this one needs directly, drivers included (``HTTP``), spelled as
    the registry's DependOnService spells them (``RPCSS`` for ``RpcSs``). A list is None when the
    source does not show it, or shows it cut (``{a, b, c...}``)."""

    name: str
    display_name: Optional[str] = None
    status: Optional[str] = None  # "Running", "Stopped", "Start Pending", …
    start_type: Optional[str] = None  # Win32_Service words: "Auto", "Manual", "Disabled", "Boot", "System"
    dependents: Optional[list[str]] = None
    depends_on: Optional[list[str]] = None
    name_cut: bool = False  # the table's Name column cut it ("WMIRegistration...")
    line: int = 0


@dataclass
class GetServiceResult:
    services: list[ServiceNode] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def has_graph(self) -> bool:
        """Every service shows both of its dependency lists, complete."""
        svcs = self.services  # a few hundred services on every host: one pass per field, no Python step per service
        return (bool(svcs) and None not in map(_DEPENDENTS, svcs) and None not in map(_DEPENDS_ON, svcs)
                and not any(map(_NAME_CUT, svcs)))


@dataclass
class GetServiceCheck(GetServiceResult):
    """What a fleet scan reads of port80's own Get-Service JSON (``check_getservice``): no record per service
    (``port80 fix`` and ``analyze`` parse the file), and whether every service showed both lists."""

    complete: bool = False

    @property
    def has_graph(self) -> bool:
        return self.complete


_DEPENDENTS, _DEPENDS_ON, _NAME_CUT = (attrgetter(a) for a in ("dependents", "depends_on", "name_cut"))


__all__ = [n for n in dir() if n[0].isupper()] + ["to_dict", "asdict"]
