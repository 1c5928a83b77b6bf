"""Dev tool, called by _generate.py: the demo hosts of issue 13 (excluded port ranges, certificate
bindings, IIS sites and app pools, HTTP.sys precedence). Same rules as _generate.py: every text copies
the line shapes of a real sample in the corpus (those the tests use are copied in tests/fixtures/; named at each renderer), only values
change, PIDs agree across the files of a bundle, deterministic.
"""

from __future__ import annotations

from typing import Callable, Optional

from _generate import (IIS_GROUP, IIS_SERVICES, IIS_SESSION, IMAGE_PATHS, SYS32, Builder, HostSpec, QueueSpec,
                       ace, common_rows, crlf, default_urlacl, service_sid, winrm_queue)

# --- renderers --------------------------------------------------------------------------------------------


def excluded_text(rows: list[tuple[int, int, bool]], proto: str = "tcp") -> str:
    """raw/excludedportrange/en-gha-otel-10839-before-after-administered.txt (Windows Server 2022):
    leading blank, title, blank, header and dashes padded to 26 columns, rows padded to 26 (an
    administered row ends at its "*"), blank, footer, blank."""
    lines = ["", f"Protocol {proto} Port Exclusion Ranges", "", "Start Port    End Port      ",
             "----------    --------      "]
    for start, end, admin in rows:
        lines.append(f"{start:>10}{end:>12}     *" if admin else f"{start:>10}{end:>12}      ")
    lines += ["", "* - Administered port exclusions.", ""]
    return crlf(lines)


# raw/sslcert/en-bc-onprem-7148-backtick-wrapped.txt (backticks removed), the newest field set
_SSL_FIELDS = [
    ("Verify Client Certificate Revocation", "Enabled"),
    ("Verify Revocation Using Cached Client Certificate Only", "Disabled"),
    ("Usage Check", "Enabled"), ("Revocation Freshness Time", "0"), ("URL Retrieval Timeout", "0"),
    ("Ctl Identifier", "(null)"), ("Ctl Store Name", "(null)"), ("DS Mapper Usage", "Disabled"),
    ("Negotiate Client Certificate", "Disabled"), ("Reject Connections", "Disabled"),
    ("Disable HTTP2", "Not Set"), ("Disable QUIC", "Not Set"), ("Disable TLS1.2", "Not Set"),
    ("Disable TLS1.3", "Not Set"), ("Disable OCSP Stapling", "Not Set"), ("Enable Token Binding", "Not Set"),
    ("Log Extended Events", "Not Set"), ("Disable Legacy TLS Versions", "Not Set"),
    ("Enable Session Ticket", "Not Set"), ("Enable Caching Client Hello", "Not Set"),
]


def _label(name: str) -> str:
    return f"    {name:<29}: " if len(name) < 29 else f"    {name} : "


def sslcert_text(bindings: list[tuple[str, str, str, str, str]]) -> str:
    """(key label, value, hash, app id, store) per binding; blank line, title, dashes, blank, blocks
    separated by a blank line (raw/sslcert/en-watson-0.0.0.0-443-older-fieldset.txt layout)."""
    lines = ["", "SSL Certificate bindings:", "-------------------------", ""]
    for key, value, chash, appid, store in bindings:
        lines += [_label(key) + value, _label("Certificate Hash") + chash, _label("Application ID") + appid,
                  _label("Certificate Store Name") + store]
        lines += [_label(k) + v for k, v in _SSL_FIELDS]
        lines += [" Extended Properties:", _label("PropertyId") + "0", _label("Receive Window") + "1048576",
                  " Extended Properties:", _label("PropertyId") + "1", _label("Max Settings Per Frame") + "2796202",
                  _label("Max Settings Per Minute") + "4294967295", ""]
    lines.append("")
    return crlf(lines)


def sites_text(sites: list[tuple[str, int, str, str, list[str]]]) -> str:
    """Get-Website | Out-String -Width 512: raw/get-website/en-certify-83-get-childitem-iis-sites-multibinding.txt
    (columns 0/17/22/33/64, further bindings on lines indented to 64; "http *:80:" cells end with one space as in
    en-simcorp-script-comment-iis-sites-trailing-pad.txt; leading and trailing blank lines as PowerShell prints)."""
    lines = ["", "Name             ID   State      Physical Path                  Bindings",
             "----             --   -----      -------------                  --------"]
    for name, sid, state, path, binds in sites:
        lines.append(f"{name:<16} {sid:<4} {state:<10} {path:<30} {binds[0]} ")
        lines += [" " * 64 + b + " " for b in binds[1:]]
    lines += ["", ""]
    return crlf(lines)


def apppools_text(pools: list[tuple[str, str]]) -> str:
    """Get-IISAppPool | Out-String -Width 512: raw/get-iisapppool/en-psforsysadmins-book-defaultapppool.txt
    (Name 0, Status 21, CLR Ver 34, Pipeline Mode 43, Start Mode 58)."""
    lines = ["", "Name                 Status       CLR Ver  Pipeline Mode  Start Mode",
             "----                 ------       -------  -------------  ----------"]
    for name, state in pools:
        lines.append(f"{name:<20} {state:<12} {'v4.0':<8} {'Integrated':<14} OnDemand")
    lines += ["", ""]
    return crlf(lines)


def iis_pool_queue(b: Builder, name: str, site_id: int, worker: Optional[int], urls: list[str], n: int) -> QueueSpec:
    """An IIS app pool queue (raw/servicestate/htb-flight-iis-winrm.txt values), log directory W3SVC<site id>."""
    return QueueSpec(name, "2.0", [worker] if worker else [], urls, controller=b.pid_of("W3SVC"), verbosity="Limited",
                     group_timeouts=IIS_GROUP, max_connections="4294967295",
                     logging=f"C:\\inetpub\\logs\\LogFiles\\W3SVC{site_id}", auth=[], session_timeouts=IIS_SESSION,
                     group_id=f"FF0000004000000{n}", session_id=f"FD000000{n}0000001")


# --- the hosts ----------------------------------------------------------------------------------------------


def gen_beyond(finish: Callable) -> None:
    IMAGE_PATHS.update(IMAGE_PATHS_BEYOND)
    # 14. hyperv-winnat: port 80 inside a system-reserved excluded range, nothing listens -----------------
    hv = [("vmms", "Hyper-V Virtual Machine Management", "Auto", True, "exe:vmms.exe"),
          ("hns", "Host Network Service", "Manual", True, "NetSvcs"),
          ("vmcompute", "Hyper-V Host Compute Service", "Manual", True, "exe:vmcompute.exe")]
    s = HostSpec("hyperv-winnat", "HV-BUILD07", "10.0.20348.2849", "Microsoft Windows Server 2022 Datacenter",
                 "10.0.24.17", seed=1414, extra_services=hv)
    b = Builder(s)
    b.build_processes()
    b.tail_processes()
    rows = common_rows(b, [5985, 47001])
    # the Server 2022 shape of en-gha-otel-10839 (80, 5986, 47001 singles, then WinNAT's 100-port blocks)
    v4 = [(80, 80, False), (5986, 5986, False), (47001, 47001, False), (50000, 50059, True),
          (56638, 56737, False), (56738, 56837, False)]
    v6 = [(80, 80, False), (50000, 50059, True)]
    finish(b, [winrm_queue(b, 1)], rows, default_urlacl(), {}, {
        "host": "hyperv-winnat", "holder": "free", "product": None, "pids": [], "controller_pid": None,
        "services": [], "urls": [], "fault": None, "scan": {"status": "ok", "holder": "free"},
        "bindable": False, "blockers": ["excluded_range"],
        "excluded_ranges": [{"protocol": "tcp", "start": 80, "end": 80, "administered": False}],
        "notes": "nothing listens on 80, yet a bind fails: 80-80 is reserved by the system (WinNAT/HNS)",
        "fix": "net stop winnat; net start winnat"}, "2025-05-12T08:14:29Z",
        extra={"excludedportrange.txt": excluded_text(v4), "excludedportrange6.txt": excluded_text(v6)})

    # 15. ssrs-tls: 443 = SSRS certificate binding beside IIS on 80 ---------------------------------------
    ssrs_svc = [("SQLServerReportingServices", "SQL Server Reporting Services", "Auto", True,
                 "exe:RSHostingService.exe")]
    s = HostSpec("ssrs-tls", "BI-PORTAL02", "10.0.20348.2849", "Microsoft Windows Server 2022 Standard", "10.0.14.22",
                 seed=1515, extra_services=IIS_SERVICES + ssrs_svc)
    b = Builder(s)
    b.build_processes()
    w3wp = b.proc("w3wp.exe").pid
    b.tail_processes()
    rs = b.pid_of("SQLServerReportingServices")
    q_iis = iis_pool_queue(b, "DefaultAppPool", 1, w3wp, ["HTTP://*:80/"], 4)
    q_rs = QueueSpec(None, "2.0", [rs], ["HTTPS://+:443/REPORTSERVER/"], group_id="BE00000340000001",
                     session_id="C000000320000001")
    q_portal = QueueSpec(None, "2.0", [rs], ["HTTPS://+:443/REPORTS/"], group_id="BE00000340000002",
                         session_id="C000000320000002")
    rows = common_rows(b, [80, 443, 5985, 47001])
    ssrs_sddl = "D:" + ace(service_sid("SQLServerReportingServices"))
    acl = default_urlacl([(8, "https://+:443/ReportServer/", ["NT SERVICE\\SQLServerReportingServices"], ssrs_sddl),
                          (9, "https://+:443/Reports/", ["NT SERVICE\\SQLServerReportingServices"], ssrs_sddl)])
    chash = "3f2a9c4e1b7d08e56a4c92f1d3b0e7a5c8f61d24"
    appid = "{5f1b8c6e-2d4a-4e7b-9c3d-8a6e0f2b1c47}"  # this host's value (made up); not a knowledge-base fact
    finish(b, [winrm_queue(b, 1), q_iis, q_rs, q_portal], rows, acl, {"owners": {"DefaultAppPool": ["W3SVC"]}}, {
        "host": "ssrs-tls", "holder": "http.sys", "product": "IIS", "pids": [w3wp],
        "controller_pid": b.pid_of("W3SVC"), "services": ["W3SVC", "WAS"], "urls": ["HTTP://*:80/"],
        "fault": None, "scan": {"status": "ok", "holder": "http.sys"}, "fix": "iisreset /stop",
        "iis": [{"site": "Default Web Site", "site_id": 1, "app_pool": "DefaultAppPool"}],
        "port443": {"holder": "http.sys", "product": "SQL Server Reporting Services", "pids": [rs],
                    "tls": [{"binding": "0.0.0.0:443", "cert_hash": chash, "cert_store": "MY", "app_id": appid,
                             "product": "SQL Server Reporting Services"}]},
        "notes": "443 is Reporting Services' certificate binding and HTTPS registrations; IIS has only http *:80:"},
        "2025-05-12T08:14:31Z",
        extra={"sslcert.txt": sslcert_text([("IP:port", "0.0.0.0:443", chash, appid, "MY")]),
               "iis_sites.txt": sites_text([("Default Web Site", 1, "Started", r"%SystemDrive%\inetpub\wwwroot",
                                             ["http *:80:"])]),
               "iis_apppools.txt": apppools_text([("DefaultAppPool", "Started")])})

    # 16. iis-hostheaders: two IIS sites on port 80 by host header ----------------------------------------
    s = HostSpec("iis-hostheaders", "WEB-INTRA03", "10.0.17763.6414", "Microsoft Windows Server 2019 Standard",
                 "10.0.12.53", seed=1616, extra_services=IIS_SERVICES)
    b = Builder(s)
    b.build_processes()
    w_intra = b.proc("w3wp.exe").pid
    w_wiki = b.proc("w3wp.exe").pid
    b.tail_processes()
    q1 = iis_pool_queue(b, "IntranetPool", 2, w_intra, ["HTTP://INTRANET.CONTOSO.COM:80/"], 4)
    q2 = iis_pool_queue(b, "WikiPool", 3, w_wiki, ["HTTP://WIKI.CONTOSO.COM:80/"], 5)
    rows = common_rows(b, [80, 5985, 47001])
    sites = [("Default Web Site", 1, "Stopped", r"%SystemDrive%\inetpub\wwwroot", ["http *:80:"]),
             ("Intranet", 2, "Started", r"D:\sites\intranet", ["http *:80:intranet.contoso.com"]),
             ("Wiki", 3, "Started", r"D:\sites\wiki", ["http *:80:wiki.contoso.com",
                                                        "http *:8080:wiki.contoso.com"])]
    finish(b, [winrm_queue(b, 1), q1, q2], rows, default_urlacl(), {}, {
        "host": "iis-hostheaders", "holder": "http.sys", "product": "IIS", "pids": [w_intra, w_wiki],
        "controller_pid": b.pid_of("W3SVC"), "services": ["W3SVC", "WAS"],
        "urls": ["HTTP://INTRANET.CONTOSO.COM:80/", "HTTP://WIKI.CONTOSO.COM:80/"], "fault": None,
        "scan": {"status": "ok", "holder": "http.sys"}, "fix": "iisreset /stop",
        "iis": [{"site": "Intranet", "site_id": 2, "app_pool": "IntranetPool"},
                {"site": "Wiki", "site_id": 3, "app_pool": "WikiPool"}],
        "notes": "two sites share port 80 by host header, one app pool (request queue) each"}, "2025-05-12T08:14:33Z",
        extra={"iis_sites.txt": sites_text(sites),
               "iis_apppools.txt": apppools_text([("DefaultAppPool", "Started"), ("IntranetPool", "Started"),
                                                  ("WikiPool", "Started")])})

    # 17. shadowed-wildcard: a "+" registration shadows IIS's "*" ----------------------------------------
    kiosk = [("ContosoKiosk", "Contoso Kiosk Service", "Auto", True, "exe:Contoso.Kiosk.Host.exe")]
    s = HostSpec("shadowed-wildcard", "KIOSK-SRV01", "10.0.17763.6414", "Microsoft Windows Server 2019 Standard",
                 "10.0.31.8", seed=1717, extra_services=IIS_SERVICES + kiosk)
    b = Builder(s)
    b.build_processes()
    w3wp = b.proc("w3wp.exe").pid
    b.tail_processes()
    kp = b.pid_of("ContosoKiosk")
    q_iis = iis_pool_queue(b, "DefaultAppPool", 1, w3wp, ["HTTP://*:80/"], 4)
    q_k = QueueSpec(None, "2.0", [kp], ["HTTP://+:80/"], group_id="FE00000340000001", session_id="FF00000320000001")
    rows = common_rows(b, [80, 5985, 47001])
    acl = default_urlacl([(2, "http://+:80/", ["NT SERVICE\\ContosoKiosk"], "D:" + ace(service_sid("ContosoKiosk")))])
    finish(b, [winrm_queue(b, 1), q_iis, q_k], rows, acl, {"owners": {"DefaultAppPool": ["W3SVC"]}}, {
        "host": "shadowed-wildcard", "holder": "http.sys", "product": ["IIS", "Contoso Kiosk (self-hosted HTTP.sys)"],
        "pids": [w3wp, kp], "controller_pid": b.pid_of("W3SVC"), "services": ["W3SVC", "WAS", "ContosoKiosk"],
        "urls": ["HTTP://*:80/", "HTTP://+:80/"], "fault": None, "scan": {"status": "ok", "holder": "http.sys"},
        "shadowed": {"HTTP://*:80/": "HTTP://+:80/"},
        "iis": [{"site": "Default Web Site", "site_id": 1, "app_pool": "DefaultAppPool"}],
        "notes": "HTTP://+:80/ (strong wildcard) receives every request; IIS's HTTP://*:80/ never does"},
        "2025-05-12T08:14:35Z",
        extra={"iis_sites.txt": sites_text([("Default Web Site", 1, "Started", r"%SystemDrive%\inetpub\wwwroot",
                                             ["http *:80:"])]),
               "iis_apppools.txt": apppools_text([("DefaultAppPool", "Started")])})


IMAGE_PATHS_BEYOND = {
    "vmms.exe": SYS32 + "vmms.exe", "vmcompute.exe": SYS32 + "vmcompute.exe",
    "Contoso.Kiosk.Host.exe": "C:\\Program Files\\Contoso\\Kiosk\\Contoso.Kiosk.Host.exe",
}
