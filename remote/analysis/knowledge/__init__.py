"""What product sits behind an HTTP.sys URL, and how to free its port.

Built from ``KNOWN_URLS.tsv`` (a copy of the corpus' KNOWN_URLS.tsv shipped beside this file,
with its sources) and ``LONG_TAIL.tsv`` (same columns: products the corpus file has no row for, each
with its public source; issue 13): each entry below names the TSV row (``tsv``: the start of its ``url_pattern``
cell) that it was written from; tests check every entry still points at a row. Pure data and pure
matching; no IO.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Iterable, Optional


@dataclass(frozen=True)
class Product:
    key: str
    label: str
    advice: str
    tsv: str  # start of the KNOWN_URLS.tsv url_pattern cell this entry comes from
    path: Optional[str] = None  # regex on the URL path (case-insensitive), anchored at the start
    ports: frozenset[int] = frozenset()  # when set, the URL's port must be one of them
    services: frozenset[str] = frozenset()  # service names (case-insensitive) that identify it
    critical: bool = False  # remediation must not touch it (the remoting session depends on it)
    reservation_only: bool = False  # a default reservation that never holds a port by itself
    sites: tuple[str, ...] = ()  # IIS site names (case-insensitive) that identify it behind an IIS registration


def _p(key: str, label: str, advice: str, tsv: str, path: Optional[str] = None, ports: Iterable[int] = (),
       services: Iterable[str] = (), critical: bool = False, reservation_only: bool = False,
       sites: Iterable[str] = ()) -> Product:
    return Product(key, label, advice, tsv, path, frozenset(ports), frozenset(s.lower() for s in services),
                   critical, reservation_only, tuple(x.lower() for x in sites))


PRODUCTS: tuple[Product, ...] = (
    _p("branchcache", "BranchCache (PeerDistSvc)",
       "netsh branchcache set service mode=disabled (or Stop-Service PeerDistSvc; Set-Service PeerDistSvc -StartupType Disabled)",
       "http://+:80/116B50EB", path=r"/116B50EB-ECE2-41AC-8429-9F9E963361B7/", services=("PeerDistSvc",)),
    _p("branchcache-hosted", "BranchCache hosted cache (PeerDistSvc)",
       "netsh branchcache set service mode=disabled",
       "http://+:80/0131501b", path=r"/(0131501B-D67F-491B-9A40-C4BF27BCB4D4|C574AC30-5794-4AEE-B1BB-6651C5315029)/"),
    _p("winrm-compat", "WinRM compatibility listener",
       'winrm set winrm/config/service @{EnableCompatibilityHttpListener="false"} '
       "(EnableCompatibilityHttpsListener for 443); do not stop WinRM itself, remoting depends on it",
       "http://+:80/wsman/", path=r"/wsman/?$", ports=(80, 443), services=("WinRM",), critical=True),
    _p("winrm", "WinRM (WS-Management)",
       'move the listener: winrm set winrm/config/Listener?Address=*+Transport=HTTP @{Port="<port>"}',
       "http://+:5985/wsman/", path=r"/wsman/?$", services=("WinRM",), critical=True),
    _p("ssrs", "SQL Server Reporting Services",
       "change the URLs in Reporting Services Configuration Manager, or stop/disable the Reporting Services service",
       "http://+:80/ReportServer", path=r"/(ReportServer|Reports)(_[^/]+)?(/|$)",
       services=("SQLServerReportingServices", "ReportServer", "PowerBIReportServer")),
    _p("webdeploy", "Web Deploy remote agent (MsDepSvc)",
       "Stop-Service MsDepSvc; Set-Service MsDepSvc -StartupType Disabled (or reinstall with LISTENURL=http://+:8172/MsDeployAgentService/)",
       "http://+:80/MSDEPLOYAGENTSERVICE/", path=r"/MSDEPLOYAGENTSERVICE/?", services=("MsDepSvc",)),
    _p("iis", "IIS (W3SVC/WAS)",
       "iisreset /stop, or change the site bindings; to keep IIS off: Set-Service W3SVC,WAS -StartupType Disabled",
       "HTTP://*:80/ , HTTP://+:80/", services=("W3SVC", "WAS")),
    _p("wmsvc", "IIS Web Management Service (WMSvc)", "Stop-Service WMSvc; Set-Service WMSvc -StartupType Disabled",
       "https://*:8172/", ports=(8172,), services=("WMSvc",)),
    _p("wcf-temporary", "WCF Temporary_Listen_Addresses reservation",
       "reservation only, holds no port; remove with netsh http delete urlacl url=http://+:80/Temporary_Listen_Addresses/",
       "http://+:80/Temporary_Listen_Addresses/", path=r"/Temporary_Listen_Addresses/", reservation_only=True),
    _p("acme", "win-acme (Let's Encrypt) validation listener", "transient: only present during certificate validation",
       "http://+:80/.well-known/acme-challenge/", path=r"/\.well-known/acme-challenge/"),
    _p("wsd", "Web Services on Devices (WSD)", "WSD discovery/printing; stop the owning service (Spooler, FDResPub) if not needed",
       "http://*:5357/", ports=(5357, 5358)),
    _p("upnp", "UPnP / SSDP (upnphost)", "Stop-Service upnphost; Set-Service upnphost -StartupType Disabled",
       "http://*:2869/", ports=(2869,), services=("upnphost",)),
    _p("wmp", "Windows Media Player Network Sharing (WMPNetworkSvc)", "Stop-Service WMPNetworkSvc; Set-Service WMPNetworkSvc -StartupType Disabled",  # noqa: E501
       "http://+:10243/WMPNSSv4/", path=r"/(WMPNSSv4|MDEServer|apps)/", ports=(10243, 10245, 10246, 10247), services=("WMPNetworkSvc",)),
    _p("rdp-http", "Remote Desktop Services (RDP over HTTP)", "part of TermService; do not stop unless RDP is unused",
       "http://+:3387/rdp/", path=r"/rdp/", ports=(3387, 3392), services=("TermService",), critical=True),
    _p("sstp", "Secure Socket Tunneling Protocol (SstpSvc)", "Remote Access role; Stop-Service SstpSvc if the VPN is unused",
       "https://+:443/sra_", path=r"/sra_\{", services=("SstpSvc",)),
    _p("kdcproxy", "Kerberos KDC Proxy (KPSSVC)", "move KdcProxy to another port (HttpsUrlGroup) or stop KPSSVC",
       "https://+:443/KdcProxy", path=r"/KdcProxy/?", services=("KPSSVC",)),
    _p("rdgateway", "Remote Desktop Gateway", "RD Gateway role; move it or remove the role",
       "https://+:443/remoteDesktopGateway/", path=r"/remoteDesktopGateway/"),
    _p("adfs", "AD FS (adfssrv)", "AD FS serves on HTTP.sys; move with Set-AdfsProperties or stop adfssrv",
       "https://+:443/adfs/", path=r"/adfs/", services=("adfssrv",)),
    _p("hyperv-replica", "Hyper-V Replica listener", "Set-VMReplicationServer to change the listener port",
       "HTTPS://<host>:<port>/FRVROOT_", path=r"/FRVROOT_"),
    # issue 13's long tail (Exchange: KNOWN_URLS.tsv; the others: LONG_TAIL.tsv)
    _p("exchange", "Microsoft Exchange Server (IIS)",
       "Exchange's IIS sites (Default Web Site 80/443, Exchange Back End 81/444): do not stop IIS on an Exchange "
       "server; move the other product instead",
       "IIS site 'Exchange Back End'", ports=(81, 444), sites=("Exchange Back End",)),
    _p("wac", "Windows Admin Center",
       "Windows Admin Center's gateway (HTTP.sys, not IIS): reinstall/modify it with another port, or uninstall it",
       "https://+:6516/", ports=(6516,)),
    _p("wsus", "Windows Server Update Services (WSUS, IIS)",
       "WSUS web services in IIS (8530 in Microsoft's examples): change the WSUS site's bindings or remove the role",
       "http://<server>:8530/", ports=(8530,)),
    _p("citrix-fma", "Citrix Delivery Controller (Broker / High Availability services)",
       "Citrix's FMA services use port 80 by default: change their port (Citrix CTX250134), then StoreFront's",
       "WCF endpoints of the Citrix Broker Service"),
    _p("iphttps", "DirectAccess IP-HTTPS (iphlpsvc)", "move: netsh int http set int url=https://<server>:<port>/IPHTTPS; restart iphlpsvc",
       "https://<DirectAccess server name>", path=r"/IPHTTPS/?", services=("iphlpsvc",)),
)

_BY_KEY = {p.key: p for p in PRODUCTS}

GENERIC = Product(
    "self-hosted", "self-hosted HTTP.sys app",
    "stop or reconfigure the process/service that owns the request queue (see PIDs and services)",
    "",
)
UNKNOWN_OWNER = Product(
    "unknown", "unknown HTTP.sys registrant",
    "no process is attached to the request queue; look for the registrant with netsh http show servicestate verbose=yes",
    "",
)

# Services that remediation must never stop: the remoting session, HTTP.sys itself, core Windows.
CRITICAL_SERVICES = frozenset(s.lower() for s in (
    "WinRM", "HTTP", "Wecsvc", "RpcSs", "RpcEptMapper", "DcomLaunch", "LanmanServer", "LanmanWorkstation",
    "TermService", "EventLog", "Dnscache", "Netlogon", "NTDS", "SamSs", "lsm", "Winmgmt", "BFE", "mpssvc",
))


def product(key: str) -> Product:
    return _BY_KEY.get(key, GENERIC)


def identify(path: str, port: int, services: Iterable[str] = (), queue_name: Optional[str] = None,
             has_owner: bool = True) -> Product:
    """Product behind a registration: URL path shape first, then the owning services, then the
    queue shape (a named queue is an IIS application pool), then the port."""
    svc = {s.lower() for s in services}
    by_path = identify_reservation(path, port)
    if by_path is not None:
        return by_path
    for p in PRODUCTS:
        if p.services and svc & p.services and not p.reservation_only and (not p.ports or port in p.ports):
            if p.key in ("winrm-compat",) and port not in (80, 443):
                continue
            if p.critical and p.path:
                # WinRM is known by its URL (/wsman/), not by its process: another URL in WinRM's
                # svchost or queue (a hostile or unknown registrant) must not get "do not touch" advice
                continue
            return p
    if queue_name:
        return _BY_KEY["iis"]
    for p in PRODUCTS:
        if p.ports and port in p.ports and not p.path:
            return p
    return GENERIC if has_owner else UNKNOWN_OWNER


@functools.lru_cache(maxsize=256)  # pure (PRODUCTS is constant): the same paths on every host
def identify_reservation(path: str, port: int) -> Optional[Product]:
    for p in PRODUCTS:
        if p.path and re.match(p.path, path or "/", re.IGNORECASE) and (not p.ports or port in p.ports):
            return p
    return None


# Certificate-binding application IDs (``netsh http show sslcert``) → product. Only IDs seen in a real
# capture next to the product that made them; the IIS and SSRS IDs are not in the corpus and are NOT
# listed (a binding with an unknown ID takes its product from the HTTPS registrations on its port).
APP_IDS: dict[str, tuple[str, str]] = {
    "{214124cd-d05b-4309-9af9-9caa44b2b74a}": (
        "IIS Express", "corpus raw/sslcert/en-cac-iisexpress-44307-first-line-dedented.txt (IIS Express port 44307)"),
    "{28f7fb0f-eab3-4960-9693-9289ca768dea}": (
        "Azure Local SDN host agent (NcHostAgent)",
        "corpus raw/sslcert/en-azurelocal-sdn-nchostagent-3line-excerpt.txt with "
        "raw/servicestate/en-azurelocal-sdn-nchostagent-requestqueue-excerpt.txt"),
}


def product_for_app_id(app_id: Optional[str]) -> Optional[str]:
    if not app_id:
        return None
    hit = APP_IDS.get(app_id.strip().lower())
    return hit[0] if hit else None


def is_critical(service: str) -> bool:
    return service.lower() in CRITICAL_SERVICES


def product_for_site(site: Optional[str]) -> Optional[Product]:
    """A product recognised by the IIS site behind a registration (Exchange's "Exchange Back End")."""
    if not site:
        return None
    low = site.lower()
    return next((p for p in PRODUCTS if low in p.sites), None)


def product_by_label(label: str) -> Product:
    for p in PRODUCTS:
        if p.label == label:
            return p
    return GENERIC
