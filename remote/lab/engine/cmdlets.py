"""Cmdlets: output/formatting (Write-Output, Out-String, ConvertTo-Json, Select/Where-Object), services,
CIM/WMI, processes."""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable, Optional


from remote.lab import api

from remote.lab.engine.formats import *  # noqa: F401,F403
from remote.lab.engine.script import *  # noqa: F401,F403

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
        from remote.lab.engine.interp import collapse, invoke_block, truthy
        return [x for x in data if truthy(collapse(invoke_block(ctx, fs, x)))]
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
    return run_script(ctx, str(b.get("Command") or ""), data, via="iex")


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


def service_controller(m: Any, s: dict, as_typed: Optional[str] = None, nested: bool = False) -> PSObj:
    """A ServiceController; its dependency lists (from the bundle's Get-Service evidence) hold
    ServiceControllers whose own lists are left empty (remoting serializes them at depth 1 anyway)."""
    def ctl(names: list[str]) -> list:
        if nested:
            return []
        # spelled as the registry's list spells them (a real -RequiredServices shows NSI and RPCSS, not nsi, RpcSs)
        return [service_controller(m, dict(m.service(n) or {"DisplayName": n, "State": "Running"}, Name=n),
                                   nested=True) for n in names]

    required = ctl(m.depends_on_names(str(s.get("Name"))))
    props = {"Name": s.get("Name"), "RequiredServices": required, "CanPauseAndContinue": False,
             "CanShutdown": s.get("State") == "Running", "CanStop": s.get("State") == "Running",
             "DisplayName": s.get("DisplayName"), "DependentServices": ctl(m.dependent_names(str(s.get("Name")))),
             "MachineName": ".", "ServiceName": s.get("Name"), "ServicesDependedOn": required, "ServiceHandle": None,
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
    if b.get("DependentServices") or b.get("RequiredServices"):
        # the objects' own lists (from the bundle's Get-Service evidence), as -RequiredServices prints them
        # (tests/fixtures/getservice/…-winrm-requiredservices.txt: NSI, HTTP, RPCSS)
        key = "DependentServices" if b.get("DependentServices") else "RequiredServices"
        return [d for s in found for d in service_controller(ctx.m, s).get(key)]
    typed = {s["Name"]: next((n for n in names or [] if n.lower() == str(s["Name"]).lower()), None) for s in found}
    return [service_controller(ctx.m, s, typed.get(s["Name"])) for s in found]


def _requirement_chain(m: Any, name: str) -> list[str]:
    """The listed services ``name`` needs, directly or not, deepest first (the start order)."""
    out: list[str] = []

    def visit(n: str, path: tuple) -> None:
        for d in m.requirements(n):
            if d.lower() not in path and d not in out:
                visit(d, path + (d.lower(),))
                if d not in out:
                    out.append(d)

    visit(name, (name.lower(),))
    return out


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
        # the SCM starts what the service needs first, deepest first; a disabled one fails the start
        # (ERROR_SERVICE_DEPENDENCY_FAIL), which ServiceController reports as "Cannot start service X on
        # computer '.'." like any other start failure
        chain = _requirement_chain(ctx.m, str(s["Name"]))
        if any(ctx.m.service(d).get("StartMode") == "Disabled" and ctx.m.service(d).get("State") != "Running"
               for d in chain):
            ctx.error(api.ErrorSpec(
                message=(f"Service '{_service_label(s)}' cannot be started due to the following error: Cannot start "
                         f"service {s['Name']} on computer '.'."),
                fully_qualified_error_id="CouldNotStartService,Microsoft.PowerShell.Commands.StartServiceCommand",
                category=CAT_OPEN_ERROR, exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
                target=s["Name"], command_name="Start-Service"))
            continue
        for d in chain:
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



# --- issue 13: IIS listings ---------------------------------------------------------
# Get-Website (WebAdministration) and Get-IISAppPool (IISAdministration) exist only where the bundle has
# their listing (IIS installed; see resolve() in script.py). Their output is the bundle's text as Out-String
# rendered it on the host; the lab does not rebuild IIS's table views from objects.


@cmdlet("Get-Website", [Param("Name", "str", 0)], "GetWebsite")
def _get_website(ctx: Context, b: dict, data: list) -> list:
    text = ctx.m.text("iis_sites")
    return native_output(text) if text else []


@cmdlet("Get-IISAppPool", [Param("Name", "list", 0)], "GetIISAppPool")
def _get_iisapppool(ctx: Context, b: dict, data: list) -> list:
    text = ctx.m.text("iis_apppools")
    return native_output(text) if text else []


@cmdlet("Get-Command", [Param("Name", "list", 0), Param("ErrorAction", "str", aliases=("EA",))], "GetCommand")
def _get_command(ctx: Context, b: dict, data: list) -> list:
    """Whether a command exists here (port80's IIS kinds ask ``if (Get-Command Get-Website -ErrorAction
    Ignore) { … }``); -ErrorAction is bound here because the lab's binder has no common parameters."""
    out = []
    quiet = str(b.get("ErrorAction") or "").lower() in ("ignore", "silentlycontinue")
    for name in b.get("Name") or []:
        r = resolve(ctx, str(name))
        if r is None:
            if not quiet:
                ctx.error(not_found_error(str(name)))
            continue
        kind = "Cmdlet" if r[0] == "cmdlet" else "Application"
        out.append(PSObj([f"System.Management.Automation.{'CmdletInfo' if kind == 'Cmdlet' else 'ApplicationInfo'}",
                          "System.Management.Automation.CommandInfo", "System.Object"],
                         {"CommandType": kind, "Name": str(name), "Version": "", "Source": ""}, str(name)))
    return out
