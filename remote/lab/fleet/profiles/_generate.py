"""Dev tool: (re)writes the demo fleet bundles in this folder:  python remote/lab/fleet/profiles/_generate.py

Not imported by anything. Every text copies the line shapes of a real sample in
the corpus's raw captures (those the tests use are copied in tests/fixtures/; see README.md in this
folder for which file comes from which sample);
only values change, and PIDs agree across the files of a bundle. Deterministic (seeded).
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from remote.lab.engine import commands as cmd

HERE = Path(__file__).resolve().parent
CRLF = "\r\n"
SYS32 = "C:\\Windows\\system32\\"
SVCHOST = SYS32 + "svchost.exe"


def crlf(lines: list[str]) -> str:
    return "".join(ln + CRLF for ln in lines)


def service_sid(name: str) -> str:
    h = hashlib.sha1(name.upper().encode("utf-16-le")).digest()
    return "S-1-5-80-" + "-".join(str(x) for x in struct.unpack("<5I", h))


# --- services ---------------------------------------------------------------------------------------------
# (Name, DisplayName, StartMode, running, host) ; host: svchost group, or "exe:<image>", or "lsass"

BASE_SERVICES = [
    ("AeLookupSvc", None, None, None, None),  # placeholder removed below (2012 R2 only)
    ("ALG", "Application Layer Gateway Service", "Manual", False, "exe:alg.exe"),
    ("AppIDSvc", "Application Identity", "Manual", False, "LocalServiceNetworkRestricted"),
    ("Appinfo", "Application Information", "Manual", True, "netsvcs"),
    ("AppMgmt", "Application Management", "Manual", False, "netsvcs"),
    ("AppReadiness", "App Readiness", "Manual", False, "AppReadiness"),
    ("AppXSvc", "AppX Deployment Service (AppXSVC)", "Manual", False, "wsappx"),
    ("AudioEndpointBuilder", "Windows Audio Endpoint Builder", "Manual", False, "LocalSystemNetworkRestricted"),
    ("Audiosrv", "Windows Audio", "Manual", False, "LocalServiceNetworkRestricted"),
    ("BFE", "Base Filtering Engine", "Auto", True, "LocalServiceNoNetworkFirewall"),
    ("BITS", "Background Intelligent Transfer Service", "Manual", False, "netsvcs"),
    ("BrokerInfrastructure", "Background Tasks Infrastructure Service", "Auto", True, "DcomLaunch"),
    ("CDPSvc", "Connected Devices Platform Service", "Auto", True, "LocalService"),
    ("CertPropSvc", "Certificate Propagation", "Manual", True, "netsvcs"),
    ("COMSysApp", "COM+ System Application", "Manual", False, "exe:dllhost.exe"),
    ("CoreMessagingRegistrar", "CoreMessaging", "Auto", True, "LocalServiceNoNetwork"),
    ("CryptSvc", "Cryptographic Services", "Auto", True, "NetworkService"),
    ("DcomLaunch", "DCOM Server Process Launcher", "Auto", True, "DcomLaunch"),
    ("defragsvc", "Optimize drives", "Manual", False, "defragsvc"),
    ("DeviceInstall", "Device Install Service", "Manual", False, "DcomLaunch"),
    ("Dhcp", "DHCP Client", "Auto", True, "LocalServiceNetworkRestricted"),
    ("DiagTrack", "Connected User Experiences and Telemetry", "Auto", True, "utcsvc"),
    ("Dnscache", "DNS Client", "Auto", True, "NetworkService"),
    ("dot3svc", "Wired AutoConfig", "Manual", False, "LocalSystemNetworkRestricted"),
    ("DPS", "Diagnostic Policy Service", "Auto", True, "LocalServiceNoNetwork"),
    ("EFS", "Encrypting File System (EFS)", "Manual", False, "lsass"),
    ("EventLog", "Windows Event Log", "Auto", True, "LocalServiceNetworkRestricted"),
    ("EventSystem", "COM+ Event System", "Auto", True, "LocalService"),
    ("fdPHost", "Function Discovery Provider Host", "Manual", False, "LocalService"),
    ("FDResPub", "Function Discovery Resource Publication", "Manual", False, "LocalServiceAndNoImpersonation"),
    ("FontCache", "Windows Font Cache Service", "Auto", True, "LocalService"),
    ("gpsvc", "Group Policy Client", "Auto", True, "netsvcs"),
    ("hidserv", "Human Interface Device Service", "Manual", False, "LocalSystemNetworkRestricted"),
    ("IKEEXT", "IKE and AuthIP IPsec Keying Modules", "Auto", True, "netsvcs"),
    ("iphlpsvc", "IP Helper", "Auto", True, "NetSvcs"),
    ("KeyIso", "CNG Key Isolation", "Manual", True, "lsass"),
    ("KPSSVC", "KDC Proxy Server service (KPS)", "Manual", False, "KpsSvcGroup"),
    ("KtmRm", "KtmRm for Distributed Transaction Coordinator", "Manual", False, "NetworkServiceAndNoImpersonation"),
    ("LanmanServer", "Server", "Auto", True, "netsvcs"),
    ("LanmanWorkstation", "Workstation", "Auto", True, "NetworkService"),
    ("lmhosts", "TCP/IP NetBIOS Helper", "Manual", True, "LocalServiceNetworkRestricted"),
    ("LSM", "Local Session Manager", "Auto", True, "DcomLaunch"),
    ("mpssvc", "Windows Defender Firewall", "Auto", True, "LocalServiceNoNetworkFirewall"),
    ("MSDTC", "Distributed Transaction Coordinator", "Auto", True, "exe:msdtc.exe"),
    ("MSiSCSI", "Microsoft iSCSI Initiator Service", "Manual", False, "netsvcs"),
    ("msiserver", "Windows Installer", "Manual", False, "exe:msiexec.exe"),
    ("NcbService", "Network Connection Broker", "Manual", True, "LocalSystemNetworkRestricted"),
    ("Netlogon", "Netlogon", "Auto", True, "lsass"),
    ("Netman", "Network Connections", "Manual", False, "LocalSystemNetworkRestricted"),
    ("netprofm", "Network List Service", "Manual", True, "LocalService"),
    ("NetTcpPortSharing", "Net.Tcp Port Sharing Service", "Disabled", False, "exe:SMSvcHost.exe"),
    ("NlaSvc", "Network Location Awareness", "Auto", True, "NetworkService"),
    ("nsi", "Network Store Interface Service", "Auto", True, "LocalService"),
    ("PeerDistSvc", "BranchCache", "Manual", False, "PeerDist"),
    ("PerfHost", "Performance Counter DLL Host", "Manual", False, "exe:perfhost.exe"),
    ("pla", "Performance Logs & Alerts", "Manual", False, "LocalServiceNoNetwork"),
    ("PlugPlay", "Plug and Play", "Manual", True, "DcomLaunch"),
    ("PolicyAgent", "IPsec Policy Agent", "Manual", True, "NetworkServiceNetworkRestricted"),
    ("Power", "Power", "Auto", True, "DcomLaunch"),
    ("PrintNotify", "Printer Extensions and Notifications", "Manual", False, "print"),
    ("ProfSvc", "User Profile Service", "Auto", True, "netsvcs"),
    ("RasAuto", "Remote Access Auto Connection Manager", "Manual", False, "netsvcs"),
    ("RasMan", "Remote Access Connection Manager", "Manual", False, "netsvcs"),
    ("RemoteAccess", "Routing and Remote Access", "Disabled", False, "netsvcs"),
    ("RemoteRegistry", "Remote Registry", "Auto", False, "localService"),
    ("RpcEptMapper", "RPC Endpoint Mapper", "Auto", True, "RPCSS"),
    ("RpcSs", "Remote Procedure Call (RPC)", "Auto", True, "RPCSS"),
    ("RSoPProv", "Resultant Set of Policy Provider", "Manual", False, "netsvcs"),
    ("sacsvr", "Special Administration Console Helper", "Manual", False, "netsvcs"),
    ("SamSs", "Security Accounts Manager", "Auto", True, "lsass"),
    ("SCardSvr", "Smart Card", "Manual", False, "LocalServiceAndNoImpersonation"),
    ("Schedule", "Task Scheduler", "Auto", True, "netsvcs"),
    ("seclogon", "Secondary Logon", "Manual", False, "netsvcs"),
    ("SENS", "System Event Notification Service", "Auto", True, "netsvcs"),
    ("SessionEnv", "Remote Desktop Configuration", "Manual", True, "netsvcs"),
    ("ShellHWDetection", "Shell Hardware Detection", "Auto", True, "netsvcs"),
    ("SNMPTRAP", "SNMP Trap", "Manual", False, "exe:snmptrap.exe"),
    ("Spooler", "Print Spooler", "Auto", True, "exe:spoolsv.exe"),
    ("sppsvc", "Software Protection", "Auto", False, "exe:sppsvc.exe"),
    ("SSDPSRV", "SSDP Discovery", "Disabled", False, "LocalServiceAndNoImpersonation"),
    ("SstpSvc", "Secure Socket Tunneling Protocol Service", "Manual", False, "LocalService"),
    ("StateRepository", "State Repository Service", "Manual", True, "appmodel"),
    ("swprv", "Microsoft Software Shadow Copy Provider", "Manual", False, "swprv"),
    ("SystemEventsBroker", "System Events Broker", "Auto", True, "DcomLaunch"),
    ("TapiSrv", "Telephony", "Manual", False, "NetworkService"),
    ("TermService", "Remote Desktop Services", "Manual", True, "termsvcs"),
    ("Themes", "Themes", "Auto", True, "netsvcs"),
    ("TimeBrokerSvc", "Time Broker", "Manual", True, "LocalServiceNetworkRestricted"),
    ("TrkWks", "Distributed Link Tracking Client", "Auto", True, "LocalSystemNetworkRestricted"),
    ("TrustedInstaller", "Windows Modules Installer", "Manual", False, "exe:TrustedInstaller.exe"),
    ("UALSVC", "User Access Logging Service", "Auto", True, "netsvcs"),
    ("UmRdpService", "Remote Desktop Services UserMode Port Redirector", "Manual", True,
     "LocalSystemNetworkRestricted"),
    ("upnphost", "UPnP Device Host", "Disabled", False, "LocalServiceAndNoImpersonation"),
    ("UserManager", "User Manager", "Auto", True, "netsvcs"),
    ("UsoSvc", "Update Orchestrator Service", "Manual", True, "netsvcs"),
    ("VaultSvc", "Credential Manager", "Manual", True, "lsass"),
    ("VGAuthService", "VMware Alias Manager and Ticket Service", "Auto", True, "exe:VGAuthService.exe"),
    ("vm3dservice", "VMware SVGA Helper Service", "Auto", True, "exe:vm3dservice.exe"),
    ("VMTools", "VMware Tools", "Auto", True, "exe:vmtoolsd.exe"),
    ("VSS", "Volume Shadow Copy", "Manual", False, "exe:vssvc.exe"),
    ("W32Time", "Windows Time", "Manual", True, "LocalService"),
    ("WdiServiceHost", "Diagnostic Service Host", "Manual", False, "LocalService"),
    ("WdNisSvc", "Windows Defender Antivirus Network Inspection Service", "Manual", False, "exe:NisSrv.exe"),
    ("Wecsvc", "Windows Event Collector", "Manual", False, "NetworkService"),
    ("WerSvc", "Windows Error Reporting Service", "Manual", False, "WerSvcGroup"),
    ("WinDefend", "Windows Defender Antivirus Service", "Auto", True, "exe:MsMpEng.exe"),
    ("WinHttpAutoProxySvc", "WinHTTP Web Proxy Auto-Discovery Service", "Manual", True,
     "LocalServiceNetworkRestricted"),
    ("Winmgmt", "Windows Management Instrumentation", "Auto", True, "netsvcs"),
    ("WinRM", "Windows Remote Management (WS-Management)", "Auto", True, "NetworkService"),
    ("wmiApSrv", "WMI Performance Adapter", "Manual", False, "exe:WmiApSrv.exe"),
    ("WpnService", "Windows Push Notifications System Service", "Auto", True, "netsvcs"),
    ("WSearch", "Windows Search", "Disabled", False, "exe:SearchIndexer.exe"),
    ("wuauserv", "Windows Update", "Manual", False, "netsvcs"),
][1:]

CLIENT_SERVICES = [
    ("CDPUserSvc_5a1e2", "Connected Devices Platform User Service_5a1e2", "Auto", True, "UnistackSvcGroup"),
    ("DoSvc", "Delivery Optimization", "Auto", True, "NetworkService"),
    ("LicenseManager", "Windows License Manager Service", "Manual", True, "LocalService"),
    ("OneSyncSvc_5a1e2", "Sync Host_5a1e2", "Auto", True, "UnistackSvcGroup"),
    ("SysMain", "SysMain", "Auto", True, "LocalSystemNetworkRestricted"),
    ("WlanSvc", "WLAN AutoConfig", "Auto", True, "LocalSystemNetworkRestricted"),
    ("WbioSrvc", "Windows Biometric Service", "Manual", False, "WbioSvcGroup"),
]
SERVER_ONLY = {"UALSVC", "sacsvr", "KPSSVC", "RSoPProv", "SNMPTRAP", "NetTcpPortSharing", "RemoteAccess"}
SHARED_GROUPS_SPLIT = {"DcomLaunch", "RPCSS", "iissvcs", "lsass"}  # still one svchost each on split hosts

IMAGE_PATHS = {
    "alg.exe": SYS32 + "alg.exe", "dllhost.exe": SYS32 + "dllhost.exe", "msdtc.exe": SYS32 + "msdtc.exe",
    "spoolsv.exe": "C:\\Windows\\System32\\spoolsv.exe", "MsMpEng.exe": None,
    "VGAuthService.exe": "C:\\Program Files\\VMware\\VMware Tools\\VMware VGAuth\\VGAuthService.exe",
    "vm3dservice.exe": SYS32 + "vm3dservice.exe",
    "vmtoolsd.exe": "C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe",
    "svchost.exe": SVCHOST, "lsass.exe": SYS32 + "lsass.exe", "winlogon.exe": SYS32 + "winlogon.exe",
    "fontdrvhost.exe": SYS32 + "fontdrvhost.exe", "dwm.exe": SYS32 + "dwm.exe",
    "WmiPrvSE.exe": SYS32 + "wbem\\wmiprvse.exe", "conhost.exe": SYS32 + "conhost.exe",
    "wsmprovhost.exe": SYS32 + "wsmprovhost.exe", "LogonUI.exe": SYS32 + "LogonUI.exe",
    "w3wp.exe": SYS32 + "inetsrv\\w3wp.exe", "httpd.exe": "C:\\Apache24\\bin\\httpd.exe",
    "nginx.exe": "C:\\nginx\\nginx.exe",
    "RSHostingService.exe": "C:\\Program Files\\Microsoft SQL Server Reporting Services\\SSRS\\RSHostingService\\"
                            "RSHostingService.exe",
    "Contoso.Orders.Api.exe": "C:\\Program Files\\Contoso\\Orders\\Contoso.Orders.Api.exe",
    "MsDepSvc.exe": "C:\\Program Files\\IIS\\Microsoft Web Deploy V3\\MsDepSvc.exe",
    "explorer.exe": "C:\\Windows\\explorer.exe", "sihost.exe": SYS32 + "sihost.exe",
    "taskhostw.exe": SYS32 + "taskhostw.exe", "RuntimeBroker.exe": SYS32 + "RuntimeBroker.exe",
    "ctfmon.exe": SYS32 + "ctfmon.exe", "SearchApp.exe":
        "C:\\Windows\\SystemApps\\Microsoft.Windows.Search_cw5n1h2txyewy\\SearchApp.exe",
    "sqlwriter.exe": "C:\\Program Files\\Microsoft SQL Server\\90\\Shared\\sqlwriter.exe",
}
PROTECTED = {"System Idle Process", "System", "Registry", "smss.exe", "csrss.exe", "wininit.exe", "services.exe",
             "MsMpEng.exe", "Memory Compression", "NisSrv.exe"}


@dataclass
class Proc:
    pid: int
    image: str
    services: list[str] = field(default_factory=list)
    path: Optional[str] = None


@dataclass
class QueueSpec:
    name: Optional[str]
    version: str
    pids: list[int]
    urls: list[str]
    controller: Optional[int] = None
    verbosity: str = "Basic"
    group_timeouts: Optional[list[int]] = None  # None: "Timeout values inherited"
    max_connections: str = "inherited"
    logging: Optional[str] = None
    auth: Optional[list[str]] = None  # None: no "Authentication Configuration"; []: empty list
    session_timeouts: tuple = (120, 120, 120, 120, 120, 150)
    group_id: str = ""
    session_id: str = ""
    images: Optional[dict[int, str]] = None  # "Processes:" shape (Server 2022)


@dataclass
class HostSpec:
    folder: str
    hostname: str
    os_version: str
    os_caption: str
    ip: str
    seed: int
    client: bool = False
    split: bool = True
    extra_services: list = field(default_factory=list)
    running_overrides: dict = field(default_factory=dict)
    domain: str = "CONTOSO"


class Builder:
    def __init__(self, spec: HostSpec):
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.next_pid = 88
        self.procs: list[Proc] = []
        self.services: list[dict] = []
        self.by_group: dict[str, Proc] = {}

    def pid(self) -> int:
        self.next_pid += 4 * self.rng.randint(1, 40)
        return self.next_pid

    def proc(self, image: str, services: Optional[list[str]] = None, pid: Optional[int] = None) -> Proc:
        p = Proc(pid if pid is not None else self.pid(), image, list(services or []),
                 None if image in PROTECTED else IMAGE_PATHS.get(image, SYS32 + image))
        self.procs.append(p)
        return p

    def build_processes(self) -> None:
        s = self.spec
        self.procs.append(Proc(0, "System Idle Process"))
        self.procs.append(Proc(4, "System"))
        if s.os_version.split(".")[2] != "14393":
            self.procs.append(Proc(self.pid(), "Registry"))
        for img in ("smss.exe", "csrss.exe", "wininit.exe", "csrss.exe", "winlogon.exe", "services.exe"):
            self.proc(img)
        lsass = self.proc("lsass.exe")
        self.by_group["lsass"] = lsass
        table = [x for x in BASE_SERVICES if not (s.client and x[0] in SERVER_ONLY)]
        if s.client:
            table += CLIENT_SERVICES
        table = [x for x in table if x[0] not in {e[0] for e in s.extra_services}] + s.extra_services
        table.sort(key=lambda x: x[0].lower())
        self.proc("fontdrvhost.exe")
        # services start in "boot" order: DcomLaunch and RPCSS groups first, then alphabetical
        order = sorted(table, key=lambda x: (x[4] not in ("DcomLaunch",), x[4] not in ("RPCSS",), x[0].lower()))
        started = 0
        for name, disp, mode, running, host in order:  # noqa: B007,B007
            running = s.running_overrides.get(name, running)
            if running:
                p = self._host_for(name, host)
                p.services.append(name)
                started += 1
                if started == 9 and s.os_version.split(".")[2] != "14393":
                    self.proc("Memory Compression")
        for name, disp, mode, running, host in table:  # noqa: B007
            running = s.running_overrides.get(name, running)
            pid = next((p.pid for p in self.procs if name in p.services), 0)
            self.services.append({"Name": name, "DisplayName": disp, "State": "Running" if running else "Stopped",
                                  "StartMode": mode, "ProcessId": pid})

    def _host_for(self, name: str, host: str) -> Proc:
        if host.startswith("exe:"):
            return self.proc(host[4:])
        if host == "lsass":
            return self.by_group["lsass"]
        key = host.lower()
        if self.spec.split and host not in SHARED_GROUPS_SPLIT:
            return self.proc("svchost.exe")
        if key not in self.by_group:
            self.by_group[key] = self.proc("svchost.exe")
        return self.by_group[key]

    def tail_processes(self, interactive: bool = False) -> None:
        self.proc("WmiPrvSE.exe")
        self.proc("dllhost.exe")
        if interactive:
            for img in ("sihost.exe", "taskhostw.exe", "ctfmon.exe", "explorer.exe", "SearchApp.exe",
                        "RuntimeBroker.exe", "RuntimeBroker.exe", "dwm.exe", "fontdrvhost.exe"):
                self.proc(img)
        else:
            self.proc("LogonUI.exe")
            self.proc("dwm.exe")
        self.proc("WmiPrvSE.exe")
        self.proc("wsmprovhost.exe")  # the remoting session that collected this bundle
        self.proc("conhost.exe")

    def pid_of(self, service: str) -> int:
        return next(p.pid for p in self.procs if service in p.services)

    def pid_of_image(self, image: str) -> int:
        return next(p.pid for p in self.procs if p.image == image)


# --- text renderers (shapes from the corpus samples) ----------------------------------------------------------

def netstat_text(rows: list[tuple]) -> str:
    """raw/netstat/thm-winclr-abon-trailing-spaces.txt header; rows as gh-runner-images/htb-overwatch."""
    objs = [cmd.NetRow(p, l, f, s, pid, cmd.netstat_row(p, l, f, s, pid)) for p, l, f, s, pid in rows]
    objs.sort(key=cmd.netstat_sort_key)
    return crlf(["", "Active Connections", "", cmd.NETSTAT_HEADER] + [r.line for r in objs])


GROUP_TIMEOUT_LABELS = ["Entity body timeout (secs)", "Drain entity body timeout (secs)",
                        "Request queue timeout (secs)", "Idle connection timeout (secs)",
                        "Header wait timeout (secs)", "Minimum send rate (bytes/sec)"]


def _group_lines(q: QueueSpec, ind: int) -> list[str]:
    """A URL group (raw/servicestate/htb-flight-iis-winrm.txt, blog-pid4-116B50EB.txt)."""
    sp = " " * ind
    out = [f"{sp}URL group ID: {q.group_id}", f"{sp}    State: Active",
           f"{sp}    Request queue name: {q.name or 'Request queue is unnamed.'}", f"{sp}    Properties:",
           f"{sp}        Max bandwidth: inherited", f"{sp}        Max connections: {q.max_connections}",
           f"{sp}        Timeouts:"]
    if q.group_timeouts is None:
        out.append(f"{sp}            Timeout values inherited")
    else:
        out += [f"{sp}            {lab}: {v}" for lab, v in zip(GROUP_TIMEOUT_LABELS, q.group_timeouts)]
    if q.logging:
        out += [f"{sp}        Logging information:", f"{sp}            Log directory: {q.logging}",
                f"{sp}            Log format: 0"]
    if q.auth is not None:
        out += [f"{sp}        Authentication Configuration:", f"{sp}            Authentication schemes enabled:"]
        out += [f"{sp}                {a}" for a in q.auth]
    out += [f"{sp}        Number of registered URLs: {len(q.urls)}", f"{sp}        Registered URLs:"]
    out += [f"{sp}            {u}" for u in q.urls]
    return out


def _session_lines(q: QueueSpec, ind: int) -> list[str]:
    sp = " " * ind
    return [f"{sp}Server session ID: {q.session_id}", f"{sp}    Version: {q.version}", f"{sp}    State: Active",
            f"{sp}    Properties:", f"{sp}        Max bandwidth: 4294967295", f"{sp}        Timeouts:"] + \
        [f"{sp}            {lab}: {v}" for lab, v in zip(GROUP_TIMEOUT_LABELS, q.session_timeouts)]


def _queue_head(q: QueueSpec, ind: int) -> list[str]:
    sp = " " * ind
    out = [f"{sp}Request queue name: {q.name or 'Request queue is unnamed.'}", f"{sp}    Version: {q.version}",
           f"{sp}    State: Active", f"{sp}    Request queue 503 verbosity level: {q.verbosity}",
           f"{sp}    Max requests: 1000", f"{sp}    Number of active processes attached: {len(q.pids)}"]
    if q.controller is not None:
        out.append(f"{sp}    Controller process ID: {q.controller}")
    if q.images is not None:  # raw/servicestate/htb-overwatch-a-processes-image.txt
        out.append(f"{sp}    Processes:")
        out += [f"{sp}        ID: {p}, image: {q.images.get(p, '<?>')}" for p in q.pids]
        out.append(f"{sp}    Registered URLs:")
        out += [f"{sp}        {u}" for u in q.urls]
    else:
        out.append(f"{sp}    Process IDs:")
        out += [f"{sp}        {p}" for p in q.pids]
    return out


def requestq_text(queues: list[QueueSpec]) -> str:
    """view=requestq: header from raw/servicestate/azure-sf-requestq-mangled.txt (leading blank line,
    53 dashes), queue blocks as raw/servicestate/bookofdaniel-ssrs-requestq-excerpt.txt (queue at 0,
    URL group at 4, its server session nested at 8), a blank line between queues, two at the end."""
    lines = ["", "Snapshot of HTTP service state (Request Queue View):", "-" * 53, ""]
    for k, q in enumerate(queues):
        if k:
            lines.append("")
        lines += _queue_head(q, 0) + ["    URL groups:"] + _group_lines(q, 4) + _session_lines(q, 8)
    lines += ["", ""]
    return crlf(lines)


def session_text(queues: list[QueueSpec], leading_blank: bool = True) -> str:
    """Default view, as raw/servicestate/htb-flight-iis-winrm.txt / htb-overwatch-a (trailing space
    after the title and the dashes, one server session per queue, then ``Request queues:``)."""
    lines = ([""] if leading_blank else []) + ["Snapshot of HTTP service state (Server Session View): ",
                                               "-" * 53 + " ", ""]
    for q in queues:
        lines += _session_lines(q, 0) + ["    URL groups:"] + _group_lines(q, 4) + [""]
    lines.append("Request queues:")
    for k, q in enumerate(queues):
        if k:
            lines.append("")
        lines += _queue_head(q, 4)
    lines.append("")
    return crlf(lines)


def urlacl_entry(url: str, users: list[str], sddl: str) -> list[str]:
    """raw/urlacl/gh-aspnetcore-19969-win10-1909-excerpt.txt"""
    out = [f"    Reserved URL            : {url}"]
    for u in users:
        out += [f"        User: {u}", "            Listen: Yes", "            Delegate: No"]
    out.append(f"            SDDL: {sddl}")
    return out


def ace(sid: str) -> str:
    return f"(A;;GX;;;{sid})"


WSMAN_USERS = ["NT SERVICE\\WinRM", "NT SERVICE\\Wecsvc"]
WSMAN_SDDL = "D:" + ace(service_sid("WinRM")) + ace(service_sid("Wecsvc"))


def default_urlacl(extra: list[tuple[int, str, list[str], str]] = ()) -> list[tuple[str, list[str], str]]:
    """NOTES §10 default reservation set; order as in the Windows samples (WSD, Temporary_Listen_Addresses,
    WSD-secure, apps, then the server ones); ``extra`` = (position, url, users, sddl)."""
    entries = [
        ("http://*:5357/", ["BUILTIN\\Users", "NT AUTHORITY\\LOCAL SERVICE"], "D:(A;;GX;;;BU)(A;;GX;;;LS)"),
        ("http://+:80/Temporary_Listen_Addresses/", ["\\Everyone"], "D:(A;;GX;;;WD)"),
        ("https://*:5358/", ["BUILTIN\\Users", "NT AUTHORITY\\LOCAL SERVICE"], "D:(A;;GX;;;BU)(A;;GX;;;LS)"),
        ("http://+:10247/apps/", ["NT AUTHORITY\\Authenticated Users"], "D:(A;;GX;;;AU)"),
        ("http://*:2869/", ["NT AUTHORITY\\LOCAL SERVICE"], "D:(A;;GX;;;LS)"),
        ("http://+:5985/wsman/", WSMAN_USERS, WSMAN_SDDL),
        ("http://+:47001/wsman/", WSMAN_USERS, WSMAN_SDDL),
        ("https://+:5986/wsman/", WSMAN_USERS, WSMAN_SDDL),
        ("http://+:3387/rdp/", ["NT SERVICE\\TermService"], "D:" + ace(service_sid("TermService"))),
        ("https://+:3392/rdp/", ["NT SERVICE\\TermService"], "D:" + ace(service_sid("TermService"))),
        ("https://+:443/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/",
         ["NT SERVICE\\SstpSvc", "BUILTIN\\Administrators", "NT AUTHORITY\\SYSTEM"],
         "D:" + ace(service_sid("SstpSvc")) + "(A;;GX;;;BA)(A;;GX;;;SY)"),
        ("http://+:10243/WMPNSSv4/", ["NT SERVICE\\WMPNetworkSvc"], "D:" + ace(service_sid("WMPNetworkSvc"))),
        ("https://+:10245/WMPNSSv4/", ["NT SERVICE\\WMPNetworkSvc"], "D:" + ace(service_sid("WMPNetworkSvc"))),
        ("http://+:10246/MDEServer/", ["NT AUTHORITY\\Authenticated Users"], "D:(A;;GX;;;AU)"),
    ]
    for pos, url, users, sddl in sorted(extra, key=lambda e: -e[0]):
        entries.insert(pos, (url, users, sddl))
    return entries


def urlacl_text(entries: list[tuple[str, list[str], str]]) -> str:
    lines = ["", "URL Reservations:", "-----------------", ""]
    for url, users, sddl in entries:
        lines += urlacl_entry(url, users, sddl) + [""]
    lines.append("")
    return crlf(lines)


def services_json(services: list[dict]) -> str:
    recs = [{k: s[k] for k in ("Name", "DisplayName", "State", "StartMode", "ProcessId")}
            for s in sorted(services, key=lambda s: s["Name"].lower())]
    return cmd.convert_to_json(recs)


# ServicesDependedOn of the demo services, as the registry's DependOnService spells them. WinRM: NSI, HTTP, RPCSS
# (a real `Get-Service WinRM -RequiredServices`, tests/fixtures/getservice/); WAS's dependents W3SVC and the
# three listener adapters (windows-security.org "Windows Process Activation Service", dotnet/AspNetCore.Docs
# #26342); NetTcpActivator also needs NetTcpPortSharing (W4RH4WK/Debloat-Windows-10#49). W3SVC -> WAS, HTTP;
# WAS -> RPCSS; NetMsmqActivator -> MSMQ; MSMQ -> RPCSS; RpcSs -> RpcEptMapper, DcomLaunch; LanmanWorkstation's
# dependent Netlogon: the usual `sc qc` lists, no capture (a guess). Other demo services list none.
DEPENDS: dict[str, list[str]] = {
    "WinRM": ["NSI", "HTTP", "RPCSS"], "RpcSs": ["RpcEptMapper", "DcomLaunch"], "W3SVC": ["WAS", "HTTP"],
    "WAS": ["RPCSS"], "NetPipeActivator": ["WAS"], "NetTcpActivator": ["NetTcpPortSharing", "WAS"],
    "NetMsmqActivator": ["WAS", "MSMQ"], "MSMQ": ["RPCSS"], "Netlogon": ["LanmanWorkstation"],
}


def getservice_json(services: list[dict]) -> str:
    """getservice.json: `Get-Service | Select-Object Name, DisplayName, Status, StartType (as strings),
    DependentServices, ServicesDependedOn (as names) | ConvertTo-Json` (5.1 layout). DependentServices
    holds indirect dependents too, last-started first (EnumDependentServices)."""
    names = {s["Name"].lower(): s["Name"] for s in services}
    needs = {k: [d for d in DEPENDS.get(n, [])] for k, n in names.items()}

    def closure(k: str) -> set:
        seen: set = set()
        todo = [d.lower() for d in needs.get(k, [])]
        while todo:
            d = todo.pop()
            if d not in seen:
                seen.add(d)
                todo += [x.lower() for x in needs.get(d, [])]
        return seen

    depth = {k: len(closure(k)) for k in names}
    recs = []
    for s in sorted(services, key=lambda s: s["Name"].lower()):
        k = s["Name"].lower()
        deps = sorted((names[o] for o in names if k in closure(o)), key=lambda n: (-depth[n.lower()], n.lower()))
        recs.append({"Name": s["Name"], "DisplayName": s["DisplayName"], "Status": s["State"],
                     "StartType": {"Auto": "Automatic"}.get(s["StartMode"], s["StartMode"]),
                     "DependentServices": deps or None, "ServicesDependedOn": needs.get(k) or None})
    return cmd.convert_to_json(recs)


def processes_json(procs: list[Proc], elevated: bool = True) -> str:
    recs = []
    for p in sorted(procs, key=lambda p: (cmd_name(p.image).lower(), p.pid)):
        recs.append({"Id": p.pid, "ProcessName": cmd_name(p.image), "Path": p.path if elevated else None})
    return cmd.convert_to_json(recs)


def cmd_name(image: str) -> str:
    if image == "System Idle Process":
        return "Idle"
    return image[:-4] if image.lower().endswith(".exe") else image


def tasklist_text(procs: list[Proc]) -> str:
    return cmd.format_tasklist_svc((p.image, p.pid, p.services) for p in procs)


ELEV = cmd.ELEVATION_NETSH


# --- the hosts ----------------------------------------------------------------------------------------------

def common_rows(b: Builder, http_ports: list[int], bind: Optional[list[str]] = None, rdp: bool = True) -> list:
    """The listeners every Windows host has (RPC, SMB, RDP, WinRM, the 4966x RPC ports) + UDP."""
    ip = b.spec.ip
    rpcss, lsass = b.pid_of("RpcSs"), b.pid_of_image("lsass.exe")
    wininit, services = b.pid_of_image("wininit.exe"), b.pid_of_image("services.exe")
    rows = []

    def both(port: int, pid: int) -> None:
        rows.append(("TCP", f"0.0.0.0:{port}", "0.0.0.0:0", "LISTENING", pid))
        rows.append(("TCP", f"[::]:{port}", "[::]:0", "LISTENING", pid))

    both(135, rpcss)
    both(445, 4)
    if rdp:
        both(3389, b.pid_of("TermService"))
    for port in http_ports:
        if bind:
            for a in bind:
                rows.append(("TCP", f"{a}:{port}", "0.0.0.0:0", "LISTENING", 4))
        else:
            both(port, 4)
    for port, pid in ((49664, lsass), (49665, wininit), (49666, b.pid_of("EventLog")),
                      (49667, b.pid_of("Schedule")), (49668, b.pid_of("Spooler")), (49669, services)):
        both(port, pid)
    rows.append(("TCP", f"{ip}:139", "0.0.0.0:0", "LISTENING", 4))
    if 5985 in http_ports:
        rows.append(("TCP", f"{ip}:5985", "10.0.9.15:51544", "ESTABLISHED", 4))  # this scan's session
    rows.append(("TCP", f"{ip}:{49700 + b.rng.randint(10, 280)}", "10.0.0.10:445", "ESTABLISHED", 4))
    rows.append(("TCP", f"{ip}:{49700 + b.rng.randint(300, 600)}", "10.0.0.10:135", "TIME_WAIT", 0))
    w32, dns, ike = b.pid_of("W32Time"), b.pid_of("Dnscache"), b.pid_of("IKEEXT")
    for port, pid in ((123, w32), (500, ike), (4500, ike), (5353, dns), (5355, dns)):
        rows.append(("UDP", f"0.0.0.0:{port}", "*:*", "", pid))
    rows.append(("UDP", f"{ip}:137", "*:*", "", 4))
    rows.append(("UDP", f"{ip}:138", "*:*", "", 4))
    for port, pid in ((123, w32), (500, ike), (5353, dns)):
        rows.append(("UDP", f"[::]:{port}", "*:*", "", pid))
    return rows


def winrm_queue(b: Builder, n: int, images: bool = False, extra_urls: list[str] = ()) -> QueueSpec:
    pid = b.pid_of("WinRM")
    return QueueSpec(None, "1.0", [pid], ["HTTP://+:5985/WSMAN/", "HTTP://+:47001/WSMAN/", *extra_urls],
                     group_id=f"FE000000{n}0000001", session_id=f"FF000000{n}0000001",
                     images={pid: SVCHOST} if images else None)


def host_json(spec: HostSpec, collected: str, lab: dict, errors: Optional[dict] = None) -> str:
    meta = {"hostname": spec.hostname, "os_version": spec.os_version, "os_caption": spec.os_caption,
            "collected_at": collected, "errors": errors or {}, "lab": lab}
    return json.dumps(meta, indent=2) + "\n"


def write(folder: str, files: dict[str, str]) -> None:
    d = HERE / folder
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_bytes(text.encode("utf-8"))


IIS_SERVICES = [("AppHostSvc", "Application Host Helper Service", "Auto", True, "apphost"),
                ("W3SVC", "World Wide Web Publishing Service", "Auto", True, "iissvcs"),
                ("WAS", "Windows Process Activation Service", "Manual", True, "iissvcs")]
# WCF non-HTTP activation: the listener adapters (SMSvcHost.exe) and what they need
WCF_SERVICES = [("MSMQ", "Message Queuing", "Auto", True, "exe:mqsvc.exe"),
                ("NetMsmqActivator", "Net.Msmq Listener Adapter", "Auto", True, "exe:SMSvcHost.exe"),
                ("NetPipeActivator", "Net.Pipe Listener Adapter", "Auto", True, "exe:SMSvcHost.exe"),
                ("NetTcpActivator", "Net.Tcp Listener Adapter", "Auto", True, "exe:SMSvcHost.exe"),
                ("NetTcpPortSharing", "Net.Tcp Port Sharing Service", "Manual", True, "exe:SMSvcHost.exe")]
IIS_SESSION = (120, 120, 65535, 120, 120, 240)  # htb-flight (IIS 10)
IIS_GROUP = [120, 120, 65535, 120, 0, 0]


def iis_queue(b: Builder, n: int, worker: Optional[int], urls: list[str]) -> QueueSpec:
    return QueueSpec("DefaultAppPool", "2.0", [worker] if worker else [], urls, controller=b.pid_of("W3SVC"),
                     verbosity="Limited", group_timeouts=IIS_GROUP, max_connections="4294967295",
                     logging="C:\\inetpub\\logs\\LogFiles\\W3SVC1", auth=[], session_timeouts=IIS_SESSION,
                     group_id=f"FF0000004000000{n}", session_id=f"FD000000{n}0000001")


def gen_all() -> list[dict]:
    expected: list[dict] = []

    def finish(b: Builder, queues: list[QueueSpec], rows: list, acl: list, lab: dict, exp: dict,
               collected: str, session: bool = False, elevated_files: bool = True,
               iplisten: Optional[list[str]] = None, extra: Optional[dict[str, str]] = None) -> None:
        files = {
            "netstat.txt": netstat_text(rows),
            "servicestate.txt": requestq_text(queues) if elevated_files else crlf([ELEV, ""]),
            "urlacl.txt": urlacl_text(acl) if elevated_files else crlf([ELEV, ""]),
            "iplisten.txt": (crlf(["", cmd.IPLISTEN_TITLE, cmd.IPLISTEN_DASHES, ""] +
                                  ["    " + a for a in iplisten or []] + ["", ""])
                             if elevated_files else crlf([ELEV, ""])),
            "services.json": services_json(b.services),
            "getservice.json": getservice_json(b.services),
            "tasklist.txt": tasklist_text(b.procs),
            "processes.json": processes_json(b.procs, elevated_files),
        }
        if session:
            files["servicestate_session.txt"] = session_text(queues)
        files.update(extra or {})  # issue 13 evidence (_generate_beyond.py)
        errors = {} if elevated_files else {k: ELEV for k in ("servicestate", "urlacl", "iplisten")}
        files["host.json"] = host_json(b.spec, collected, lab, errors)
        write(b.spec.folder, files)
        exp.setdefault("hostname", b.spec.hostname)
        expected.append(exp)

    # 1. branchcache ------------------------------------------------------------------------------------
    s = HostSpec("branchcache", "FIN-WS0147", "10.0.19045.5131", "Microsoft Windows 10 Enterprise", "10.0.42.118",
                 seed=101, client=True, running_overrides={"PeerDistSvc": True, "Audiosrv": True,
                                                           "AudioEndpointBuilder": True, "BITS": True})
    b = Builder(s)
    b.build_processes()
    b.tail_processes(interactive=True)
    pd = b.pid_of("PeerDistSvc")
    q_bc = QueueSpec(None, "2.0", [pd], ["HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/"],
                     group_timeouts=[120, 0, 0, 0, 0, 0], auth=["Negotiate"],
                     group_id="FE00000340000001", session_id="FF00000320000001")
    queues = [winrm_queue(b, 1), q_bc]
    rows = common_rows(b, [80, 5985, 47001], rdp=False)
    rows += [("TCP", "0.0.0.0:5040", "0.0.0.0:0", "LISTENING", b.pid_of("CDPSvc")),
             ("TCP", "0.0.0.0:7680", "0.0.0.0:0", "LISTENING", b.pid_of("DoSvc")),
             ("TCP", "[::]:7680", "[::]:0", "LISTENING", b.pid_of("DoSvc")),
             ("TCP", "10.0.42.118:50312", "10.0.42.7:80", "ESTABLISHED", pd)]
    acl = default_urlacl([
        (2, "http://+:80/116B50EB-ECE2-41ac-8429-9F9E963361B7/", ["NT AUTHORITY\\NETWORK SERVICE"],
         "D:(A;;GX;;;NS)"),
        (3, "http://+:80/0131501b-d67f-491b-9a40-c4bf27bcb4d4/", ["NT AUTHORITY\\NETWORK SERVICE"],
         "D:(A;;GX;;;NS)"),
        (4, "https://+:443/C574AC30-5794-4AEE-B1BB-6651C5315029/", ["NT AUTHORITY\\NETWORK SERVICE"],
         "D:(A;;GX;;;NS)")])
    finish(b, queues, rows, acl, {"owners": {}}, {
        "host": "branchcache", "holder": "http.sys", "product": "BranchCache (PeerDistSvc)",
        "pids": [pd], "controller_pid": None, "services": ["PeerDistSvc"],
        "urls": ["HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/"], "fault": None,
        "scan": {"status": "ok", "holder": "http.sys"},
        "fix": "netsh branchcache set service mode=disabled"}, "2025-05-12T08:14:03Z")

    # 2. iis-worker -------------------------------------------------------------------------------------
    s = HostSpec("iis-worker", "WEB-PRD-01", "10.0.17763.6414", "Microsoft Windows Server 2019 Standard", "10.0.12.31",
                 seed=202, extra_services=IIS_SERVICES + WCF_SERVICES)
    b = Builder(s)
    b.build_processes()
    w3wp = b.proc("w3wp.exe").pid
    b.tail_processes()
    q_iis = iis_queue(b, 4, w3wp, ["HTTP://*:80/"])
    queues = [winrm_queue(b, 1), q_iis]
    rows = common_rows(b, [80, 5985, 47001])
    rows += [("TCP", "10.0.12.31:80", "10.0.30.77:62114", "ESTABLISHED", 4),
             ("TCP", "10.0.12.31:80", "10.0.30.81:50992", "TIME_WAIT", 0)]
    finish(b, queues, rows, default_urlacl(), {"owners": {"DefaultAppPool": ["W3SVC"]}}, {
        "host": "iis-worker", "holder": "http.sys", "product": "IIS", "pids": [w3wp],
        "controller_pid": b.pid_of("W3SVC"), "services": ["W3SVC", "WAS"], "urls": ["HTTP://*:80/"],
        "fault": None, "scan": {"status": "ok", "holder": "http.sys"}, "fix": "iisreset /stop"},
        "2025-05-12T08:14:05Z")

    # 3. iis-idle ---------------------------------------------------------------------------------------
    s = HostSpec("iis-idle", "INTRANET-02", "10.0.17763.5933", "Microsoft Windows Server 2019 Datacenter",
                 "10.0.12.45", seed=303, extra_services=IIS_SERVICES)
    b = Builder(s)
    b.build_processes()
    b.tail_processes()
    q_iis = iis_queue(b, 4, None, ["HTTP://*:80/"])
    queues = [winrm_queue(b, 1), q_iis]
    rows = common_rows(b, [80, 5985, 47001])
    finish(b, queues, rows, default_urlacl(), {}, {
        "host": "iis-idle", "holder": "http.sys", "product": "IIS", "pids": [],
        "controller_pid": b.pid_of("W3SVC"), "services": ["W3SVC", "WAS"], "urls": ["HTTP://*:80/"],
        "fault": None, "scan": {"status": "ok", "holder": "http.sys"},
        "notes": "idle application pool: no worker attached, the controller (WAS/W3SVC svchost) holds the queue",
        "fix": "iisreset /stop"}, "2025-05-12T08:14:07Z", session=True)

    # 4. ssrs -------------------------------------------------------------------------------------------
    ssrs_svc = [("SQLServerReportingServices", "SQL Server Reporting Services", "Auto", True,
                 "exe:RSHostingService.exe"),
                ("SQLWriter", "SQL Server VSS Writer", "Auto", True, "exe:sqlwriter.exe")]
    s = HostSpec("ssrs", "BI-REPORT01", "10.0.17763.6054", "Microsoft Windows Server 2019 Standard", "10.0.14.20",
                 seed=404, extra_services=ssrs_svc)
    b = Builder(s)
    b.build_processes()
    b.tail_processes()
    rs = b.pid_of("SQLServerReportingServices")
    q_rs = QueueSpec(None, "2.0", [rs], ["HTTP://+:80/REPORTSERVER/"], group_id="BE00000340000001",
                     session_id="C000000320000001")
    q_portal = QueueSpec(None, "2.0", [rs], ["HTTP://+:80/REPORTS/"], group_id="BE00000340000002",
                         session_id="C000000320000002")
    queues = [winrm_queue(b, 1), q_rs, q_portal]
    rows = common_rows(b, [80, 5985, 47001])
    ssrs_sddl = "D:" + ace(service_sid("SQLServerReportingServices"))
    acl = default_urlacl([(8, "http://+:80/ReportServer/", ["NT SERVICE\\SQLServerReportingServices"], ssrs_sddl),
                          (9, "http://+:80/Reports/", ["NT SERVICE\\SQLServerReportingServices"], ssrs_sddl)])
    finish(b, queues, rows, acl, {}, {
        "host": "ssrs", "holder": "http.sys", "product": "SQL Server Reporting Services", "pids": [rs],
        "controller_pid": None, "services": ["SQLServerReportingServices"],
        "urls": ["HTTP://+:80/REPORTSERVER/", "HTTP://+:80/REPORTS/"], "fault": None,
        "scan": {"status": "ok", "holder": "http.sys"},
        "fix": "Stop-Service SQLServerReportingServices (or move its URLs in Report Server Configuration Manager)"},
        "2025-05-12T08:14:09Z")

    # 5. nginx ------------------------------------------------------------------------------------------
    s = HostSpec("nginx", "EDGE-PROXY01", "10.0.17763.6414", "Microsoft Windows Server 2019 Standard", "10.0.20.5",
                 seed=505)
    b = Builder(s)
    b.build_processes()
    master = b.proc("nginx.exe").pid
    worker = b.proc("nginx.exe").pid
    b.tail_processes()
    queues = [winrm_queue(b, 1)]
    rows = common_rows(b, [5985, 47001])
    rows += [("TCP", "0.0.0.0:80", "0.0.0.0:0", "LISTENING", master), ("TCP", "[::]:80", "[::]:0", "LISTENING", master),
             ("TCP", "10.0.20.5:80", "10.0.30.77:62201", "ESTABLISHED", master),
             ("TCP", "10.0.20.5:61022", "10.0.20.40:8080", "ESTABLISHED", worker)]
    finish(b, queues, rows, default_urlacl(), {}, {
        "host": "nginx", "holder": "process", "product": "nginx", "pids": [master], "controller_pid": None,
        "services": [], "urls": [], "fault": None, "scan": {"status": "ok", "holder": "process"},
        "fix": "stop nginx.exe (not a service here: started by a scheduled task)"}, "2025-05-12T08:14:11Z")

    # 6. free -------------------------------------------------------------------------------------------
    s = HostSpec("free", "APP-BATCH03", "10.0.20348.2849", "Microsoft Windows Server 2022 Standard", "10.0.16.9",
                 seed=606)
    b = Builder(s)
    b.build_processes()
    b.tail_processes()
    queues = [winrm_queue(b, 1)]
    rows = common_rows(b, [5985, 47001])
    finish(b, queues, rows, default_urlacl(), {}, {
        "host": "free", "holder": "free", "product": None, "pids": [], "controller_pid": None, "services": [],
        "urls": [], "fault": None, "scan": {"status": "ok", "holder": "free"},
        "notes": "only the default reservation http://+:80/Temporary_Listen_Addresses/ mentions port 80"},
        "2025-05-12T08:14:13Z")

    # 7. iplisten-split ---------------------------------------------------------------------------------
    apache = [("Apache2.4", "Apache2.4", "Auto", True, "exe:httpd.exe")]
    s = HostSpec("iplisten-split", "WEB-LEGACY04", "10.0.14393.7428", "Microsoft Windows Server 2016 Standard",
                 "10.0.5.21", seed=707, split=False, extra_services=IIS_SERVICES + apache)
    b = Builder(s)
    b.build_processes()
    httpd_parent = b.pid_of("Apache2.4")
    b.proc("httpd.exe")  # Apache's child process
    w3wp = b.proc("w3wp.exe").pid
    b.tail_processes()
    q_iis = iis_queue(b, 4, w3wp, ["HTTP://10.0.5.21:80:10.0.5.21/"])
    queues = [winrm_queue(b, 1), q_iis]
    rows = common_rows(b, [80, 5985, 47001], bind=["10.0.5.21"])
    rows += [("TCP", "10.0.5.22:80", "0.0.0.0:0", "LISTENING", httpd_parent),
             ("TCP", "10.0.5.22:139", "0.0.0.0:0", "LISTENING", 4)]
    finish(b, queues, rows, default_urlacl(), {"owners": {"DefaultAppPool": ["W3SVC"]}}, {
        "host": "iplisten-split", "holder": ["http.sys", "process"], "product": ["IIS", "Apache HTTP Server"],
        "pids": [w3wp, httpd_parent], "controller_pid": b.pid_of("W3SVC"),
        "services": ["W3SVC", "WAS", "Apache2.4"], "urls": ["HTTP://10.0.5.21:80:10.0.5.21/"], "fault": None,
        "scan": {"status": "ok", "holder": ["http.sys", "process"]}, "iplisten": ["10.0.5.21"],
        "notes": "HTTP.sys bound to 10.0.5.21 only (IP listen list); Apache httpd.exe on 10.0.5.22:80"},
        "2025-05-12T08:14:15Z", iplisten=["10.0.5.21"])

    # 8. winrm-compat -----------------------------------------------------------------------------------
    s = HostSpec("winrm-compat", "MGMT-GW01", "10.0.17763.6054", "Microsoft Windows Server 2019 Standard",
                 "10.0.8.14", seed=808)
    b = Builder(s)
    b.build_processes()
    b.tail_processes()
    wq = winrm_queue(b, 1, extra_urls=["HTTP://+:80/WSMAN/"])
    rows = common_rows(b, [80, 5985, 47001])
    acl = default_urlacl([(6, "http://+:80/wsman/", WSMAN_USERS, WSMAN_SDDL)])
    finish(b, [wq], rows, acl, {}, {
        "host": "winrm-compat", "holder": "http.sys", "product": "WinRM compatibility listener",
        "pids": [b.pid_of("WinRM")], "controller_pid": None, "services": ["WinRM"],
        "urls": ["HTTP://+:80/WSMAN/"], "fault": None, "scan": {"status": "ok", "holder": "http.sys"},
        "fix": "winrm set winrm/config/service @{EnableCompatibilityHttpListener=\"false\"}",
        "notes": "do not stop WinRM: it is the remoting channel (5985) too"}, "2025-05-12T08:14:17Z")

    # 9. server2022-processes ---------------------------------------------------------------------------
    api_svc = [("ContosoOrdersApi", "Contoso Orders API", "Auto", True, "exe:Contoso.Orders.Api.exe")]
    s = HostSpec("server2022-processes", "OPS-API02", "10.0.20348.2849", "Microsoft Windows Server 2022 Standard",
                 "10.0.16.40", seed=909, extra_services=api_svc)
    b = Builder(s)
    b.build_processes()
    b.tail_processes()
    apid = b.pid_of("ContosoOrdersApi")
    wq = winrm_queue(b, 1, images=True)
    aq = QueueSpec(None, "2.0", [apid], ["HTTP://+:80/API/"], group_id="FC00000020000001",
                   session_id="FD00000010000001", images={apid: IMAGE_PATHS["Contoso.Orders.Api.exe"]})
    wq.group_id, wq.session_id = "FE00000020000001", "FF00000010000001"
    rows = common_rows(b, [80, 5985, 47001])
    acl = default_urlacl([(2, "http://+:80/api/", ["NT SERVICE\\ContosoOrdersApi"],
                           "D:" + ace(service_sid("ContosoOrdersApi")))])
    finish(b, [wq, aq], rows, acl, {}, {
        "host": "server2022-processes", "holder": "http.sys", "product": "Contoso.Orders.Api (self-hosted HTTP.sys)",
        "pids": [apid], "controller_pid": None, "services": ["ContosoOrdersApi"], "urls": ["HTTP://+:80/API/"],
        "fault": None, "scan": {"status": "ok", "holder": "http.sys"},
        "notes": "Server 2022 'Processes:' / 'ID: n, image: path' queue shape"}, "2025-05-12T08:14:19Z",
        session=True)

    # 10. not-elevated ----------------------------------------------------------------------------------
    wd = [("MsDepSvc", "Web Deployment Agent Service", "Auto", True, "exe:MsDepSvc.exe")]
    s = HostSpec("not-elevated", "FS-ARCHIVE05", "10.0.17763.6414", "Microsoft Windows Server 2019 Standard",
                 "10.0.18.50", seed=1010, extra_services=wd)
    b = Builder(s)
    b.build_processes()
    b.tail_processes()
    rows = common_rows(b, [80, 5985, 47001])
    finish(b, [winrm_queue(b, 1)], rows, default_urlacl(), {"fault": {"kind": "not_elevated"}, "elevated": False,
                                                           "user": "contoso\\svc_audit"}, {
        "host": "not-elevated", "holder": "http.sys", "product": None, "pids": [], "controller_pid": None,
        "services": [], "urls": [], "fault": "not_elevated",
        "scan": {"status": "partial", "holder": "http.sys"},
        "notes": ("netsh http needs elevation here: PID 4 listens on 80 but the registrant is not visible "
                  "(the host runs Web Deploy, MsDepSvc, which the evidence cannot show)")},
        "2025-05-12T08:14:21Z", elevated_files=False)

    # 11. faulty-auth -----------------------------------------------------------------------------------
    s = HostSpec("faulty-auth", "WEB-DMZ07", "10.0.14393.7428", "Microsoft Windows Server 2016 Datacenter",
                 "10.0.40.7", seed=1111, split=False, extra_services=IIS_SERVICES)
    b = Builder(s)
    b.build_processes()
    w3wp = b.proc("w3wp.exe").pid
    b.tail_processes()
    queues = [winrm_queue(b, 1), iis_queue(b, 4, w3wp, ["HTTP://*:80/"])]
    rows = common_rows(b, [80, 5985, 47001])
    finish(b, queues, rows, default_urlacl(), {"fault": {"kind": "auth"}}, {
        "host": "faulty-auth", "holder": "http.sys", "product": "IIS", "pids": [w3wp],
        "controller_pid": b.pid_of("W3SVC"), "services": ["W3SVC", "WAS"], "urls": ["HTTP://*:80/"],
        "fault": "auth", "scan": {"status": "auth", "holder": "unknown"}}, "2025-05-12T08:14:23Z")

    # 12. faulty-hang -----------------------------------------------------------------------------------
    s = HostSpec("faulty-hang", "APP-BATCH09", "10.0.20348.2849", "Microsoft Windows Server 2022 Standard",
                 "10.0.16.19", seed=1212)
    b = Builder(s)
    b.build_processes()
    b.tail_processes()
    rows = common_rows(b, [5985, 47001])
    finish(b, [winrm_queue(b, 1)], rows, default_urlacl(), {"fault": {"kind": "hang_receive"}}, {
        "host": "faulty-hang", "holder": "free", "product": None, "pids": [], "controller_pid": None,
        "services": [], "urls": [], "fault": "hang_receive", "scan": {"status": "timeout", "holder": "unknown"}},
        "2025-05-12T08:14:25Z")

    # 13. faulty-wsman ----------------------------------------------------------------------------------
    s = HostSpec("faulty-wsman", "DEPLOY-TGT11", "10.0.17763.6414", "Microsoft Windows Server 2019 Standard",
                 "10.0.22.11", seed=1313, extra_services=wd)
    b = Builder(s)
    b.build_processes()
    b.tail_processes()
    md = b.pid_of("MsDepSvc")
    mq = QueueSpec(None, "2.0", [md], ["HTTP://+:80/MSDEPLOYAGENTSERVICE/"], group_id="FE00000340000001",
                   session_id="FF00000320000001")
    rows = common_rows(b, [80, 5985, 47001])
    acl = default_urlacl([(2, "http://+:80/MSDEPLOYAGENTSERVICE/", ["BUILTIN\\Administrators"],
                           "D:(A;;GX;;;BA)")])
    fault = {"kind": "wsman_fault", "action": "Command", "code": 2150858843,
             "message": ("The request for the Windows Remote Shell with ShellId 5D1C2E7A-3B0F-4C8E-9A61-"
                         "0F2B7D4E9C13 failed because the shell was not found on the server. Possible causes are: "
                         "the specified ShellId is incorrect or the shell no longer exists on the server. Provide "
                         "the correct ShellId or create a new shell and retry the operation. ")}
    finish(b, [winrm_queue(b, 1), mq], rows, acl, {"fault": fault}, {
        "host": "faulty-wsman", "holder": "http.sys", "product": "Web Deploy (MsDepSvc)", "pids": [md],
        "controller_pid": None, "services": ["MsDepSvc"], "urls": ["HTTP://+:80/MSDEPLOYAGENTSERVICE/"],
        "fault": "wsman_fault", "scan": {"status": "winrm", "holder": "unknown"}}, "2025-05-12T08:14:27Z")

    from _generate_beyond import gen_beyond  # 14.-17.: excluded ranges, certificate bindings, IIS sites, precedence

    gen_beyond(finish)
    return expected


def main() -> None:
    expected = gen_all()
    (HERE / "EXPECTED.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(expected)} bundles to {HERE}")


if __name__ == "__main__":
    main()
