"""A small PowerShell-pipeline engine: what a Windows host answers, written from how Windows behaves.

The lab's protocol server hands us ``api.Statement``s (decoded from PSRP CREATE_PIPELINE); we run
them against an emulated machine (``host.Machine``: the evidence bundle plus its mutable state) and
return an ``api.Execution``. This module knows PowerShell and the Windows tools (netstat, netsh http,
tasklist, whoami, hostname, iisreset, the service cmdlets, CIM/WMI); ``host.py`` knows the machine.
It is independent of port80's own collector and parsers on purpose: the lab must not share the
tool's assumptions.

Semantics (each decision below is what Windows PowerShell 5.1 does; sources in the comments):

* A pipeline added as commands (``add_cmdlet``) whose command cannot be found fails at pipeline
  construction, before any command of that statement runs: ``CommandNotFoundException`` is the
  pipeline's terminating error (state Failed).
* Several statements (``AddStatement``): the server runs them as a *batch* (PowerShell.cs
  ``BeginBatchInvoke`` → ``BatchInvocationCallback``/``DoRemainingBatchCommands``, one statement
  after the other). ``ServerPowerShellDriver.HandlePowerShellInvocationStateChanged`` returns early
  only for an intermediate *Completed* state ("If completed successfully then allow extra commands
  to run"); on *Failed* it sends the remaining data and the Failed state to the client ("For failed
  or stopped state, extra commands cannot run and we allow this command invocation to finish") and
  unregisters its stream handlers. So the client sees the output of the statements before the
  failing one, then the pipeline Failed with that error; nothing of the later statements reaches
  it. The local batch itself continues with ``$ErrorActionPreference`` Continue
  (``BatchInvocationCallback`` appends the exception and calls ``DoRemainingBatchCommands``), so
  later statements still run on the host: their side effects (a service stopped…) happen, their
  output is lost. We do the same. Sources: github.com/PowerShell/PowerShell
  src/System.Management.Automation/engine/hostifaces/PowerShell.cs and
  engine/remoting/server/ServerPowerShellDriver.cs.
* Inside a *script* (``add_script`` / ``Invoke-Expression``) an unknown command is a
  statement-terminating error: the error record is written, the script goes on with its next
  statement and the pipeline ends Completed (``PowerShell.Create().AddScript("oops").Invoke()``
  does not throw, it sets HadErrors: github.com/PowerShell/PowerShell/issues/20079; pypsrp's
  ``test_psrp_error_failed`` needs ``$ErrorActionPreference = 'Stop'`` to make a script fail).
* Non-terminating errors (service not found, access denied…) go to the error stream; the pipeline
  continues and ends Completed.
* A native command's stdout arrives as one string per line; ``| Out-String`` joins them with CRLF
  and ends with CRLF; ``Out-String -Stream`` gives one string per line.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

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
        if isinstance(it, PSObj):
            if pending and pending[0].type_names[:1] != it.type_names[:1]:
                flush()
            pending.append(it)
        else:
            flush()
            out.append(display(it))
    flush()
    return "".join(ln + CRLF for ln in out)


# --- the script tokenizer ("a simple command line": words, quotes, -Name value, a,b,c, pipes) -------------

class ScriptTooComplex(Exception):
    """Beyond a simple command line; ``word`` is what PowerShell would have tried to run."""

    def __init__(self, word: str):
        super().__init__(word)
        self.word = word


@dataclass
class Tok:
    value: Any
    quoted: bool = False
    param: Optional[str] = None  # "-Name" → "Name"
    attached: Any = None  # "-Name:value" → value (``_NOVALUE`` when absent)


_NOVALUE = object()
_WORD_END = set(" \t\r\n;|,'\"{}()")


def tokenize_script(text: str) -> list[list[list[Tok]]]:
    """Statements → commands → tokens. Raises ScriptTooComplex for expressions, variables, blocks
    other than a simple ``{ $_.Prop -op value }``, redirections…"""
    statements: list[list[list[Tok]]] = []
    cmds: list[list[Tok]] = []
    toks: list[Tok] = []
    i, n = 0, len(text)

    def end_command() -> None:
        nonlocal toks
        if toks:
            cmds.append(toks)
        toks = []

    def end_statement() -> None:
        nonlocal cmds
        end_command()
        if cmds:
            statements.append(cmds)
        cmds = []

    def read_value(i: int) -> tuple[Any, bool, int]:
        c = text[i]
        if c == "'":
            j, buf = i + 1, []
            while j < n:
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    return "".join(buf), True, j + 1
                buf.append(text[j])
                j += 1
            raise ScriptTooComplex(text[i:].split()[0])
        if c == '"':
            j, buf = i + 1, []
            while j < n:
                ch = text[j]
                if ch == "`" and j + 1 < n:
                    buf.append({"n": "\n", "r": "\r", "t": "\t", "0": "\0"}.get(text[j + 1], text[j + 1]))
                    j += 2
                    continue
                if ch == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    return "".join(buf), True, j + 1
                if ch == "$" and j + 1 < n and (text[j + 1].isalnum() or text[j + 1] in "_({:"):
                    raise ScriptTooComplex('"' + text[i + 1:j + 1])
                buf.append(ch)
                j += 1
            raise ScriptTooComplex(text[i:].split()[0])
        if c == "{":
            depth, j, q = 0, i, None
            while j < n:
                ch = text[j]
                if q:
                    if ch == q:
                        q = None
                elif ch in "'\"":
                    q = ch
                elif ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        return ScriptBlock(text[i + 1:j]), False, j + 1
                j += 1
            raise ScriptTooComplex("{")
        if c in "$@([" or c == ")":
            raise ScriptTooComplex(re.split(r"\s", text[i:], maxsplit=1)[0])
        j = i
        while j < n and text[j] not in _WORD_END:
            if text[j] == "`" and j + 1 < n:
                j += 2
                continue
            j += 1
        word = text[i:j]
        if word in (">", ">>", "2>", "2>&1", "*>") or word.startswith(("2>", ">")):
            raise ScriptTooComplex(word)
        return word, False, j

    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
        elif c == "`" and i + 1 < n and text[i + 1] in "\r\n":
            i += 2
        elif c in "\r\n;":
            end_statement()
            i += 1
        elif c == "|":
            if not toks:
                raise ScriptTooComplex("|")
            end_command()
            i += 1
        elif c == "#":
            while i < n and text[i] not in "\r\n":
                i += 1
        elif c == "&" and not toks:
            i += 1
        else:
            value, quoted, i = read_value(i)
            tok = Tok(value, quoted)
            if not quoted and isinstance(value, str) and re.match(r"^-[A-Za-z_][\w-]*(:.*)?$", value) and toks:
                name, colon, rest = value[1:].partition(":")
                tok.param = name
                tok.attached = _NOVALUE
                if colon:
                    if rest:
                        tok.attached = rest
                    else:  # -Name: value
                        while i < n and text[i] in " \t":
                            i += 1
                        if i < n and text[i] not in "\r\n;|":
                            v, _q, i = read_value(i)
                            tok.attached = v
            # a,b,c → one list argument
            values = [tok.attached if tok.param is not None else tok.value]
            j = i
            while True:
                k = j
                while k < n and text[k] in " \t":
                    k += 1
                if k < n and text[k] == ",":
                    k += 1
                    while k < n and text[k] in " \t":
                        k += 1
                    if k >= n or text[k] in "\r\n;|":
                        raise ScriptTooComplex(",")
                    v, _q, j = read_value(k)
                    values.append(v)
                    continue
                break
            if len(values) > 1:
                if tok.param is not None:
                    tok.attached = values
                else:
                    tok.value, tok.quoted = values, True
                i = j
            toks.append(tok)
    end_statement()
    return statements


@dataclass
class ScriptBlock:
    text: str

    def __str__(self) -> str:
        return self.text


# --- binding ------------------------------------------------------------------------------------------------


@dataclass
class Param:
    name: str
    kind: str = "str"  # str | int | switch | list | any
    position: Optional[int] = None
    aliases: tuple[str, ...] = ()


@dataclass
class Cmdlet:
    name: str
    params: list[Param]
    run: Callable[..., list]
    noun_verb: str = ""  # Microsoft.PowerShell.Commands.<X>Command for error ids
    changes_state: bool = False


class Args:
    """One command's arguments: ('param', name, value|_NOVALUE) and ('pos', value) items."""

    def __init__(self, items: list[tuple]):
        self.items = items

    @classmethod
    def from_psrp(cls, params: list[tuple[Optional[str], Any]]) -> "Args":
        items: list[tuple] = []
        for name, value in params:
            if name is None:
                items.append(("pos", value))
            else:
                items.append(("param", name.lstrip("-"), True if value is None else value))
        return cls(items)

    @classmethod
    def from_tokens(cls, toks: list[Tok]) -> "Args":
        items: list[tuple] = []
        for t in toks:
            if t.param is not None:
                items.append(("param", t.param, t.attached))
            else:
                items.append(("pos", t.value))
        return cls(items)

    def native_argv(self) -> list[str]:
        argv: list[str] = []
        for it in self.items:
            if it[0] == "param":
                argv.append("-" + it[1])
                if it[2] is not _NOVALUE and it[2] is not True:
                    argv.append(_argstr(it[2]))
            else:
                argv.append(_argstr(it[1]))
        return argv


def _argstr(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_argstr(x) for x in v)
    if isinstance(v, bool):
        return "True" if v else "False"
    return str(v)


def bind(cmd: Cmdlet, args: Args) -> dict[str, Any]:
    """Parameter binding (names case-insensitive, unique prefixes and aliases accepted)."""
    bound: dict[str, Any] = {}
    positional: list[Any] = []
    items = list(args.items)
    k = 0
    while k < len(items):
        it = items[k]
        if it[0] == "pos":
            positional.append(it[1])
            k += 1
            continue
        name, value = it[1], it[2]
        p = _find_param(cmd, name)
        if p is None:
            raise Terminate(api.ErrorSpec(
                message=f"A parameter cannot be found that matches parameter name '{name}'.",
                fully_qualified_error_id=f"NamedParameterNotFound,{_cmd_class(cmd)}",
                category=CAT_INVALID_ARGUMENT,
                exception_type="System.Management.Automation.ParameterBindingException",
                target=None, command_name=cmd.name))
        if p.kind == "switch":
            if value is _NOVALUE:
                value = True
            bound[p.name] = bool(value) if not isinstance(value, str) else value.lower() not in ("$false", "false", "0")
            k += 1
            continue
        if value is _NOVALUE:
            if k + 1 < len(items) and items[k + 1][0] == "pos":
                value = items[k + 1][1]
                k += 1
            else:
                raise Terminate(api.ErrorSpec(
                    message=(f"Missing an argument for parameter '{p.name}'. Specify a parameter of type "
                             f"'{_TYPE_NAMES[p.kind]}' and try again."),
                    fully_qualified_error_id=f"MissingArgument,{_cmd_class(cmd)}", category=CAT_INVALID_ARGUMENT,
                    exception_type="System.Management.Automation.ParameterBindingException",
                    command_name=cmd.name))
        bound[p.name] = _convert(cmd, p, value)
        k += 1
    free = sorted((p for p in cmd.params if p.position is not None and p.name not in bound),
                  key=lambda p: p.position)
    for value in positional:
        if not free:
            raise Terminate(api.ErrorSpec(
                message=f"A positional parameter cannot be found that accepts argument '{_argstr(value)}'.",
                fully_qualified_error_id=f"PositionalParameterNotFound,{_cmd_class(cmd)}",
                category=CAT_INVALID_ARGUMENT,
                exception_type="System.Management.Automation.ParameterBindingException", command_name=cmd.name))
        p = free.pop(0)
        bound[p.name] = _convert(cmd, p, value)
    return bound


_TYPE_NAMES = {"str": "System.String", "int": "System.Int32", "list": "System.String[]", "any": "System.Object",
               "switch": "System.Management.Automation.SwitchParameter"}


def _cmd_class(cmd: Cmdlet) -> str:
    return f"Microsoft.PowerShell.Commands.{cmd.noun_verb or cmd.name.replace('-', '')}Command"


def _find_param(cmd: Cmdlet, name: str) -> Optional[Param]:
    low = name.lower()
    for p in cmd.params:
        if p.name.lower() == low or low in (a.lower() for a in p.aliases):
            return p
    cands = [p for p in cmd.params if p.name.lower().startswith(low)]
    return cands[0] if len(cands) == 1 else None


def _convert(cmd: Cmdlet, p: Param, value: Any) -> Any:
    if p.kind == "list":
        vals = value if isinstance(value, (list, tuple)) else [value]
        return [str(v) if not isinstance(v, ScriptBlock) else v for v in vals]
    if p.kind == "int":
        vals = value if isinstance(value, (list, tuple)) else [value]
        try:
            return [int(str(v).strip()) for v in vals]
        except ValueError:
            raise Terminate(api.ErrorSpec(
                message=(f"Cannot bind parameter '{p.name}'. Cannot convert value \"{_argstr(value)}\" to type "
                         f"\"System.Int32\". Error: \"Input string was not in a correct format.\""),
                fully_qualified_error_id=f"CannotConvertArgumentNoMessage,{_cmd_class(cmd)}",
                category=CAT_INVALID_ARGUMENT,
                exception_type="System.Management.Automation.ParameterBindingException",
                command_name=cmd.name)) from None
    if p.kind == "str":
        return _argstr(value) if not isinstance(value, ScriptBlock) else value
    return value


# --- the engine ---------------------------------------------------------------------------------------------


class Context:
    """One pipeline run: the machine, the error stream, whether the host changed."""

    def __init__(self, machine: Any):
        self.m = machine
        self.errors: list[api.ErrorSpec] = []
        self.changed = False

    def error(self, spec: api.ErrorSpec) -> None:
        self.errors.append(spec)


NATIVE: dict[str, Callable[[Context, list[str], list], list]] = {}
CMDLETS: dict[str, Cmdlet] = {}
ALIASES = {"echo": "write-output", "write": "write-output", "gsv": "get-service", "gps": "get-process",
           "ps": "get-process", "select": "select-object", "iex": "invoke-expression", "gcim": "get-ciminstance",
           "gwmi": "get-wmiobject", "where": "where-object", "?": "where-object", "spsv": "stop-service",
           "sasv": "start-service"}


def native(*names: str):
    def deco(fn):
        for nm in names:
            NATIVE[nm] = fn
        return fn
    return deco


def cmdlet(name: str, params: list[Param], noun_verb: str = "", changes_state: bool = False):
    def deco(fn):
        CMDLETS[name.lower()] = Cmdlet(name, params, fn, noun_verb, changes_state)
        return fn
    return deco


def resolve(ctx: Context, name: str) -> Optional[tuple[str, Any]]:
    """('native', fn) | ('cmdlet', Cmdlet) | None. Native names match with or without .exe and a
    System32 path; iisreset only exists where IIS is installed."""
    low = name.strip().lower()
    low = ALIASES.get(low, low)
    if low in CMDLETS:
        return ("cmdlet", CMDLETS[low])
    base = re.split(r"[\\/]", low)[-1]
    if base != low and not re.match(r"^(c:)?[\\/]windows[\\/](system32|sysnative)[\\/][^\\/]+$", low):
        return None
    stem = base[:-4] if base.endswith(".exe") else base
    fn = NATIVE.get(stem)
    if fn is None:
        return None
    if stem == "iisreset" and not ctx.m.has_service("W3SVC"):
        return None
    return ("native", fn)


@dataclass
class Step:
    name: str
    kind: str  # native | cmdlet | script
    target: Any
    args: Args


def run_statements(machine: Any, statements: list[api.Statement]) -> api.Execution:
    """Run a PSRP pipeline (one or more statements) the way the WinRM PowerShell endpoint does."""
    ctx = Context(machine)
    output: list[Any] = []
    failure: Optional[api.ErrorSpec] = None
    for st in statements:
        if failure is None:
            try:
                output.extend(run_statement(ctx, st))
            except Terminate as t:
                failure = t.spec
        else:
            # later statements still run on the host; the client never sees their output or errors
            shadow = Context(machine)
            try:
                run_statement(shadow, st)
            except Terminate:
                pass
            ctx.changed = ctx.changed or shadow.changed
    return api.Execution(output=[wire(x) for x in output], errors=ctx.errors, failed=failure is not None,
                         failure=failure, changed_state=ctx.changed)


def run_statement(ctx: Context, st: api.Statement) -> list:
    steps: list[Step] = []
    for c in st:
        if c.is_script:
            steps.append(Step(c.text, "script", c.text, Args.from_psrp(c.parameters)))
            continue
        r = resolve(ctx, c.text)
        if r is None:
            raise Terminate(not_found_error(c.text))  # the pipeline cannot even be built
        steps.append(Step(c.text, r[0], r[1], Args.from_psrp(c.parameters)))
    return run_steps(ctx, steps)


def run_steps(ctx: Context, steps: list[Step]) -> list:
    bound: list[Any] = []
    for s in steps:  # parameters are bound before anything runs
        bound.append(bind(s.target, s.args) if s.kind == "cmdlet" else None)
    data: list = []
    for s, b in zip(steps, bound):
        if s.kind == "script":
            data = run_script(ctx, s.target, data)
        elif s.kind == "native":
            data = s.target(ctx, s.args.native_argv(), data)
        else:
            data = s.target.run(ctx, b, data)
    return data


def run_script(ctx: Context, script: str, input_items: Optional[list] = None) -> list:
    """A script block: statement by statement; an error in one is written and the next runs."""
    if is_admin_check(script):
        return [bool(ctx.m.elevated)]
    try:
        statements = tokenize_script(script)
    except ScriptTooComplex as e:
        ctx.error(not_found_error(e.word))
        return []
    out: list = []
    for st in statements:
        steps: list[Step] = []
        try:
            for toks in st:
                head = toks[0]
                name = head.value if isinstance(head.value, str) else _argstr(head.value)
                if isinstance(head.value, ScriptBlock) or head.param is not None:
                    raise Terminate(not_found_error(str(head.value)))
                r = resolve(ctx, name)
                if r is None:
                    raise Terminate(not_found_error(name))
                steps.append(Step(name, r[0], r[1], Args.from_tokens(toks[1:])))
            out.extend(run_steps(ctx, steps))
        except Terminate as t:
            ctx.error(t.spec)
    return out


_ADMIN_CHECK = re.compile(
    r"^\(?\s*\[(System\.)?Security\.Principal\.WindowsPrincipal\]\s*\[(System\.)?Security\.Principal\.WindowsIdentity\]"
    r"::GetCurrent\(\)\s*\)?\s*\.IsInRole\(\s*\[(System\.)?Security\.Principal\.WindowsBuiltInRole\]\s*::\s*"
    r"[\"']?Administrator[\"']?\s*\)\s*;?\s*$", re.I)


def is_admin_check(script: str) -> bool:
    return bool(_ADMIN_CHECK.match(script.strip()))


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
        if len(low) >= 3 and low[1] in ("add", "delete") and low[2] == "iplisten":
            return _netsh_iplisten(ctx, low[1], words[3:])
        return text_output(["The following command was not found: " + " ".join(words) + "."])
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


# --- cmdlets ------------------------------------------------------------------------------------------------


@cmdlet("Write-Output", [Param("InputObject", "any", 0), Param("NoEnumerate", "switch")], "WriteOutput")
def _write_output(ctx: Context, b: dict, data: list) -> list:
    v = b.get("InputObject")
    if v is None:
        return list(data)
    return list(v) if isinstance(v, (list, tuple)) else [v]


@cmdlet("Out-String", [Param("Stream", "switch"), Param("Width", "int"), Param("InputObject", "any")], "OutString")
def _out_string(ctx: Context, b: dict, data: list) -> list:
    items = list(data)
    if b.get("InputObject") is not None:
        v = b["InputObject"]
        items = list(v) if isinstance(v, (list, tuple)) else [v]
    width = b["Width"][0] if b.get("Width") else 120
    if not items:
        return [] if b.get("Stream") else [""]
    if all(isinstance(x, NativeLine) for x in items):
        src = items[0].source
        if b.get("Stream"):
            return [str(x) for x in items]
        if all(x.source is src for x in items) and len(items) == len(src.lines) and all(
                a is b_ for a, b_ in zip(items, src.lines)):
            return [src.text]  # the native output unchanged: exactly what the program wrote
        return ["".join(str(x) + CRLF for x in items)]
    text = format_objects(items, width)
    if b.get("Stream"):
        lines = text.split(CRLF)
        if lines and lines[-1] == "":
            lines.pop()
        return lines
    return [text]


@cmdlet("ConvertTo-Json", [Param("InputObject", "any", 0), Param("Depth", "int"), Param("Compress", "switch"),
                           Param("EnumsAsStrings", "switch"), Param("AsArray", "switch")], "ConvertToJson")
def _convert_to_json(ctx: Context, b: dict, data: list) -> list:
    items = list(data)
    if b.get("InputObject") is not None:
        v = b["InputObject"]
        items = list(v) if isinstance(v, (list, tuple)) else [v]
    if not items:
        return []
    items = [str(x) if isinstance(x, NativeLine) else x for x in items]
    depth = b["Depth"][0] if b.get("Depth") else 2
    if not b.get("Compress"):
        same = ctx.m.passthrough_json(plain(items))
        if same is not None:
            return [same]  # the evidence file itself (the scan that wrote it sent this very pipeline)
    text = convert_to_json(items, bool(b.get("Compress")), depth)
    return [text] if text is not None else []


@cmdlet("Select-Object", [Param("Property", "list", 0), Param("ExpandProperty", "str"), Param("First", "int"),
                          Param("Last", "int"), Param("Unique", "switch"), Param("InputObject", "any")],
        "SelectObject")
def _select_object(ctx: Context, b: dict, data: list) -> list:
    items = list(data)
    if b.get("First"):
        items = items[: b["First"][0]]
    if b.get("Last"):
        items = items[-b["Last"][0]:] if b["Last"][0] else []
    props = b.get("Property")
    if b.get("ExpandProperty"):
        name = b["ExpandProperty"]
        out = []
        for it in items:
            if isinstance(it, PSObj) and it.has(name):
                v = it.get(name)
                out.extend(v if isinstance(v, list) else [v])
            else:
                ctx.error(api.ErrorSpec(
                    message=f"Property \"{name}\" cannot be found.",
                    fully_qualified_error_id="ExpandPropertyNotFound,Microsoft.PowerShell.Commands.SelectObjectCommand",
                    category=CAT_INVALID_ARGUMENT, exception_type="System.Management.Automation.PSArgumentException",
                    target=display(it), command_name="Select-Object"))
        return out
    if not props:
        return items
    out = []
    for it in items:
        if not isinstance(it, PSObj):
            it = PSObj(["System.String", "System.Object"], {"Length": PSInt(len(str(it)))}, str(it))
        names: list[str] = []
        for pat in props:
            pat = str(pat)
            if any(ch in pat for ch in "*?["):
                names.extend(k for k in it.props if fnmatch.fnmatchcase(k.lower(), pat.lower()) and k not in names)
            else:
                real = next((k for k in it.props if k.lower() == pat.lower()), pat)
                if real not in names:
                    names.append(real)
        sel = {k: it.get(k) for k in names}
        out.append(PSObj(["Selected." + it.type_names[0].split("#")[0], "System.Management.Automation.PSCustomObject",
                          "System.Object"], sel, selected_to_string(sel), origin=it.origin))
    return out


_OPS = {"eq", "ne", "like", "notlike", "match", "notmatch", "gt", "ge", "lt", "le", "ceq", "cne"}


def _compare(left: Any, op: str, right: Any) -> bool:
    op = op.lower().lstrip("-")
    cs = op.startswith("c") and op[1:] in _OPS
    if cs:
        op = op[1:]
    if isinstance(left, (int, float)) and not isinstance(left, bool):
        try:
            right = type(int(left))(int(str(right))) if isinstance(left, int) else float(right)
        except ValueError:
            pass
    ls = display(left) if not isinstance(left, (int, float)) or isinstance(left, bool) else left
    rs = str(right) if not isinstance(ls, (int, float)) else right
    if isinstance(ls, str) and isinstance(rs, str) and not cs:
        ls, rs = ls.lower(), rs.lower()
    if op == "eq":
        return ls == rs
    if op == "ne":
        return ls != rs
    if op in ("like", "notlike"):
        hit = fnmatch.fnmatchcase(str(ls), str(rs))
        return hit if op == "like" else not hit
    if op in ("match", "notmatch"):
        hit = re.search(str(right), display(left), 0 if cs else re.I) is not None
        return hit if op == "match" else not hit
    try:
        return {"gt": ls > rs, "ge": ls >= rs, "lt": ls < rs, "le": ls <= rs}[op]
    except (TypeError, KeyError):
        return False


@cmdlet("Where-Object", [Param("FilterScript", "any", 0), Param("Property", "str"), Param("Value", "any", 1),
                         *[Param(o.upper() if o in ("eq", "ne", "gt", "ge", "lt", "le") else o.capitalize(), "switch")
                           for o in sorted(_OPS)]], "WhereObject")
def _where_object(ctx: Context, b: dict, data: list) -> list:
    fs = b.get("FilterScript")
    if isinstance(fs, ScriptBlock):
        m = re.match(r"^\s*\$_\.(\w+)\s+-(\w+)\s+(?:'([^']*)'|\"([^\"$]*)\"|(\S+))\s*$", fs.text)
        if not m or m.group(2).lower() not in _OPS:
            ctx.error(not_found_error(fs.text.strip().split()[0] if fs.text.strip() else "{"))
            return []
        prop, op = m.group(1), m.group(2)
        val = next(g for g in m.group(3, 4, 5) if g is not None)
        if val.lower() in ("$true", "$false"):
            val = val.lower() == "$true"
        return [x for x in data if isinstance(x, PSObj) and _compare(x.get(prop), op, val)]
    prop = b.get("Property") or (str(fs) if fs is not None else None)
    op = next((k for k in b if k.lower() in _OPS and b[k] is True), "EQ")
    val = b.get("Value")
    if prop is None:
        return list(data)
    if val is None and op.lower() == "eq":  # Where-Object Name: truthiness
        return [x for x in data if isinstance(x, PSObj) and x.get(prop)]
    return [x for x in data if isinstance(x, PSObj) and _compare(x.get(prop), op, val)]


@cmdlet("Invoke-Expression", [Param("Command", "str", 0)], "InvokeExpression")
def _invoke_expression(ctx: Context, b: dict, data: list) -> list:
    return run_script(ctx, str(b.get("Command") or ""), data)


# services -----------------------------------------------------------------------------------------------------

_STATUS = {"Running": "Running", "Stopped": "Stopped", "Paused": "Paused", "Start Pending": "StartPending",
           "Stop Pending": "StopPending"}
_START_TYPE = {"Auto": "Automatic", "Manual": "Manual", "Disabled": "Disabled", "Boot": "Boot", "System": "System"}
_START_MODE = {"automatic": "Auto", "auto": "Auto", "manual": "Manual", "disabled": "Disabled", "boot": "Boot",
               "system": "System", "automaticdelayedstart": "Auto"}

CIM_SERVICE_TYPES = [
    "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Service",
    "Microsoft.Management.Infrastructure.CimInstance#ROOT/cimv2/Win32_BaseService",
    "Microsoft.Management.Infrastructure.CimInstance#ROOT/cimv2/CIM_Service",
    "Microsoft.Management.Infrastructure.CimInstance#ROOT/cimv2/CIM_LogicalElement",
    "Microsoft.Management.Infrastructure.CimInstance#ROOT/cimv2/CIM_ManagedSystemElement",
    "Microsoft.Management.Infrastructure.CimInstance#Win32_Service",
    "Microsoft.Management.Infrastructure.CimInstance#Win32_BaseService",
    "Microsoft.Management.Infrastructure.CimInstance#CIM_Service",
    "Microsoft.Management.Infrastructure.CimInstance#CIM_LogicalElement",
    "Microsoft.Management.Infrastructure.CimInstance#CIM_ManagedSystemElement",
    "Microsoft.Management.Infrastructure.CimInstance",
    "System.Object",
]
WMI_SERVICE_TYPES = [
    "System.Management.ManagementObject#root\\cimv2\\Win32_Service",
    "System.Management.ManagementObject#root\\cimv2\\Win32_BaseService",
    "System.Management.ManagementObject#root\\cimv2\\CIM_Service",
    "System.Management.ManagementObject#root\\cimv2\\CIM_LogicalElement",
    "System.Management.ManagementObject#root\\cimv2\\CIM_ManagedSystemElement",
    "System.Management.ManagementObject#Win32_Service",
    "System.Management.ManagementObject",
    "System.Management.ManagementBaseObject",
    "System.ComponentModel.Component",
    "System.MarshalByRefObject",
    "System.Object",
]
SERVICE_CONTROLLER_TYPES = ["System.ServiceProcess.ServiceController", "System.ComponentModel.Component",
                            "System.MarshalByRefObject", "System.Object"]
PROCESS_TYPES = ["System.Diagnostics.Process", "System.ComponentModel.Component", "System.MarshalByRefObject",
                 "System.Object"]


def win32_service_props(m: Any, s: dict) -> dict:
    """Win32_Service's properties in the order ``Format-List *`` prints them
    (raw/services/crithos-cim-win32service-bits-format-list-star.txt)."""
    running = s.get("State") == "Running"
    pid = int(s.get("ProcessId") or 0)
    d = m.service_details(s)
    return {
        "Name": s.get("Name"), "Status": s.get("Status", "OK"), "ExitCode": UInt32(int(d["ExitCode"])),
        "DesktopInteract": False, "ErrorControl": "Normal", "PathName": d["PathName"],
        "ServiceType": d["ServiceType"], "StartMode": s.get("StartMode"), "Caption": s.get("DisplayName"),
        "Description": d.get("Description"), "InstallDate": None, "CreationClassName": "Win32_Service",
        "Started": running, "SystemCreationClassName": "Win32_ComputerSystem", "SystemName": m.hostname.upper(),
        "AcceptPause": False, "AcceptStop": running, "DisplayName": s.get("DisplayName"),
        "ServiceSpecificExitCode": UInt32(0), "StartName": d["StartName"], "State": s.get("State"),
        "TagId": UInt32(0), "CheckPoint": UInt32(0), "DelayedAutoStart": bool(d.get("DelayedAutoStart")),
        "ProcessId": UInt32(pid), "WaitHint": UInt32(0), "PSComputerName": None,
    }


def cim_service(m: Any, s: dict) -> PSObj:
    return PSObj(CIM_SERVICE_TYPES, win32_service_props(m, s), f'Win32_Service (Name = "{s.get("Name")}")', "service")


def wmi_service(m: Any, s: dict) -> PSObj:
    host = m.hostname.upper()
    rel = f'Win32_Service.Name="{s.get("Name")}"'
    sysprops = {"__GENUS": PSInt(2), "__CLASS": "Win32_Service", "__SUPERCLASS": "Win32_BaseService",
                "__DYNASTY": "CIM_ManagedSystemElement", "__RELPATH": rel, "__PROPERTY_COUNT": PSInt(26),
                "__DERIVATION": ["Win32_BaseService", "CIM_Service", "CIM_LogicalElement", "CIM_ManagedSystemElement"],
                "__SERVER": host, "__NAMESPACE": "root\\cimv2", "__PATH": f"\\\\{host}\\root\\cimv2:{rel}"}
    props = win32_service_props(m, s)
    props["PSComputerName"] = host
    return PSObj(WMI_SERVICE_TYPES, {**sysprops, **props}, f"\\\\{host}\\root\\cimv2:{rel}", "service")


def service_controller(m: Any, s: dict, as_typed: Optional[str] = None) -> PSObj:
    props = {"Name": s.get("Name"), "RequiredServices": [], "CanPauseAndContinue": False,
             "CanShutdown": s.get("State") == "Running", "CanStop": s.get("State") == "Running",
             "DisplayName": s.get("DisplayName"), "DependentServices": [], "MachineName": ".",
             "ServiceName": s.get("Name"), "ServicesDependedOn": [], "ServiceHandle": None,
             "Status": _STATUS.get(str(s.get("State")), str(s.get("State"))),
             "ServiceType": "Win32ShareProcess" if m.service_details(s)["ServiceType"] == "Share Process"
             else "Win32OwnProcess",
             "StartType": _START_TYPE.get(str(s.get("StartMode")), str(s.get("StartMode"))),
             "Site": None, "Container": None}
    return PSObj(SERVICE_CONTROLLER_TYPES, props, as_typed or s.get("Name"), "service")


def os_object(m: Any) -> PSObj:
    o = m.os
    props = {"Status": "OK", "Name": f"{o['caption']}|C:\\Windows|\\Device\\Harddisk0\\Partition2",
             "BootDevice": "\\Device\\HarddiskVolume1",
             "BuildNumber": o["build"], "BuildType": "Multiprocessor Free", "Caption": o["caption"],
             "CodeSet": "1252", "CountryCode": "1", "CSName": m.hostname.upper(), "Locale": "0409",
             "Manufacturer": "Microsoft Corporation", "OSArchitecture": "64-bit",
             "OSLanguage": UInt32(int(o.get("language") or 1033)), "OSType": PSInt(18), "SystemDirectory":
             "C:\\Windows\\system32", "SystemDrive": "C:", "Version": o["version"], "WindowsDirectory": "C:\\Windows",
             "Organization": "", "RegisteredUser": "Windows User", "SerialNumber": o.get("serial", "00429-70000-00000-AA535"),
             "PSComputerName": None}
    types = [t.replace("Win32_Service", "Win32_OperatingSystem").replace("Win32_BaseService", "CIM_OperatingSystem")
             for t in CIM_SERVICE_TYPES if "CIM_Service" not in t]
    return PSObj(types, props, f'Win32_OperatingSystem: {o["caption"]}', "os")


def cim_process(m: Any, p: dict) -> PSObj:
    props = {"Name": p["image"], "ProcessId": UInt32(p["Id"]), "ExecutablePath": p.get("Path") if m.elevated else None,
             "SessionId": UInt32(p.get("SessionId") or 0), "CSName": m.hostname.upper(), "PSComputerName": None}
    types = [t.replace("Win32_Service", "Win32_Process").replace("Win32_BaseService", "CIM_Process")
             for t in CIM_SERVICE_TYPES if "CIM_Service" not in t]
    return PSObj(types, props, f'Win32_Process (Handle = "{p["Id"]}")', "process")


def process_object(m: Any, p: dict) -> PSObj:
    props = {"Name": p["ProcessName"], "Id": PSInt(p["Id"]), "ProcessName": p["ProcessName"],
             "Path": p.get("Path") if m.elevated else None, "SessionId": PSInt(p.get("SessionId") or 0)}
    return PSObj(PROCESS_TYPES, props, f"System.Diagnostics.Process ({p['ProcessName']})", "process")


def _wql_filter(text: str) -> Callable[[dict], bool]:
    """A WQL WHERE clause: ``Prop = 'v'`` / ``<>`` / ``!=`` / ``LIKE 'a%'`` joined by AND / OR."""
    ors = re.split(r"\s+or\s+", text.strip(), flags=re.I)
    tests: list[list[Callable[[dict], bool]]] = []
    for part in ors:
        ands = []
        for cond in re.split(r"\s+and\s+", part.strip(), flags=re.I):
            m = re.match(r"^\(?\s*(\w+)\s*(=|<>|!=|<=|>=|<|>|\blike\b)\s*(?:'([^']*)'|\"([^\"]*)\"|(\w+))\s*\)?$",
                         cond.strip(), re.I)
            if not m:
                raise ValueError(cond)
            prop, op = m.group(1), m.group(2).lower()
            val = next(g for g in m.group(3, 4, 5) if g is not None)

            def test(rec: dict, prop=prop, op=op, val=val) -> bool:
                v = next((rv for rk, rv in rec.items() if rk.lower() == prop.lower()), None)
                if isinstance(v, int) and not isinstance(v, bool) and re.match(r"^-?\d+$", val):
                    a, bb = int(v), int(val)
                elif isinstance(v, bool):
                    a, bb = v, val.lower() == "true"
                else:
                    a, bb = ("" if v is None else str(v)).lower(), val.lower()
                if op == "like":
                    return re.match("^" + re.escape(str(bb)).replace("%", ".*").replace("_", ".") + "$", str(a)) is not None
                return {"=": a == bb, "<>": a != bb, "!=": a != bb, "<": a < bb, ">": a > bb, "<=": a <= bb,
                        ">=": a >= bb}[op]
            ands.append(test)
        tests.append(ands)
    return lambda rec: any(all(t(rec) for t in ands) for ands in tests)


def _cim_error(msg: str, hresult: str, cat: int, cmd: str) -> api.ErrorSpec:
    cls = ("Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand" if cmd == "Get-CimInstance"
           else "Microsoft.PowerShell.Commands.GetWmiObjectCommand")
    exc = ("Microsoft.Management.Infrastructure.CimException" if cmd == "Get-CimInstance"
           else "System.Management.ManagementException")
    fq = f"HRESULT {hresult},{cls}" if cmd == "Get-CimInstance" else f"GetWMIManagementException,{cls}"
    return api.ErrorSpec(message=msg, fully_qualified_error_id=fq, category=cat, exception_type=exc, command_name=cmd)


def _class_query(ctx: Context, cmd: str, b: dict) -> list:
    cls = b.get("ClassName") or b.get("Class")
    filt = b.get("Filter")
    q = b.get("Query")
    if q:
        m = re.match(r"^\s*select\s+\*\s+from\s+(\w+)(?:\s+where\s+(.+))?\s*$", q, re.I | re.S)
        if not m:
            ctx.error(_cim_error("Invalid query ", "0x80041017", CAT_INVALID_ARGUMENT, cmd))
            return []
        cls, filt = m.group(1), m.group(2)
    if not cls:
        raise Terminate(api.ErrorSpec(
            message="Cannot process command because of one or more missing mandatory parameters: ClassName.",
            fully_qualified_error_id=f"MissingMandatoryParameter,{cmd}", category=CAT_INVALID_ARGUMENT,
            exception_type="System.Management.Automation.ParameterBindingException", command_name=cmd))
    cls_low = str(cls).lower()
    make: Callable[[Any, dict], PSObj]
    if cls_low == "win32_service":
        recs = ctx.m.services()
        make = cim_service if cmd == "Get-CimInstance" else wmi_service
        rows = [(win32_service_props(ctx.m, s), s) for s in recs]
    elif cls_low == "win32_operatingsystem":
        o = os_object(ctx.m)
        rows = [(o.props, None)]
        make = lambda m, _s: os_object(m)  # noqa: E731
    elif cls_low == "win32_process":
        procs = ctx.m.processes()
        rows = [(cim_process(ctx.m, p).props, p) for p in procs]
        make = cim_process
    else:
        msg = "Invalid class " if cmd == "Get-CimInstance" else "Invalid class \"" + str(cls) + "\""
        ctx.error(_cim_error(msg, "0x80041010", CAT_METADATA_ERROR, cmd))
        return []
    if filt:
        try:
            test = _wql_filter(filt)
        except ValueError:
            ctx.error(_cim_error("Invalid query ", "0x80041017", CAT_INVALID_ARGUMENT, cmd))
            return []
        rows = [r for r in rows if test(r[0])]
    return [make(ctx.m, src) for _props, src in rows]


_CIM_PARAMS = [Param("ClassName", "str", 0, ("Class",)), Param("Filter", "str"), Param("Query", "str"),
               Param("Namespace", "str"), Param("ComputerName", "str", aliases=("CN",)), Param("Property", "list")]


@cmdlet("Get-CimInstance", _CIM_PARAMS, "GetCimInstance")
def _get_ciminstance(ctx: Context, b: dict, data: list) -> list:
    return _class_query(ctx, "Get-CimInstance", b)


@cmdlet("Get-WmiObject", [Param("Class", "str", 0), Param("Filter", "str"), Param("Query", "str"),
                          Param("Namespace", "str"), Param("ComputerName", "str"), Param("Property", "list", 1)],
        "GetWmiObject")
def _get_wmiobject(ctx: Context, b: dict, data: list) -> list:
    return _class_query(ctx, "Get-WmiObject", b)


def _service_not_found(name: str, verb_cls: str, kind: str = "name") -> api.ErrorSpec:
    return api.ErrorSpec(
        message=f"Cannot find any service with service {kind} '{name}'.",
        fully_qualified_error_id=f"NoServiceFoundForGiven{'Name' if kind == 'name' else 'DisplayName'},"
                                 f"Microsoft.PowerShell.Commands.{verb_cls}",
        category=CAT_OBJECT_NOT_FOUND, exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
        target=name, command_name=verb_cls.replace("ServiceCommand", "-Service"))


def _match_services(ctx: Context, names: Optional[list[str]], display: Optional[list[str]],
                    verb_cls: str) -> list[dict]:
    all_s = sorted(ctx.m.services(), key=lambda s: str(s.get("Name")).lower())
    if not names and not display:
        return all_s
    out: list[dict] = []
    for pat, key, kind in [(n, "Name", "name") for n in names or []] + [(d, "DisplayName", "display name")
                                                                        for d in display or []]:
        wild = any(ch in pat for ch in "*?[")
        hits = [s for s in all_s if fnmatch.fnmatch(str(s.get(key)).lower(), pat.lower())] if wild else \
            [s for s in all_s if str(s.get(key)).lower() == pat.lower()]
        if not hits and not wild:
            ctx.error(_service_not_found(pat, verb_cls, kind))
        for s in hits:
            if s not in out:
                out.append(s)
    return out


@cmdlet("Get-Service", [Param("Name", "list", 0, ("ServiceName",)), Param("DisplayName", "list"),
                        Param("ComputerName", "list"), Param("DependentServices", "switch"),
                        Param("RequiredServices", "switch")], "GetService")
def _get_service(ctx: Context, b: dict, data: list) -> list:
    names = b.get("Name")
    found = _match_services(ctx, names, b.get("DisplayName"), "GetServiceCommand")
    typed = {s["Name"]: next((n for n in names or [] if n.lower() == str(s["Name"]).lower()), None) for s in found}
    return [service_controller(ctx.m, s, typed.get(s["Name"])) for s in found]


def _service_label(s: dict) -> str:
    return f"{s.get('DisplayName')} ({s.get('Name')})"


def _input_service_names(b: dict, data: list) -> list[str]:
    names = list(b.get("Name") or [])
    for it in data:
        if isinstance(it, PSObj) and it.origin == "service":
            names.append(str(it.get("Name")))
        elif isinstance(it, str):
            names.append(str(it))
    return names


_SERVICE_CTL = [Param("Name", "list", 0, ("ServiceName",)), Param("DisplayName", "list"), Param("Force", "switch"),
                Param("PassThru", "switch"), Param("NoWait", "switch"), Param("InputObject", "any"),
                Param("WhatIf", "switch"), Param("Confirm", "switch")]


@cmdlet("Stop-Service", _SERVICE_CTL, "StopService", changes_state=True)
def _stop_service(ctx: Context, b: dict, data: list) -> list:
    targets = _match_services(ctx, _input_service_names(b, data), b.get("DisplayName"), "StopServiceCommand")
    out = []
    for s in targets:
        if b.get("WhatIf"):
            continue
        if not ctx.m.elevated:
            ctx.error(api.ErrorSpec(
                message=(f"Service '{_service_label(s)}' cannot be stopped due to the following error: Cannot open "
                         f"{s['Name']} service on computer '.'."),
                fully_qualified_error_id="CouldNotStopService,Microsoft.PowerShell.Commands.StopServiceCommand",
                category=CAT_CLOSE_ERROR, exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
                target=s["Name"], command_name="Stop-Service"))
            continue
        deps = [d for d in ctx.m.dependents(s["Name"]) if ctx.m.service(d).get("State") == "Running"]
        if deps and not b.get("Force"):
            ctx.error(api.ErrorSpec(
                message=(f"Cannot stop service '{_service_label(s)}' because it has dependent services. It can only "
                         "be stopped if the Force flag is set."),
                fully_qualified_error_id="ServiceHasDependentServices,Microsoft.PowerShell.Commands.StopServiceCommand",
                category=CAT_INVALID_OPERATION,
                exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
                target=s["Name"], command_name="Stop-Service"))
            continue
        for d in deps:
            ctx.changed = ctx.m.set_service_running(d, False) or ctx.changed
        ctx.changed = ctx.m.set_service_running(s["Name"], False) or ctx.changed
        if b.get("PassThru"):
            out.append(service_controller(ctx.m, ctx.m.service(s["Name"])))
    return out


@cmdlet("Start-Service", _SERVICE_CTL, "StartService", changes_state=True)
def _start_service(ctx: Context, b: dict, data: list) -> list:
    targets = _match_services(ctx, _input_service_names(b, data), b.get("DisplayName"), "StartServiceCommand")
    out = []
    for s in targets:
        if b.get("WhatIf"):
            continue
        reason = None
        if not ctx.m.elevated:
            reason = f"Cannot open {s['Name']} service on computer '.'."
        elif s.get("StartMode") == "Disabled":
            reason = f"Cannot start service {s['Name']} on computer '.'."
        if reason:
            ctx.error(api.ErrorSpec(
                message=f"Service '{_service_label(s)}' cannot be started due to the following error: {reason}",
                fully_qualified_error_id="CouldNotStartService,Microsoft.PowerShell.Commands.StartServiceCommand",
                category=CAT_OPEN_ERROR, exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
                target=s["Name"], command_name="Start-Service"))
            continue
        for d in ctx.m.requirements(s["Name"]):
            if ctx.m.service(d).get("StartMode") != "Disabled":
                ctx.changed = ctx.m.set_service_running(d, True) or ctx.changed
        ctx.changed = ctx.m.set_service_running(s["Name"], True) or ctx.changed
        if b.get("PassThru"):
            out.append(service_controller(ctx.m, ctx.m.service(s["Name"])))
    return out


@cmdlet("Set-Service", [Param("Name", "str", 0, ("ServiceName", "SN")), Param("StartupType", "str",
                                                                                aliases=("StartMode", "SM", "ST")),
                        Param("Status", "str"), Param("DisplayName", "str"), Param("Description", "str"),
                        Param("PassThru", "switch"), Param("InputObject", "any"), Param("WhatIf", "switch"),
                        Param("Confirm", "switch")], "SetService", changes_state=True)
def _set_service(ctx: Context, b: dict, data: list) -> list:
    names = _input_service_names({"Name": [b["Name"]] if b.get("Name") else []}, data)
    out = []
    for name in names:
        s = ctx.m.service(name)
        if not s:
            ctx.error(_service_not_found(name, "SetServiceCommand"))
            continue
        if b.get("WhatIf"):
            continue
        if not ctx.m.elevated:
            ctx.error(api.ErrorSpec(
                message=(f"Service '{_service_label(s)}' cannot be configured due to the following error: Access is "
                         "denied"),
                fully_qualified_error_id="CouldNotSetService,Microsoft.PowerShell.Commands.SetServiceCommand",
                category=CAT_PERMISSION_DENIED, exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
                target=s["Name"], command_name="Set-Service"))
            continue
        st = b.get("StartupType")
        if st is not None:
            mode = _START_MODE.get(str(st).lower())
            if mode is None:
                raise Terminate(api.ErrorSpec(
                    message=(f"Cannot bind parameter 'StartupType'. Cannot convert value \"{st}\" to type "
                             "\"System.ServiceProcess.ServiceStartMode\". Error: \"Unable to match the identifier "
                             f"name {st} to a valid enumerator name. Specify one of the following enumerator names "
                             "and try again:\nBoot, System, Automatic, Manual, Disabled\""),
                    fully_qualified_error_id="CannotConvertArgumentNoMessage,Microsoft.PowerShell.Commands.SetServiceCommand",
                    category=CAT_INVALID_ARGUMENT,
                    exception_type="System.Management.Automation.ParameterBindingException", command_name="Set-Service"))
            ctx.changed = ctx.m.set_start_mode(s["Name"], mode) or ctx.changed
        status = b.get("Status")
        if status is not None:
            want = str(status).lower()
            if want == "running":
                ctx.changed = ctx.m.set_service_running(s["Name"], True) or ctx.changed
            elif want == "stopped":
                ctx.changed = ctx.m.set_service_running(s["Name"], False) or ctx.changed
        if b.get("PassThru"):
            out.append(service_controller(ctx.m, ctx.m.service(s["Name"])))
    return out


@cmdlet("Get-Process", [Param("Name", "list", 0, ("ProcessName",)), Param("Id", "int", aliases=("PID",)),
                        Param("ComputerName", "list"), Param("Module", "switch"), Param("IncludeUserName", "switch")],
        "GetProcess")
def _get_process(ctx: Context, b: dict, data: list) -> list:
    procs = sorted(ctx.m.processes(), key=lambda p: (p["ProcessName"].lower(), p["Id"]))
    if b.get("Id"):
        out = []
        for pid in b["Id"]:
            hit = [p for p in procs if p["Id"] == pid]
            if not hit:
                ctx.error(api.ErrorSpec(
                    message=f"Cannot find a process with the process identifier {pid}.",
                    fully_qualified_error_id="NoProcessFoundForGivenId,Microsoft.PowerShell.Commands.GetProcessCommand",
                    category=CAT_OBJECT_NOT_FOUND,
                    exception_type="Microsoft.PowerShell.Commands.ProcessCommandException", target=str(pid),
                    command_name="Get-Process"))
            out.extend(hit)
        procs = out
    elif b.get("Name"):
        out = []
        for pat in b["Name"]:
            wild = any(ch in pat for ch in "*?[")
            hit = [p for p in procs if fnmatch.fnmatch(p["ProcessName"].lower(), pat.lower())]
            if not hit and not wild:
                ctx.error(api.ErrorSpec(
                    message=(f"Cannot find a process with the name \"{pat}\". Verify the process name and call the "
                             "cmdlet again."),
                    fully_qualified_error_id="NoProcessFoundForGivenName,Microsoft.PowerShell.Commands.GetProcessCommand",
                    category=CAT_OBJECT_NOT_FOUND,
                    exception_type="Microsoft.PowerShell.Commands.ProcessCommandException", target=pat,
                    command_name="Get-Process"))
            out.extend(p for p in hit if p not in out)
        procs = out
    return [process_object(ctx.m, p) for p in procs]
