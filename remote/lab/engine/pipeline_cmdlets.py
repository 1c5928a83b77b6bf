"""Cmdlets scripts chain together: Sort-Object, ForEach-Object, Select-String, Format-Table, Format-List,
Out-Null, Measure-Object; and Get-NetTCPConnection answered from the bundle's netstat text.

Output shapes not captured in the corpus are marked GUESS below (from Microsoft's documentation
examples): Format-Table/Format-List render text lines as Out-String would print them (real
PowerShell emits format objects that Out-String renders; a client sees the same text either way).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from remote.lab import api
from remote.lab.engine.formats import (CAT_INVALID_ARGUMENT, CRLF, NativeLine, PSObj, UInt32, display,
                                       format_objects, parse_netstat_row)
from remote.lab.engine.script import Context, Param, ScriptBlock, cmdlet


def _prop(it: Any, name: str) -> Any:
    from remote.lab.engine.interp import member
    return member(it, name)


def _sort_key(v: Any) -> tuple:
    if isinstance(v, bool):
        return (1, int(v), "")
    if isinstance(v, (int, float)):
        return (1, v, "")
    return (2, 0, display(v).lower() if v is not None else "")


@cmdlet("Sort-Object", [Param("Property", "list", 0), Param("Descending", "switch"), Param("Unique", "switch"),
                        Param("CaseSensitive", "switch")], "SortObject")
def _sort_object(ctx: Context, b: dict, data: list) -> list:
    from remote.lab.engine.interp import collapse, invoke_block
    props = b.get("Property") or []

    def key(it: Any) -> tuple:
        if not props:
            return (_sort_key(str(it) if isinstance(it, NativeLine) else it),)
        out = []
        for p in props:
            v = collapse(invoke_block(ctx, p, it)) if isinstance(p, ScriptBlock) else _prop(it, str(p))
            out.append(_sort_key(v))
        return tuple(out)

    items = sorted(data, key=key, reverse=bool(b.get("Descending")))
    if b.get("Unique"):
        seen, uniq = set(), []
        for it in items:
            k = key(it)
            if k not in seen:
                seen.add(k)
                uniq.append(it)
        items = uniq
    return items


@cmdlet("ForEach-Object", [Param("Process", "any", 0), Param("MemberName", "str"), Param("Begin", "any"),
                           Param("End", "any")], "ForEachObject")
def _foreach_object(ctx: Context, b: dict, data: list) -> list:
    from remote.lab.engine.interp import invoke_block, member
    out: list = []
    if isinstance(b.get("Begin"), ScriptBlock):
        out.extend(invoke_block(ctx, b["Begin"], None, set_item=False))
    proc = b.get("Process")
    for it in data:
        if isinstance(proc, ScriptBlock):
            out.extend(invoke_block(ctx, proc, it))
        elif proc is not None or b.get("MemberName"):
            v = member(it, str(b.get("MemberName") or proc))
            out.extend(v if isinstance(v, list) else ([] if v is None else [v]))
    if isinstance(b.get("End"), ScriptBlock):
        out.extend(invoke_block(ctx, b["End"], None, set_item=False))
    return out


@cmdlet("Out-Null", [Param("InputObject", "any")], "OutNull")
def _out_null(ctx: Context, b: dict, data: list) -> list:
    return []


MATCHINFO = ["Microsoft.PowerShell.Commands.MatchInfo", "System.Object"]


@cmdlet("Select-String", [Param("Pattern", "list", 0), Param("InputObject", "any"), Param("SimpleMatch", "switch"),
                          Param("CaseSensitive", "switch"), Param("NotMatch", "switch"), Param("Quiet", "switch")],
        "SelectString")
def _select_string(ctx: Context, b: dict, data: list) -> list:
    pats = [str(p) for p in (b.get("Pattern") or [])]
    flags = 0 if b.get("CaseSensitive") else re.I
    out: list = []
    n = 0
    for it in data:
        line = display(it) if not isinstance(it, str) else str(it)
        n += 1
        hit = any((p.lower() in line.lower() if not b.get("CaseSensitive") else p in line) if b.get("SimpleMatch")
                  else re.search(p, line, flags) for p in pats)
        if b.get("NotMatch"):
            hit = not hit
        if hit:
            out.append(PSObj(MATCHINFO, {"IgnoreCase": not b.get("CaseSensitive"), "LineNumber": n, "Line": line,
                                         "Filename": "InputStream", "Path": "InputStream",
                                         "Pattern": pats[0] if pats else ""}, line, origin="matchinfo"))
    if b.get("Quiet"):
        return [bool(out)]
    return out


def _columns(items: list, props: Any) -> list[str]:
    if props:
        cols: list[str] = []
        first = next((i for i in items if isinstance(i, PSObj)), None)
        for p in props:
            p = str(p)
            if first is not None and any(ch in p for ch in "*?["):
                cols.extend(k for k in first.props if fnmatch.fnmatchcase(k.lower(), p.lower()) and k not in cols)
            else:
                real = next((k for k in (first.props if first else {}) if k.lower() == p.lower()), p)
                cols.append(real)
        return cols
    return []


def _select(items: list, cols: list[str]) -> list:
    if not cols:
        return items
    out = []
    for it in items:
        if isinstance(it, PSObj):
            out.append(PSObj(it.type_names[:1] + ["Selected"], {c: it.get(c) for c in cols}, it.to_string,
                             origin=it.origin))
        else:
            out.append(it)
    return out


@cmdlet("Format-Table", [Param("Property", "list", 0), Param("AutoSize", "switch"), Param("Wrap", "switch"),
                         Param("HideTableHeaders", "switch")], "FormatTable")
def _format_table(ctx: Context, b: dict, data: list) -> list:
    items = [i for i in data]
    if not items:
        return []
    if not b.get("Property"):
        from remote.lab.engine.formats import native_output
        return native_output(format_objects(items))  # the type's own table view, as Out-String prints it
    cols = _columns(items, b.get("Property"))
    objs = [i for i in items if isinstance(i, PSObj)]
    if objs and not cols:
        cols = list(objs[0].props)[:10]
    if not objs:
        return [display(i) for i in items]
    cells = [[display(o.get(c)) for c in cols] for o in objs]
    widths = [max([len(c)] + [len(r[k]) for r in cells]) for k, c in enumerate(cols)]

    def line(vals: list[str]) -> str:
        return " ".join(v.ljust(widths[k]) if k < len(vals) - 1 else v for k, v in enumerate(vals)).rstrip()
    rows = [""]
    if not b.get("HideTableHeaders"):
        rows += [line(cols), line(["-" * len(c) for c in cols])]
    rows += [line(r) for r in cells] + ["", ""]
    return _as_format_lines(rows)


@cmdlet("Format-List", [Param("Property", "list", 0)], "FormatList")
def _format_list(ctx: Context, b: dict, data: list) -> list:
    items = list(data)
    if not items:
        return []
    cols = _columns(items, b.get("Property") or ["*"])
    rows = [""]
    for o in items:
        if not isinstance(o, PSObj):
            rows.append(display(o))
            continue
        names = cols if b.get("Property") else list(o.props)
        w = max((len(k) for k in names), default=0)
        rows.append("")
        rows.extend(f"{k.ljust(w)} : {display(o.get(k))}" for k in names)
    rows += ["", ""]
    return _as_format_lines(rows)


def _as_format_lines(rows: list[str]) -> list:
    from remote.lab.engine.formats import native_output
    return native_output("".join(r + CRLF for r in rows))


@cmdlet("Measure-Object", [Param("Property", "list", 0), Param("Sum", "switch"), Param("Maximum", "switch"),
                           Param("Minimum", "switch"), Param("Average", "switch"), Param("Line", "switch")],
        "MeasureObject")
def _measure_object(ctx: Context, b: dict, data: list) -> list:
    props = {"Count": len(data), "Average": None, "Sum": None, "Maximum": None, "Minimum": None, "Property": None}
    return [PSObj(["Microsoft.PowerShell.Commands.GenericMeasureInfo", "System.Object"], props,
                  "Microsoft.PowerShell.Commands.GenericMeasureInfo")]


# --- Get-NetTCPConnection (NetTCPIP module), from the bundle's netstat -ano -----------------------------------
# GUESS (no capture in the corpus): property names and State strings from Microsoft's MSFT_NetTCPConnection
# documentation; rows are netstat's TCP rows, so the two views of the host always agree.

NET_TCP_TYPES = ["Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetTCPConnection",
                 "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetTransportConnection",
                 "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/CIM_ProtocolEndpoint",
                 "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/CIM_ServiceAccessPoint",
                 "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/CIM_EnabledLogicalElement",
                 "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/CIM_LogicalElement",
                 "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/CIM_ManagedSystemElement",
                 "Microsoft.Management.Infrastructure.CimInstance#MSFT_NetTCPConnection",
                 "Microsoft.Management.Infrastructure.CimInstance", "System.Object"]
_TCP_STATE = {"LISTENING": "Listen", "ESTABLISHED": "Established", "TIME_WAIT": "TimeWait",
              "CLOSE_WAIT": "CloseWait", "SYN_SENT": "SynSent", "SYN_RECEIVED": "SynReceived",
              "FIN_WAIT_1": "FinWait1", "FIN_WAIT_2": "FinWait2", "LAST_ACK": "LastAck", "CLOSING": "Closing",
              "CLOSED": "Closed", "BOUND": "Bound"}


def _split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    return host, int(port) if port.isdigit() else 0


@cmdlet("Get-NetTCPConnection", [Param("LocalAddress", "list"), Param("LocalPort", "int", 1),
                                 Param("RemoteAddress", "list"), Param("RemotePort", "int"), Param("State", "list"),
                                 Param("OwningProcess", "int")], "GetNetTCPConnection")
def _get_net_tcp_connection(ctx: Context, b: dict, data: list) -> list:
    text = ctx.m.text("netstat")
    rows = []
    for ln in (text or "").splitlines():
        r = parse_netstat_row(ln)
        if r is None or r.proto.upper() != "TCP":
            continue
        la, lp = _split_addr(r.local)
        ra, rp = _split_addr(r.foreign)
        state = _TCP_STATE.get(r.state.upper(), r.state)
        rows.append(PSObj(NET_TCP_TYPES, {
            "LocalAddress": la, "LocalPort": UInt32(lp), "RemoteAddress": ra, "RemotePort": UInt32(rp),
            "State": state, "AppliedSetting": None, "OwningProcess": UInt32(r.pid),
            "CreationTime": None, "OffloadState": "InHost"},
            f"MSFT_NetTCPConnection (LocalAddress = \"{la}\", LocalPort = {lp}, RemoteAddress = \"{ra}\", "
            f"RemotePort = {rp})", origin="nettcp"))
    rows.sort(key=lambda o: (o.get("LocalAddress") != "::", o.get("LocalAddress"), int(o.get("LocalPort"))))
    want = rows
    if b.get("LocalPort"):
        want = [o for o in want if int(o.get("LocalPort")) in b["LocalPort"]]
    if b.get("RemotePort"):
        want = [o for o in want if int(o.get("RemotePort")) in b["RemotePort"]]
    if b.get("OwningProcess"):
        want = [o for o in want if int(o.get("OwningProcess")) in b["OwningProcess"]]
    if b.get("State"):
        states = {str(s).lower() for s in b["State"]}
        want = [o for o in want if str(o.get("State")).lower() in states]
    if b.get("LocalAddress"):
        want = [o for o in want if o.get("LocalAddress") in b["LocalAddress"]]
    if b.get("RemoteAddress"):
        want = [o for o in want if o.get("RemoteAddress") in b["RemoteAddress"]]
    if not want and any(b.get(k) for k in ("LocalPort", "RemotePort", "OwningProcess", "State", "LocalAddress",
                                            "RemoteAddress")):
        # CIM cmdlets report an empty filtered query as an ObjectNotFound error (GUESS: wording from
        # Get-NetTCPConnection -LocalPort 1 on Windows, as commonly quoted)
        ctx.error(api.ErrorSpec(
            message="No MSFT_NetTCPConnection objects found with property "
                    + ", ".join(f"'{k}' equal to '{','.join(str(x) for x in v)}'" for k, v in b.items()
                                if isinstance(v, list) and v) + ".  Verify the value of the property and retry.",
            fully_qualified_error_id="CmdletizationQuery_NotFound_LocalPort,Get-NetTCPConnection",
            category=13, exception_type="Microsoft.PowerShell.Cmdletization.Cim.CimJobException",
            command_name="Get-NetTCPConnection"))
    return want


_ = CAT_INVALID_ARGUMENT
