"""Can a new process bind ``0.0.0.0:PORT`` now, and what stands in the way? Which certificate
binding serves the port, which IIS site and app pool sit behind a registration, and which
registration actually receives a URL (HTTP.sys precedence). Pure: parsed evidence in, plain data out.

JSON names (the contract, see README "How port80 decides"):

* ``bindable``: ``True`` / ``False`` / ``None`` when the evidence needed is missing (the listener
  table — netstat, or Get-NetTCPConnection where netstat is unavailable — and the IPv4 excluded
  port ranges);
* ``blockers``: ``[{"kind": "listener"|"http.sys"|"excluded_range"|"iplisten", …, "evidence": "file:line"}]``;
* ``excluded_ranges``: ``[{"protocol", "start", "end", "administered", "ip", "evidence"}]`` covering the port;
* ``tls``: ``[{"binding", "cert_hash", "cert_store", "app_id", "product", "evidence"}]``;
* on a registration, ``iis``: ``{"site", "site_id", "app_pool"}`` and ``shadowed_by``.

Windows facts used (sources in the comments): a TCP listener on any IPv4 address of the port makes a
later bind of the wildcard ``0.0.0.0:PORT`` fail with WSAEADDRINUSE unless both sockets opt into
sharing (Microsoft, "Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE"); an IPv6 listener does not
(separate address families). A port inside an excluded range that the system reserved (Hyper-V,
WinNAT/HNS, WSL, Docker: no ``*``) cannot be bound although nothing listens ("An attempt was made to
access a socket in a way forbidden by its access permissions", WSAEACCES); an *administered* range
(``*``, added with ``netsh int ipv4 add excludedportrange``) only keeps the ports out of the dynamic
pool and can still be bound explicitly (the question in the corpus' en-so-58216537-question-hyperv-9800:
"all ports except 50000-50059" failed to bind; Microsoft KB 3039044 binds an administered exclusion). HTTP.sys routes a request to the
strong wildcard ``+`` registrations first, then explicit hosts, then the weak wildcard ``*``; within
a class the longest matching path wins (Microsoft, "UrlPrefix Strings"; AspNetCore.Docs#10164:
"a registration for + precludes any other registration on that port").
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional

from remote.analysis import knowledge
from remote.analysis.urls import UrlPrefix, parse_url
from remote.parsers.records import (
    ExcludedPortRangeResult,
    IisSite,
    NetstatResult,
    RequestQueue,
    ServiceStateResult,
    SslCertBinding,
    SslCertResult,
)

if TYPE_CHECKING:
    from remote.analysis.verdicts import PortVerdict, Registration

HTTP_SYS_PID = 4
_W3SVC_RE = re.compile(r"W3SVC(\d+)\\?\s*$", re.IGNORECASE)


# --- excluded port ranges ------------------------------------------------------------------------


def excluded_ranges(port: int, v4: Optional[ExcludedPortRangeResult], v6: Optional[ExcludedPortRangeResult],
                    files: tuple[str, str]) -> list[dict[str, Any]]:
    """TCP ranges covering ``port`` (the title's protocol, or no title: the command asked for tcp)."""
    out: list[dict[str, Any]] = []
    for ip, res, file in (("ipv4", v4, files[0]), ("ipv6", v6, files[1])):
        if res is None or res.error:
            continue
        last = max((r.table for r in res.ranges), default=0)  # several listings: the last is "now"
        for r in res.ranges:
            if r.table == last and r.protocol in (None, "tcp") and r.start <= port <= r.end:
                out.append({"protocol": "tcp", "start": r.start, "end": r.end, "administered": r.administered,
                            "ip": ip, "evidence": f"{file}:{r.line}"})
    return out


# --- certificate bindings ------------------------------------------------------------------------


def tls_bindings(port: int, sslcert: Optional[SslCertResult], file: str, registrations: list[Registration],
                 sites: Optional[list[IisSite]]) -> list[dict[str, Any]]:
    """Certificate bindings on ``port``, each with the product behind it: its application ID when the
    knowledge base knows it, else the HTTPS registration(s) on the port, else an IIS site's https
    binding on the port; ``None`` when nothing says."""
    if sslcert is None or sslcert.error:
        return []
    out = []
    https: Optional[list[tuple[UrlPrefix, Registration]]] = None
    for b in sslcert.bindings:
        if b.port != port:
            continue
        product = knowledge.product_for_app_id(b.app_id)
        if product is None:
            if https is None:
                https = _https_registrations(registrations)
            product = _tls_product_from_registrations(b, https)
        if product is None and sites:
            for s in sites:
                if any(x.protocol == "https" and x.port == port and _binding_matches(b, x.address, x.host)
                       for x in s.bindings):
                    product = knowledge.product("iis").label
                    break
        out.append({"binding": b.binding, "kind": b.kind, "cert_hash": b.cert_hash, "cert_store": b.cert_store,
                    "app_id": b.app_id, "product": product, "evidence": f"{file}:{b.line}"})
    return out


def _binding_matches(b: SslCertBinding, address: Optional[str], host: Optional[str]) -> bool:
    if b.kind == "hostnameport":
        return (host or "").casefold() == (b.hostname or "").casefold() != ""
    if b.kind == "ipport":
        return b.address in ("0.0.0.0", "::") or address in (None, "*", "") or address == b.address
    return True


def _tls_product_from_registrations(b: SslCertBinding, https: list[tuple[UrlPrefix, Registration]]) -> Optional[str]:
    products = []
    for u, r in https:
        if b.kind == "hostnameport" and not (u.host == (b.hostname or "").lower() or u.wildcard):
            continue
        if b.kind == "ipport" and b.address not in ("0.0.0.0", "::") and not (
                u.wildcard or u.host == b.address or u.bound_ip == b.address):
            continue
        if r.product and r.product not in products and r.product_key not in ("unknown",):
            products.append(r.product)
    return ", ".join(products) if products else None


def _https_registrations(registrations: list[Registration]) -> list[tuple[UrlPrefix, Registration]]:
    """The HTTPS registrations with their parsed URL, parsed once per port (not once per binding)."""
    out = []
    for r in registrations:
        u = parse_url(r.url)
        if u is not None and u.scheme == "https":
            out.append((u, r))
    return out


# --- IIS site and app pool of a registration ------------------------------------------------------


class IisIndex:
    """Lookups that ``iis_for`` makes once per registration, built once per host so that a host with
    thousands of sites stays linear: URL (casefolded) → log directory of the first URL group that has
    one and lists the URL; site ID → first site with that ID; (protocol, port) → the sites' bindings
    in evidence order (``_site_by_binding`` returns the first match, as the old scans did)."""

    def __init__(self, ss: ServiceStateResult, sites: Optional[list[IisSite]]) -> None:
        self.group_log: dict[str, str] = {}
        for g in ss.url_groups:
            if g.log_dir:
                for u in g.urls:
                    self.group_log.setdefault(u.casefold(), g.log_dir)
        self.site_by_id: dict[Any, IisSite] = {}
        self.bindings: dict[tuple[Any, Any], list[tuple[IisSite, Any]]] = {}
        for s in sites or []:
            self.site_by_id.setdefault(s.id, s)
            for b in s.bindings:
                self.bindings.setdefault((b.protocol, b.port), []).append((s, b))


def iis_for(url: str, queue: Optional[RequestQueue], ss: ServiceStateResult, sites: Optional[list[IisSite]],
            is_iis: bool, index: Optional[IisIndex] = None) -> Optional[dict[str, Any]]:
    """``{"site", "site_id", "app_pool"}`` for an IIS registration: the request queue is named after
    the app pool; the URL group's log directory ``…\\W3SVC<n>`` carries the site ID; the site's name
    (and, without a log directory, the site itself, by binding) comes from the IIS evidence. Pass the
    host's ``IisIndex`` when calling this for every registration of a host (else it is built here)."""
    if index is None:
        index = IisIndex(ss, sites)
    group_log = index.group_log.get(url.casefold())
    site_id = None
    if group_log:
        m = _W3SVC_RE.search(group_log)
        if m:
            site_id = int(m.group(1))
    if not is_iis and site_id is None:
        return None
    site = None
    if sites:
        if site_id is not None:
            site = index.site_by_id.get(site_id)
        if site is None:
            site = _site_by_binding(url, index)
            if site is not None and site_id is None:
                site_id = site.id
    return {"site": site.name if site else None, "site_id": site_id,
            "app_pool": queue.name if queue is not None and queue.name else None}


def _site_by_binding(url: str, index: IisIndex) -> Optional[IisSite]:
    """The site whose binding registers ``url``: ``*:80:`` → ``HTTP://*:80/``, ``*:80:host`` →
    ``HTTP://HOST:80/``, ``10.0.0.5:80:`` → ``HTTP://10.0.0.5:80:10.0.0.5/``."""
    u = parse_url(url)
    if u is None:
        return None
    for s, b in index.bindings.get((u.scheme, u.port), ()):
        host = (b.host or "").lower()
        addr = b.address or ""
        if host:
            if u.host == host:
                return s
        elif addr in ("*", ""):
            if u.host in ("*", "+"):
                return s
        elif u.host == addr.lower() or u.bound_ip == addr:
            return s
    return None


# --- HTTP.sys precedence ---------------------------------------------------------------------------


def _klass(u: UrlPrefix) -> int:
    return 0 if u.host == "+" else 2 if u.host == "*" else 1


def shadowed_by(registrations: list[Registration]) -> dict[int, str]:
    """index → URL of the registration that receives every request the indexed one would match.

    A registration is fully shadowed when a registration of a stronger host class (``+`` over an
    explicit host over ``*``) on the same port has a path that is a prefix of its path: HTTP.sys tries
    the classes in that order and stops at the first class with a matching prefix. (An explicit host
    only takes the requests for that host, so it never shadows a ``*`` registration fully.)

    A ``+`` registration shadows when its casefolded path is a prefix of the other's; the longest
    path wins, the first in evidence order on a tie. Linear in the registrations: the ``+`` paths are
    indexed by (port, casefolded path) and each other registration looks up only its own prefixes of
    the lengths that occur (``_shadow_lookups`` counts the look-ups, so a test can pin that)."""
    global _shadow_lookups
    parsed = [parse_url(r.url) for r in registrations]
    strong: dict[tuple[Any, str], list[int]] = {}  # (port, casefolded path) → the + registrations with it
    lengths: dict[Any, list[int]] = {}  # port → distinct casefolded path lengths of its + paths, longest first
    for j, s in enumerate(parsed):
        if s is not None and _klass(s) == 0:
            key = (s.port, s.path.casefold())
            strong.setdefault(key, []).append(j)
            lengths.setdefault(s.port, []).append(len(key[1]))
    for port, ls in lengths.items():
        lengths[port] = sorted(set(ls), reverse=True)
    out: dict[int, str] = {}
    for i, u in enumerate(parsed):
        if u is None or _klass(u) == 0 or u.port not in lengths:
            continue
        path = u.path.casefold()
        best: Optional[int] = None
        best_len = -1
        for n in lengths[u.port]:
            if n > len(path):
                continue
            _shadow_lookups += 1
            for j in strong.get((u.port, path[:n]), ()):
                # the original path's length decides (casefold may change it), then evidence order
                ln = len(parsed[j].path)  # type: ignore[union-attr]
                if ln > best_len or (ln == best_len and best is not None and j < best):
                    best, best_len = j, ln
        if best is not None:
            out[i] = registrations[best].url
    return out


_shadow_lookups = 0  # dictionary look-ups made by shadowed_by (for the no-quadratic test)


# --- can a new process bind 0.0.0.0:PORT? ----------------------------------------------------------


def blockers(v: PortVerdict, listener_source: Optional[NetstatResult], iplisten: list[tuple[str, int]],
             iplisten_file: str, ranges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every reason a bind of ``0.0.0.0:PORT`` fails now (``v`` is the port's verdict)."""
    out: list[dict[str, Any]] = []
    v4 = [l for l in v.listeners if not l.address.startswith("[") and ":" not in l.address]
    kernel = [l for l in v4 if l.pid == HTTP_SYS_PID]
    if "http.sys" in v.holders:
        ev = kernel[0].evidence if kernel else (v.registrations[0].evidence if v.registrations else "")
        out.append({"kind": "http.sys", "address": kernel[0].address if kernel else None,
                    "urls": [r.url for r in v.registrations if not r.shadowed_by] or [r.url for r in v.registrations],
                    "evidence": ev})
        if iplisten:
            out.append({"kind": "iplisten", "addresses": [a for a, _ in iplisten],
                        "evidence": f"{iplisten_file}:{iplisten[0][1]}"})
    for l in v4:
        if l.pid != HTTP_SYS_PID:
            out.append({"kind": "listener", "address": l.address, "pid": l.pid, "process": l.process,
                        "evidence": l.evidence})
    for r in ranges:
        if r["ip"] == "ipv4" and not r["administered"]:
            out.append({"kind": "excluded_range", "protocol": r["protocol"], "start": r["start"], "end": r["end"],
                        "administered": r["administered"], "evidence": r["evidence"]})
    return out


def bindable(found: list[dict[str, Any]], have_listeners: bool, have_ranges: bool) -> Optional[bool]:
    if found:
        return False
    if not (have_listeners and have_ranges):
        return None
    return True
