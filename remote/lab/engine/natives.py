"""Native commands (netstat, netsh http, tasklist, whoami, hostname, iisreset…) answered from the machine."""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from typing import Optional



from remote.lab.engine.formats import *  # noqa: F401,F403
from remote.lab.engine.script import *  # noqa: F401,F403

# --- native commands ----------------------------------------------------------------------------------------


def _flags(argv: list[str]) -> tuple[set[str], list[str]]:
    letters: set[str] = set()
    rest: list[str] = []
    for a in argv:
        if len(a) > 1 and a[0] in "-/" and a[1:].isalpha():
            letters.update(a[1:].lower())
        else:
            rest.append(a)
    return letters, rest


@native("netstat")
def _netstat(ctx: Context, argv: list[str], _input: list) -> list:
    letters, rest = _flags(argv)
    if "b" in letters and not ctx.m.elevated:
        return text_output([ELEVATION_NETSTAT, ""])
    text = ctx.m.text("netstat")
    if text is None:
        return []
    proto = None
    if "p" in letters and rest:
        proto = rest[0].lower()
    if letters <= {"a", "n", "o"} and {"a", "o"} <= letters and proto is None:
        return native_output(text)  # netstat -ano: the evidence itself
    out: list[str] = []
    for ln in native_lines(text):
        r = parse_netstat_row(ln)
        if r is None:
            if "o" not in letters and ln.rstrip().endswith("PID"):
                ln = ln.rstrip()[:-3].rstrip()
            out.append(ln)
            continue
        if proto in ("tcp", "udp") and (r.proto.lower() != proto or r.ipv6):
            continue
        if proto in ("tcpv6", "udpv6") and (r.proto.lower() != proto[:3] or not r.ipv6):
            continue
        if "a" not in letters and r.state in ("LISTENING", "") :
            continue
        row = ln if "o" in letters else ln.rstrip()[: -len(str(r.pid))].rstrip()
        out.append(row)
        if "b" in letters:
            out.extend(_netstat_owner(ctx, r.pid))
    return text_output(out)


def _netstat_owner(ctx: Context, pid: int) -> list[str]:
    if pid in (0, 4):
        return [" Can not obtain ownership information"]
    p = ctx.m.process(pid)
    lines = []
    svcs = [s["Name"] for s in ctx.m.services() if s.get("ProcessId") == pid and s.get("State") == "Running"]
    if len(svcs) == 1:
        lines.append("  " + svcs[0])
    lines.append(" [" + (p["image"] if p else "System") + "]")
    return lines


_NETSH_HTTP_SHOW = ("servicestate", "urlacl", "iplisten", "sslcert", "timeout", "cachestate", "setting")


@native("netsh")
def _netsh(ctx: Context, argv: list[str], _input: list) -> list:
    words = [a for a in argv if a]
    low = [w.lower() for w in words]
    if not low:
        return text_output(["", "Usage: netsh [-a AliasFile] [-c Context] [-r RemoteMachine] [-u [DomainName\\]UserName] "
                            "[-p Password | *]", "             [Command | -f ScriptFile]", ""])
    if low[0] == "http":
        if not ctx.m.elevated:
            return text_output([ELEVATION_NETSH, ""])
        if len(low) >= 3 and low[1] == "show":
            what = low[2]
            opts = dict(w.split("=", 1) for w in low[3:] if "=" in w)
            if what == "servicestate":
                view = opts.get("view", "session")
                text = ctx.m.text("servicestate_session" if view.startswith("s") else "servicestate")
                return native_output(text) if text is not None else []
            if what in ("urlacl", "iplisten"):
                text = ctx.m.text(what)
                return native_output(text) if text is not None else []
            if what == "sslcert":
                text = ctx.m.text("sslcert")
                return native_output(text if text is not None else SSLCERT_EMPTY)
        if len(low) >= 3 and low[1] in ("add", "delete") and low[2] == "iplisten":
            return _netsh_iplisten(ctx, low[1], words[3:])
        return text_output(["The following command was not found: " + " ".join(words) + "."])
    if low[0] in ("int", "interface") and len(low) >= 4 and low[2] == "show" and low[3] == "excludedportrange":
        return _netsh_excluded(ctx, low[1], low[4:])
    if low[0] == "branchcache" and len(low) >= 3 and low[1] == "set" and low[2] == "service":
        if not ctx.m.elevated:
            return text_output([ELEVATION_NETSH, ""])
        opts = dict(w.split("=", 1) for w in low[3:] if "=" in w)
        mode = opts.get("mode", "")
        if not ctx.m.has_service("PeerDistSvc"):
            return text_output(["The following command was not found: " + " ".join(words) + "."])
        if mode == "disabled":
            changed = ctx.m.set_service_running("PeerDistSvc", False)
            changed = ctx.m.set_start_mode("PeerDistSvc", "Disabled") or changed
        elif mode in ("local", "distributed", "hostedclient", "hostedserver"):
            changed = ctx.m.set_start_mode("PeerDistSvc", ctx.m.original_start_mode("PeerDistSvc", "Manual"))
            changed = ctx.m.set_service_running("PeerDistSvc", True) or changed
        else:
            return text_output(["", "The parameter is incorrect.", ""])
        ctx.changed = ctx.changed or changed
        return text_output(["Succeeded.", ""])
    return text_output(["The following command was not found: " + " ".join(words) + "."])


# No capture of an empty sslcert listing exists: the title block alone is a guess (the title and dash
# line are from raw/sslcert/en-watson-0.0.0.0-443-older-fieldset.txt).
SSLCERT_EMPTY = "\r\nSSL Certificate bindings:\r\n-------------------------\r\n\r\n"


def _excluded_empty(proto: str) -> str:
    """An empty excluded-port-range table: raw/excludedportrange/zh-cn-clash-verge-1688-empty-table.txt's
    shape with the English labels of en-chocolatey-test-env-68-win10.txt."""
    return (f"\r\nProtocol {proto} Port Exclusion Ranges\r\n\r\nStart Port    End Port\r\n----------    --------\r\n"
            "\r\n* - Administered port exclusions.\r\n\r\n")


def _netsh_excluded(ctx: Context, family: str, rest: list[str]) -> list:
    """netsh int ipv4|ipv6|ip show excludedportrange [protocol=]tcp|udp (the bundle's tcp listing; no
    elevation needed — the corpus captures come from ordinary prompts too)."""
    opts = dict(w.split("=", 1) for w in rest if "=" in w)
    proto = opts.get("protocol") or next((w for w in rest if "=" not in w), "")
    if family not in ("ipv4", "ipv6", "ip") or proto not in ("tcp", "udp"):
        return text_output(["", "The parameter is incorrect.", ""])
    if proto != "tcp":
        return native_output(_excluded_empty(proto))
    text = ctx.m.text("excludedportrange6" if family == "ipv6" else "excludedportrange")
    return native_output(text if text is not None else _excluded_empty(proto))


def _netsh_iplisten(ctx: Context, verb: str, rest: list[str]) -> list:
    addr = None
    for w in rest:
        k, eq, v = w.partition("=")
        if eq and k.lower() in ("ipaddress", "address"):
            addr = v
        elif not eq:
            addr = w
    try:
        ip = ipaddress.ip_address((addr or "").strip("[]"))
    except ValueError:
        return text_output(["", "The parameter is incorrect.", ""])
    addr = str(ip)
    current = ctx.m.iplisten()
    present = [a for a in current if a.lower() == addr.lower()]
    if verb == "add":
        if present:
            return text_output(["", "IP address add failed, Error: 183",
                                "Cannot create a file when that file already exists.", ""])
        ctx.m.set_iplisten(current + [addr])
        ctx.changed = True
        return text_output(["", "IP address successfully added", ""])
    if not present:
        return text_output(["", "IP address delete failed, Error: 2", "The system cannot find the file specified.", ""])
    ctx.m.set_iplisten([a for a in current if a.lower() != addr.lower()])
    ctx.changed = True
    return text_output(["", "IP address successfully deleted", ""])


@native("tasklist")
def _tasklist(ctx: Context, argv: list[str], _input: list) -> list:
    low = [a.lower() for a in argv]
    svc = "/svc" in low or "-svc" in low
    pid_filter: Optional[int] = None
    name_filter: Optional[str] = None
    for k, a in enumerate(low):
        if a in ("/fi", "-fi") and k + 1 < len(argv):
            m = re.match(r"^\s*(pid|imagename)\s+eq\s+(.+?)\s*$", argv[k + 1], re.I)
            if m and m.group(1).lower() == "pid" and m.group(2).isdigit():
                pid_filter = int(m.group(2))
            elif m:
                name_filter = m.group(2).lower()
    if svc and pid_filter is None and name_filter is None:
        text = ctx.m.text("tasklist")
        if text is not None:
            return native_output(text)
    procs = ctx.m.processes_in_task_order()
    if pid_filter is not None:
        procs = [p for p in procs if p["Id"] == pid_filter]
    if name_filter is not None:
        procs = [p for p in procs if fnmatch.fnmatch(p["image"].lower(), name_filter)]
    if not procs:
        return text_output(["INFO: No tasks are running which match the specified criteria."])
    if svc:
        return native_output(format_tasklist_svc((p["image"], p["Id"], ctx.m.running_services_of(p["Id"]))
                                                 for p in procs))
    lines = ["", "Image Name                     PID Session Name        Session#    Mem Usage",
             "========================= ======== ================ =========== ============"]
    for p in procs:
        sess = p.get("SessionId", 0) or 0
        lines.append(p["image"][:25].ljust(25) + " " + str(p["Id"]).rjust(8) + " "
                     + ("Services" if sess == 0 else "RDP-Tcp#0").ljust(16) + " " + str(sess).rjust(11) + " "
                     + tasklist_mem(p["Id"]).rjust(12))
    return text_output(lines)


@native("whoami")
def _whoami(ctx: Context, argv: list[str], _input: list) -> list:
    return text_output([ctx.m.user])


@native("hostname")
def _hostname(ctx: Context, argv: list[str], _input: list) -> list:
    return text_output([ctx.m.hostname])


IIS_SERVICES = ("W3SVC", "WAS", "IISADMIN", "FTPSVC", "MSFTPSVC", "WMSVC")


@native("iisreset")
def _iisreset(ctx: Context, argv: list[str], _input: list) -> list:
    low = {a.lower().lstrip("/-") for a in argv}
    if not ctx.m.elevated:
        return text_output(["Access denied, you must be an administrator of the remote computer to use this",
                            "command. Either have your account added to the administrator local group of",
                            "the remote computer or to the domain administrator global group."])
    present = [s for s in IIS_SERVICES if ctx.m.has_service(s)]
    lines: list[str] = []
    if "stop" in low or not (low & {"start", "status"}):
        lines += ["", "Attempting stop..."]
        for name in present:  # W3SVC first: it depends on WAS
            ctx.changed = ctx.m.set_service_running(name, False) or ctx.changed
        lines.append("Internet services successfully stopped")
    if "start" in low or not (low & {"stop", "status"}):
        lines += ["", "Attempting start..."]
        for name in reversed(present):
            if ctx.m.service(name).get("StartMode") != "Disabled" and (
                    name in ("W3SVC", "WAS") or ctx.m.original_state(name) == "Running"):
                ctx.changed = ctx.m.set_service_running(name, True) or ctx.changed
        lines.append("Internet services successfully started")
    if "status" in low:
        lines.append("")
        for name in present:
            s = ctx.m.service(name)
            lines.append(f"Status for {s.get('DisplayName')} ( {name} ) : {s.get('State')}")
    lines.append("")
    return text_output(lines)


