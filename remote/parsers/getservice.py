"""``Get-Service`` → :class:`GetServiceResult`: each service's run state, start type and dependency lists.

JSON (what the collector asks for; no real capture of this exact pipeline exists, so its shape is
built from PowerShell's documented behaviour and the tests mark it as such)::

    Get-Service | Select-Object Name, DisplayName,
        @{Name='Status';Expression={[string]$_.Status}}, @{Name='StartType';Expression={[string]$_.StartType}},
        @{Name='DependentServices';Expression={[string[]]$_.DependentServices.Name}},
        @{Name='ServicesDependedOn';Expression={[string[]]$_.ServicesDependedOn.Name}} | ConvertTo-Json

* Windows PowerShell 5.1 and PowerShell 7 both give an array (one object when there is one service);
  5.1 indents by 4 with two spaces after the colon, 7 by 2 with one — JSON either way. The ``[string]``
  casts make ``Status``/``StartType`` words on both (without them both print the enum numbers:
  Status 1 Stopped … 4 Running, StartType 0 Boot … 2 Automatic, 3 Manual, 4 Disabled; accepted too).
  ``StartType`` needs .NET 4.6.1: on an older 5.1 host it is ``""`` (unknown).
* A name list is ``null`` when empty (``[string[]]$null``), an array otherwise; a bare string, the 5.1
  ``{"value": [...], "Count": n}`` wrapper and objects with a ``Name`` (``ConvertTo-Json -Depth 3`` of raw
  ServiceControllers) are accepted too.

Text, from real captures (tests/fixtures/getservice/README.md): the default table ``Status Name
DisplayName`` (names cut at 18 characters with ``...`` on 5.1 or ``…`` on 7: flagged ``name_cut``; no
dependency lists), ``Get-Service X -RequiredServices`` (the same table), and ``Format-List`` blocks
with ``DependentServices : {a, b, c}`` / ``RequiredServices`` / ``ServicesDependedOn`` (a list cut at
``$FormatEnumerationLimit``, ``{a, b, c, d...}``, is unknown: None).
"""

from __future__ import annotations

import re
from itertools import accumulate, repeat
from typing import Any, Optional

from .common import Line, detect_error, never_raise, split_lines, to_int
from .records import GetServiceCheck, GetServiceResult, ServiceNode
from . import services
from .services import (
    _RUN_STATES,
    _START_ENUM,
    _START_WORDS,
    _STATUS_ENUM,
    _load_json,
    _lower_keys,
    _text,
    memo_str,
)

_DEP_KEYS = ("dependentservices",)
_REQ_KEYS = ("servicesdependedon", "requiredservices")
_NAME_KEY = re.compile(r'"name"\s*:', re.I)
_COLON = re.compile(r"\s*:")


def _status(v: Any) -> Optional[str]:
    if type(v) is str:
        w = v.strip()
        return _RUN_STATES.get(w.replace(" ", "").casefold(), w) if w else None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _STATUS_ENUM.get(to_int(v) or -1, str(v))
    s = _text(v)
    return None if s is None else _RUN_STATES.get(s.replace(" ", "").casefold(), s)


def _start_type(v: Any) -> Optional[str]:
    if type(v) is str:
        w = v.strip()
        return _START_WORDS.get(w.casefold(), w) if w else None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        n = to_int(v)
        return _START_ENUM.get(n if n is not None else -1, str(v))
    s = _text(v)
    return None if s is None else _START_WORDS.get(s.casefold(), s)


def _names(v: Any) -> Optional[list[str]]:
    """A JSON name list in any of the accepted shapes; None when it is something else."""
    if v is None:
        return []
    if type(v) is list and all(type(x) is str for x in v):  # the usual shape: names, each once
        return list(dict.fromkeys(t for t in (x.strip() for x in v) if t))
    if isinstance(v, dict):
        low = _lower_keys(v)
        if "value" in low and set(low) <= {"value", "count"}:
            return _names(low["value"])
        name = _text(low.get("name")) or _text(low.get("servicename"))
        return [name] if name else None
    if isinstance(v, str):
        return [v.strip()] if v.strip() else []
    if isinstance(v, list):
        out: list[str] = []
        for x in v:
            got = _names(x)
            if got is None:
                return None
            out.extend(n for n in got if n not in out)
        return out
    return None


def _node(obj: dict[Any, Any], line: int, res: GetServiceResult, i: int) -> Optional[ServiceNode]:
    d = _lower_keys(obj)
    name = _text(d.get("name")) or _text(d.get("servicename"))
    if not name:
        return None
    node = ServiceNode(name=name, display_name=_text(d.get("displayname")), status=_status(d.get("status")),
                       start_type=_start_type(d.get("starttype", d.get("startmode"))), line=line)
    for keys, attr in ((_DEP_KEYS, "dependents"), (_REQ_KEYS, "depends_on")):
        for key in keys:
            if key in d:
                got = _names(d[key])
                if got is None:
                    res.warnings.append(f"item {i} ({name}): {key} is not a list of names; treated as unknown")
                setattr(node, attr, got)
                break
    return node


_STATUS_MEMO: dict[str, Optional[str]] = {}
_START_TYPE_MEMO: dict[str, Optional[str]] = {}


def _fast_item(obj: Any) -> Optional[tuple[Any, ...]]:
    """(name, DisplayName, Status, StartType, dependents, depends_on) of an object with exactly the six keys
    of port80's pipeline (GETSERVICE_SCRIPT), the name stripped and the lists read; None when it differs
    or would be warned about (the caller then reads every item with ``_node``)."""
    if type(obj) is not dict or len(obj) != 6:
        return None
    try:
        name, dn, st, sty = obj["Name"], obj["DisplayName"], obj["Status"], obj["StartType"]
        deps, reqs = obj["DependentServices"], obj["ServicesDependedOn"]
    except KeyError:
        return None
    name = name.strip() if type(name) is str else _text(name)
    if not name:
        return None
    deps = [] if deps is None else _names(deps)
    reqs = [] if reqs is None else _names(reqs)
    if deps is None or reqs is None:
        return None
    return name, dn, st, sty, deps, reqs


def _nodes_fast(items: list[Any], lines: list[int]) -> Optional[list[ServiceNode]]:
    """``_node`` for every item when each is ``_fast_item``'s shape; None when any is not (same records)."""
    out = []
    statuses, starts = _STATUS_MEMO, _START_TYPE_MEMO
    for obj, line in zip(items, lines):
        got = _fast_item(obj)
        if got is None:
            return None
        name, dn, st, sty, deps, reqs = got
        out.append(ServiceNode(
            name,
            (dn.strip() or None) if type(dn) is str else _text(dn),
            statuses[st] if type(st) is str and st in statuses else memo_str(statuses, _status, st),
            starts[sty] if type(sty) is str and sty in starts else memo_str(starts, _start_type, sty),
            deps, reqs, False, line))
    return out


def _json_lines(text: str, n: int) -> list[int]:
    """Line of each top-level object's ``"Name":`` (the lists hold bare strings, so every ``"Name":`` is one
    object's); zeros when the count does not match."""
    if text.isascii():  # the usual case, without a Python step per match: split at every "name" (any case)
        low = text.lower()
        parts = low.split('"name"')
        if len(parts) == n + 1 and (low.count('"name":') == n or all(map(_COLON.match, parts[1:]))):
            # every "name" is followed by a colon: these are exactly the regex's matches
            return list(accumulate(map(str.count, parts[:-1], repeat("\n")), initial=1))[1:]
    return _json_lines_regex(text, n)


def _json_lines_regex(text: str, n: int) -> list[int]:
    """``_json_lines`` by the regex, one match at a time (any text)."""
    lines: list[int] = []
    line, pos = 1, 0
    for m in _NAME_KEY.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        lines.append(line)
    return lines if len(lines) == n else [0] * n


@never_raise(GetServiceResult)
def parse_getservice(text: str) -> GetServiceResult:
    """Parse Get-Service output: port80's JSON, else the default table or Format-List blocks."""
    res = GetServiceResult()
    items, problem = _load_json(text)
    if items is None:
        err = detect_error(text)
        if err:
            res.error = err
            return res
        return _parse_text(text, res)
    if problem:
        res.warnings.append(problem)
    lines = _json_lines(text.replace("\ufeff", ""), len(items))
    fast = _nodes_fast(items, lines) if services.FAST_PATHS else None
    if fast is not None:
        res.services = fast
        return res
    for i, item in enumerate(items):
        node = _node(item, lines[i], res, i) if isinstance(item, dict) else None
        if node is None:
            res.warnings.append(f"item {i}: not a service object")
        else:
            res.services.append(node)
    return res


def _fast_complete(items: list[Any]) -> Optional[bool]:
    """``has_graph`` of ``_nodes_fast(items, ...)``'s records without making them: None when ``_nodes_fast``
    would give None (the fields it only converts cannot fail)."""
    if not all(map(_fast_item, items)):
        return None
    return bool(items)  # every list there, none cut: the graph is whole when there is a service


@never_raise(GetServiceResult)
def check_getservice(text: str) -> GetServiceResult:
    """What a fleet scan reads of getservice.json (its error, warnings, ``has_graph``): for port80's own JSON
    (the shape ``_nodes_fast`` reads) a ``GetServiceCheck`` without the ~200 records (~0.45 ms of CPU per
    host); for anything else ``parse_getservice``'s result. tests/test_parsers_fast_paths.py compares both."""
    if services.FAST_PATHS:
        items, problem = _load_json(text)
        if items is not None and not problem:
            complete = _fast_complete(items)
            if complete is not None:
                return GetServiceCheck(complete=complete)
    return parse_getservice(text)


# --- text: the default table and Format-List ---------------------------------------------------------

_CUT = ("...", "\u2026")
_TABLE_HEAD = re.compile(r"^\s*Status\s+Name\s+DisplayName\s*$")
_LIST_ITEM = re.compile(r"^\s*(\w+)\s*:\s?(.*)$")


def _parse_text(text: str, res: GetServiceResult) -> GetServiceResult:
    lines = split_lines(text)
    k = 0
    while k < len(lines):
        c = lines[k].text
        if _TABLE_HEAD.match(c):
            k = _read_table(lines, k, res)
            continue
        m = _LIST_ITEM.match(c)
        if m and m.group(1).casefold() in ("name", "servicename"):
            k = _read_list(lines, k, res)
            continue
        if c.strip():
            res.warnings.append(f"line {lines[k].no}: not Get-Service output; ignored")
        k += 1
    if not res.services and not res.warnings:
        res.warnings.append("no service in the text")
    return res


def _read_table(lines: list[Line], k: int, res: GetServiceResult) -> int:
    head = lines[k].raw
    name_at, dn_at = head.index("Name"), head.index("DisplayName")
    k += 1
    if k < len(lines) and set(lines[k].text.strip()) <= {"-", " "}:
        k += 1
    while k < len(lines) and lines[k].text.strip():
        raw = lines[k].raw
        status, name = raw[:name_at].strip(), raw[name_at:dn_at].strip()
        if not name or not status:
            parts = raw.split(None, 2)
            status, name = (parts + ["", ""])[:2]
        cut = name.endswith(_CUT)
        node = ServiceNode(name=name, display_name=raw[dn_at:].strip() or None, status=_status(status),
                           name_cut=cut, line=lines[k].no)
        if cut:
            res.warnings.append(f"line {lines[k].no}: service name {name!r} is cut by the table (18 characters)")
        res.services.append(node)
        k += 1
    return k


def _brace_list(value: str) -> Optional[list[str]]:
    v = value.strip()
    if not (v.startswith("{") and v.endswith("}")):
        return [v] if v else []
    inner = v[1:-1].strip()
    if inner.endswith(_CUT):
        return None  # cut at $FormatEnumerationLimit: the rest is unknown
    return [x.strip() for x in inner.split(",") if x.strip()]


def _read_list(lines: list[Line], k: int, res: GetServiceResult) -> int:
    block: dict[str, str] = {}
    first = lines[k].no
    while k < len(lines) and lines[k].text.strip():
        m = _LIST_ITEM.match(lines[k].text)
        if m:
            block.setdefault(m.group(1).casefold(), m.group(2).strip())
        k += 1
    name = block.get("name") or block.get("servicename") or ""
    node = ServiceNode(name=name, display_name=block.get("displayname") or None, status=_status(block.get("status")),
                       start_type=_start_type(block.get("starttype")), line=first)
    for keys, attr in ((_DEP_KEYS, "dependents"), (_REQ_KEYS, "depends_on")):
        key = next((x for x in keys if x in block), None)
        if key is None:
            continue
        got = _brace_list(block[key])
        if got is None:
            res.warnings.append(f"line {first}: {name}: {key} is cut (\"...\"): unknown")
        setattr(node, attr, got)
    res.services.append(node)
    return k
