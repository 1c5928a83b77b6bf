"""Windows output formats the engine writes: messages, native text, ConvertTo-Json (5.1), tasklist,
netstat, the object model (PSObj) and Out-String's formatter. Pure functions, no state."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from psrpcore.types import PSCustomObject, PSUInt, add_note_property

from remote.lab import api

CRLF = "\r\n"

# --- messages Windows prints (sources: corpus NOTES.md; PowerShell's resource strings) -------------------

ELEVATION_NETSH = "The requested operation requires elevation (Run as administrator)."  # NOTES §7
ELEVATION_NETSTAT = "The requested operation requires elevation."  # netstat -b without admin (NOTES §4)
NOT_RECOGNIZED = ("The term '{0}' is not recognized as the name of a cmdlet, function, script file, or operable "
                  "program. Check the spelling of the name, or if a path was included, verify that the path is "
                  "correct and try again.")
IPLISTEN_TITLE = "IP addresses present in the IP listen list:"  # raw/iplisten/*
IPLISTEN_DASHES = "-" * 43

# System.Management.Automation.ErrorCategory
CAT_NOT_SPECIFIED, CAT_OPEN_ERROR, CAT_CLOSE_ERROR = 0, 1, 2
CAT_INVALID_ARGUMENT, CAT_INVALID_OPERATION = 5, 7
CAT_METADATA_ERROR, CAT_OBJECT_NOT_FOUND, CAT_PERMISSION_DENIED = 10, 13, 18


class UInt32(int):
    """A System.UInt32 value (becomes psrpcore ``PSUInt`` on the wire; a plain int is an Int32)."""

    __slots__ = ()


PSInt = int  # System.Int32: psrpcore serializes a Python int as <I32>


class Terminate(Exception):
    """A terminating error: ends the statement (a failed pipeline when not inside a script)."""

    def __init__(self, spec: api.ErrorSpec):
        super().__init__(spec.message)
        self.spec = spec


def not_found_error(name: str) -> api.ErrorSpec:
    return api.ErrorSpec(
        message=NOT_RECOGNIZED.format(name), fully_qualified_error_id="CommandNotFoundException",
        category=CAT_OBJECT_NOT_FOUND, exception_type="System.Management.Automation.CommandNotFoundException",
        target=name)


# --- text helpers ------------------------------------------------------------------------------------------


def native_lines(text: str) -> list[str]:
    """A native program's stdout as PowerShell reads it: one string per line (CRLF, LF or CR end a
    line; a final line ending does not make an extra empty line)."""
    if not text:
        return []
    parts = re.split(r"\r\n|\n|\r", text)
    if parts and parts[-1] == "":
        parts.pop()
    return parts


class NativeLine(str):
    """One stdout line of a native command; remembers which run it came from (for Out-String)."""

    source: "NativeOutput"


@dataclass(eq=False)
class NativeOutput:
    text: str
    lines: list[NativeLine] = field(default_factory=list)


def native_output(text: str) -> list[NativeLine]:
    out = NativeOutput(text)
    for ln in native_lines(text):
        nl = NativeLine(ln)
        nl.source = out
        out.lines.append(nl)
    return list(out.lines)


def text_output(lines: Iterable[str]) -> list[NativeLine]:
    """Native output built from lines (CRLF-terminated, as a console program writes them)."""
    lines = list(lines)
    return native_output("".join(ln + CRLF for ln in lines))


# --- JSON as Windows PowerShell 5.1's ConvertTo-Json writes it ---------------------------------------------
# Compact form: System.Web.Script.Serialization.JavaScriptSerializer (escapes < > & ' as \u00xx,
# lower-case hex). Pretty form: ConvertToJsonCommand.ConvertToPrettyJsonString (4-space indent,
# two spaces after ':'; nested values aligned after the key), ported below line for line.


_JS_PLAIN = re.compile(r'^[^"\\\x00-\x1f<>&\']*$')


def _js_string(s: str) -> str:
    if _JS_PLAIN.match(s):
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or ch in "<>&'":
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def json_compact(value: Any, depth: int = 2, _level: int = 0) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value) if value != int(value) else str(int(value))
    if isinstance(value, str):
        return _js_string(str(value))
    if isinstance(value, PSObj):
        if _level > depth:
            return _js_string(value.to_string or "")
        return "{" + ",".join(_js_string(k) + ":" + json_compact(v, depth, _level + 1)
                              for k, v in value.props.items()) + "}"
    if isinstance(value, dict):
        if _level > depth:
            return _js_string("System.Collections.Hashtable")
        return "{" + ",".join(_js_string(str(k)) + ":" + json_compact(v, depth, _level + 1)
                              for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_compact(v, depth, _level + 1) for v in value) + "]"
    return _js_string(str(value))


def json_pretty(json: str) -> str:
    """ConvertToPrettyJsonString (Windows PowerShell 5.1)."""
    if not json.startswith("{") and not json.startswith("["):
        return json
    out: list[str] = []
    if json.startswith("{"):
        out.append("{")
        _pretty_dict(json, 1, out, "", 0)
    else:
        out.append("[")
        _pretty_list(json, 1, out, "", 0)
    return "".join(out)


def _pretty_quoted(json: str, index: int, out: list[str]) -> int:
    i = index
    while i < len(json):
        out.append(json[i])
        if json[i] == '"':
            j, escaped = i, False
            while j > 0:
                j -= 1
                if json[j] != "\\":
                    break
                escaped = not escaped
            if not escaped:
                return i
        i += 1
    raise ValueError("unterminated string")


def _pretty_list(json: str, index: int, out: list[str], pad: str, spaces: int) -> int:
    out.append(CRLF)
    new_pad = pad + " " * spaces + " " * 4
    head = True
    i = index
    while i < len(json):
        c = json[i]
        if c == "{":
            out.append(new_pad + c)
            i = _pretty_dict(json, i + 1, out, new_pad, 0)
            head = False
        elif c == "[":
            out.append(new_pad + c)
            i = _pretty_list(json, i + 1, out, new_pad, 0)
            head = False
        elif c == "]":
            out.append(CRLF + pad + " " * spaces + c)
            return i
        elif c == '"':
            if head:
                out.append(new_pad)
            out.append(c)
            i = _pretty_quoted(json, i + 1, out)
            head = False
        elif c == ",":
            out.append("," + CRLF)
            head = True
        else:
            if head:
                out.append(new_pad)
            out.append(c)
            head = False
        i += 1
    raise ValueError("unterminated list")


def _pretty_dict(json: str, index: int, out: list[str], pad: str, spaces: int) -> int:
    out.append(CRLF)
    new_pad = pad + " " * spaces + " " * 4
    head, before_quote, new_space = True, True, 0
    i = index
    while i < len(json):
        c = json[i]
        if c == "{":
            out.append(c)
            i = _pretty_dict(json, i + 1, out, new_pad, new_space)
            head = False
        elif c == "[":
            out.append(c)
            i = _pretty_list(json, i + 1, out, new_pad, new_space)
            head = False
        elif c == "}":
            out.append(CRLF + pad + " " * spaces + c)
            return i
        elif c == '"':
            if head:
                out.append(new_pad)
            out.append(c)
            end = _pretty_quoted(json, i + 1, out)
            if before_quote:
                new_space += end - i + 1
            i = end
            head = False
        elif c == ":":
            out.append(":  ")
            new_space += 3
            head = False
            before_quote = False
        elif c == ",":
            out.append("," + CRLF)
            head, before_quote, new_space = True, True, 0
        else:
            if head:
                out.append(new_pad)
            out.append(c)
            if before_quote:
                new_space += 1
            head = False
        i += 1
    raise ValueError("unterminated object")


def convert_to_json(items: list[Any], compress: bool = False, depth: int = 2) -> Optional[str]:
    """ConvertTo-Json of the pipeline input: one object → that object, several → an array."""
    if not items:
        return None
    value: Any = items[0] if len(items) == 1 else list(items)
    compact = json_compact(value, depth)
    return compact if compress else json_pretty(compact)


def plain(value: Any) -> Any:
    """A JSON-comparable plain Python value (psrpcore ints → int, PSObj → dict)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, PSObj):
        return {k: plain(v) for k, v in value.props.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# --- tasklist /svc (NOTES §5; raw/tasklist/htb-academy-winlpe-srv01-ws2016-svc.txt) ------------------------

TASKLIST_SVC_HEADER = ["Image Name                     PID Services",
                       "========================= ======== ============================================"]
_TASKLIST_SVC_COL = 35
_TASKLIST_SVC_MAX = 43  # longest services text per line seen in the sample (col 35..78)


def tasklist_svc_entry(image: str, pid: int, services: list[str]) -> list[str]:
    head = image[:25].ljust(25) + " " + str(pid).rjust(8) + " "
    if not services:
        return [head + "N/A"]
    names = sorted(services, key=str.lower)
    lines: list[str] = []
    cur = ""
    for k, name in enumerate(names):
        piece = name + ("," if k < len(names) - 1 else "")
        cand = piece if not cur else cur + " " + piece
        if cur and len(cand) > _TASKLIST_SVC_MAX:
            lines.append(cur)
            cur = piece
        else:
            cur = cand
    lines.append(cur)
    return [head + lines[0]] + [" " * _TASKLIST_SVC_COL + ln for ln in lines[1:]]


def format_tasklist_svc(entries: Iterable[tuple[str, int, list[str]]]) -> str:
    lines = [""] + TASKLIST_SVC_HEADER
    for image, pid, services in entries:
        lines.extend(tasklist_svc_entry(image, pid, services))
    return "".join(ln + CRLF for ln in lines)


def parse_tasklist_svc(text: str) -> list[dict]:
    """Entries of ``tasklist /svc`` output, each with its original lines (for exact re-rendering)."""
    entries: list[dict] = []
    for ln in native_lines(text):
        m = re.match(r"^(.{25}) +(\d+) (.*)$", ln)
        if m and not ln.startswith(" "):
            svcs = m.group(3).strip()
            entries.append({"image": m.group(1).rstrip(), "pid": int(m.group(2)),
                            "services": [] if svcs == "N/A" else [s.strip() for s in svcs.split(",") if s.strip()],
                            "lines": [ln]})
        elif entries and ln.startswith(" " * 20) and ln.strip():
            entries[-1]["services"].extend(s.strip() for s in ln.split(",") if s.strip())
            entries[-1]["lines"].append(ln)
    return entries


def tasklist_mem(pid: int) -> str:
    """A stable, plausible working-set figure for ``tasklist`` without /svc (not in the evidence)."""
    kb = 4_000 + (pid * 7919) % 60_000 if pid > 4 else (8 if pid == 0 else 152)
    return f"{kb:,} K"


# --- netstat ------------------------------------------------------------------------------------------------

NETSTAT_HEADER = "  Proto  Local Address          Foreign Address        State           PID"


def netstat_row(proto: str, local: str, foreign: str, state: str, pid: int) -> str:
    """One ``netstat -ano`` row: 2 spaces, proto in 7, addresses in 23 (22 + a space), state in 16."""
    return "  " + proto.ljust(7) + local.ljust(22) + " " + foreign.ljust(22) + " " + state.ljust(16) + str(pid)


@dataclass
class NetRow:
    proto: str
    local: str
    foreign: str
    state: str
    pid: int
    line: str

    @property
    def local_addr(self) -> str:
        return self.local.rsplit(":", 1)[0]

    @property
    def local_port(self) -> Optional[int]:
        p = self.local.rsplit(":", 1)[-1]
        return int(p) if p.isdigit() else None

    @property
    def ipv6(self) -> bool:
        return self.local.startswith("[")


def parse_netstat_row(line: str) -> Optional[NetRow]:
    parts = line.split()
    if len(parts) < 4 or parts[0].upper() not in ("TCP", "UDP") or not parts[-1].isdigit():
        return None
    return NetRow(parts[0].upper(), parts[1], parts[2], " ".join(parts[3:-1]), int(parts[-1]), line)


def addr_sort_key(addr: str) -> tuple:
    a = addr.strip("[]").split("%")[0]
    try:
        ip = ipaddress.ip_address(a)
        return (ip.version, ip.packed)
    except ValueError:
        return (9, a.encode())


def netstat_sort_key(r: NetRow) -> tuple:
    fa, _, fp = r.foreign.rpartition(":")
    return (0 if r.proto == "TCP" else 1, 1 if r.ipv6 else 0, addr_sort_key(r.local_addr), r.local_port or 0,
            addr_sort_key(fa) if fa else (9, b""), int(fp) if fp.isdigit() else 0)


# --- the object model --------------------------------------------------------------------------------------


class PSObj:
    """An object in the pipeline: ordered properties, .NET type names, its ToString()."""

    __slots__ = ("type_names", "props", "to_string", "origin")

    def __init__(self, type_names: list[str], props: dict, to_string: Optional[str] = None,
                 origin: Optional[str] = None):
        self.type_names = list(type_names)
        self.props = dict(props)
        self.to_string = to_string
        self.origin = origin  # "service" / "process" / … (what the object was made from)

    def get(self, name: str) -> Any:
        if name in self.props:
            return self.props[name]
        for k, v in self.props.items():
            if k.lower() == name.lower():
                return v
        return None

    def has(self, name: str) -> bool:
        return any(k.lower() == name.lower() for k in self.props)


def psrp_object(obj: PSObj) -> PSCustomObject:
    """The psrpcore object the protocol server serializes (extended properties, real type names)."""
    o = PSCustomObject()
    for k, v in obj.props.items():
        add_note_property(o, k, _psrp_value(v))
    o.PSObject.type_names = list(obj.type_names)
    if obj.to_string is not None:
        o.PSObject.to_string = obj.to_string
    return o


def _psrp_value(v: Any) -> Any:
    if isinstance(v, UInt32):
        return PSUInt(int(v))
    if isinstance(v, PSObj):
        return psrp_object(v)
    if isinstance(v, NativeLine):
        return str(v)
    if isinstance(v, list):
        return [_psrp_value(x) for x in v]
    return v


def wire(item: Any) -> Any:
    if isinstance(item, PSObj):
        return psrp_object(item)
    if isinstance(item, str):
        return str(item)
    return item


def display(v: Any) -> str:
    """A value as PowerShell's formatter prints it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, PSObj):
        return v.to_string or ""
    if isinstance(v, list):
        inner = ", ".join(display(x) for x in v)
        return "{" + inner + "}"
    return str(v)


def selected_to_string(props: dict) -> str:
    return "@{" + "; ".join(f"{k}={display(v)}" for k, v in props.items()) + "}"


# --- Out-String (the formatter, reduced: tables for ≤ 4 properties, lists for more) -----------------------

_VIEWS: dict[str, list[str]] = {
    "System.ServiceProcess.ServiceController": ["Status", "Name", "DisplayName"],
    "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Service":
        ["ProcessId", "Name", "StartMode", "State", "Status", "ExitCode"],
    "System.Management.ManagementObject#root\\cimv2\\Win32_Service":
        ["ExitCode", "Name", "ProcessId", "StartMode", "State", "Status"],
    "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_OperatingSystem":
        ["SystemDirectory", "Organization", "BuildNumber", "RegisteredUser", "SerialNumber", "Version"],
    "System.Diagnostics.Process": ["Id", "ProcessName", "Path"],
    # GUESS (no capture): Get-NetTCPConnection's table view as Microsoft's documentation shows it
    "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetTCPConnection":
        ["LocalAddress", "LocalPort", "RemoteAddress", "RemotePort", "State", "AppliedSetting", "OwningProcess"],
}


def _table(objs: list[PSObj], cols: list[str], width: int) -> list[str]:
    if cols == ["Status", "Name", "DisplayName"]:  # Get-Service's fixed 5.1 view (raw/services/msdocs-…)
        rows = ["Status   Name               DisplayName", "------   ----               -----------"]
        for o in objs:
            name, dn = display(o.get("Name")), display(o.get("DisplayName"))
            name = name if len(name) <= 18 else name[:15] + "..."
            room = max(width - 28, 3)
            dn = dn if len(dn) <= room else dn[:room - 3] + "..."
            rows.append(display(o.get("Status")).ljust(8) + " " + name.ljust(18) + " " + dn)
        return rows
    cells = [[display(o.get(c)) for c in cols] for o in objs]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    def line(vals: list[str]) -> str:
        s = " ".join(v.ljust(widths[i]) if i < len(vals) - 1 else v for i, v in enumerate(vals))
        return s[:width]
    return [line(cols), line(["-" * len(c) for c in cols])] + [line(r) for r in cells]


def format_objects(items: list[Any], width: int = 120) -> str:
    """What ``Out-String`` makes of objects (and strings) in one run."""
    out: list[str] = []
    pending: list[PSObj] = []
    in_matches = False

    def flush() -> None:
        if not pending:
            return
        first = pending[0]
        cols = next((_VIEWS[t] for t in first.type_names if t in _VIEWS), None)
        if cols is None:
            cols = list(first.props)
            if len(cols) >= 5:
                out.append("")
                for o in pending:
                    w = max(len(k) for k in o.props) if o.props else 0
                    out.append("")
                    out.extend(f"{k.ljust(w)} : {display(v)}" for k, v in o.props.items())
                out.extend(["", ""])
                pending.clear()
                return
        out.append("")
        out.extend(_table(pending, cols, width))
        out.extend(["", ""])
        pending.clear()

    for it in items:
        if isinstance(it, PSObj) and it.origin == "matchinfo":  # Select-String: its lines (GUESS: spacing)
            flush()
            if not in_matches:
                out.append("")
                in_matches = True
            out.append(it.to_string or "")
            continue
        if in_matches:
            out.extend(["", ""])
            in_matches = False
        if isinstance(it, PSObj):
            if pending and pending[0].type_names[:1] != it.type_names[:1]:
                flush()
            pending.append(it)
        else:
            flush()
            out.append(display(it))
    flush()
    if in_matches:
        out.extend(["", ""])
    return "".join(ln + CRLF for ln in out)


