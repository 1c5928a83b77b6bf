"""Service and process listings → :class:`ServicesResult` / :class:`ProcessesResult`.

JSON (what the collector asks for):

* ``Get-CimInstance Win32_Service | Select-Object Name,DisplayName,State,StartMode,ProcessId |
  ConvertTo-Json``: an array, or a single object when there is one item, Windows PowerShell 5.1
  indentation, possibly a BOM, ``null`` ProcessId; also the 5.1 ``{"value": [...], "Count": n}``
  wrapping of arrays;
* ``Get-Service`` objects (``Status``/``StartType``, strings or the int enums
  Status 1 Stopped … 4 Running … 7 Paused, StartType 0 Boot … 2 Automatic, 3 Manual, 4 Disabled);
* keys in any case; start modes are normalized to the Win32_Service words (``Automatic`` → ``Auto``);
* ``Get-Process | Select-Object Id,ProcessName,Path | ConvertTo-Json`` (and ``Win32_Process``'s
  ProcessId/Name/ExecutablePath).

Text fallback ``parse_services_table`` (tests/fixtures/services): ``wmic service list brief``
(ine-ec2-ws2012r2-wmic-service-list-brief, padded rows, ``...`` excerpt marker); the default
``Get-CimInstance Win32_Service`` table with or without ``PSComputerName``
(gcim-win32service-vmwarehostd, ilcs-cim-query-multihost-pscomputername,
underthewire-century10-cim-wuauserv-trailing-spaces); ``Format-List *``
(crithos-cim-win32service-bits-format-list-star, wrapped values). The ``Get-Service`` table
(msdocs-ps51-get-service-win-ascii-ellipsis, ps76-win11-get-service-unicode-ellipsis-excerpt) is
skipped with a warning: its Name column is cut at 18 characters.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from remote.evidence.textio import REPLACED_NOTE, json_may_hold_surrogates, valid_unicode_value

from .records import ProcessesResult, ProcessInfo, Service, ServicesResult
from .common import Line, detect_error, is_marker, is_rule, never_raise, split_lines, to_int

_STATUS_ENUM = {1: "Stopped", 2: "Start Pending", 3: "Stop Pending", 4: "Running",
                5: "Continue Pending", 6: "Pause Pending", 7: "Paused"}
_RUN_STATES = {v.casefold().replace(" ", ""): v for v in _STATUS_ENUM.values()} | {"unknown": "Unknown"}
_START_ENUM = {0: "Boot", 1: "System", 2: "Auto", 3: "Manual", 4: "Disabled"}
_START_WORDS = {"automatic": "Auto", "auto": "Auto", "manual": "Manual", "disabled": "Disabled",
                "boot": "Boot", "system": "System"}


# --- shared record mapping -----------------------------------------------------------------------


_FOLDED: dict[tuple[Any, ...], tuple[tuple[Any, str], ...]] = {}  # a key tuple -> (key, its folded form) pairs kept
_FOLDED_MAX = 256  # ConvertTo-Json gives every object of one output the same keys: a handful of tuples


def _lower_keys(obj: dict[Any, Any]) -> dict[str, Any]:
    """Keys case-folded; of two keys that fold alike the first wins."""
    keys = tuple(obj)
    pairs = _FOLDED.get(keys)
    if pairs is None:
        seen: dict[str, Any] = {}
        for k in keys:
            seen.setdefault((k if type(k) is str else str(k)).casefold(), k)
        pairs = tuple((k, f) for f, k in seen.items())
        if len(_FOLDED) < _FOLDED_MAX:
            _FOLDED[keys] = pairs
    return {f: obj[k] for k, f in pairs}


def _text(v: Any) -> Optional[str]:
    if type(v) is str:
        return v.strip() or None
    if v is None or isinstance(v, (dict, list)):
        return None
    s = str(v).strip()
    return s or None


def _state(d: dict[str, Any]) -> Optional[str]:
    v = d.get("state")
    if v is None:  # Get-Service: Status is the run state (Win32_Service's Status is health "OK")
        v = d.get("status")
        if isinstance(v, str) and v.replace(" ", "").casefold() not in _RUN_STATES:
            return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _STATUS_ENUM.get(to_int(v) or 0, str(v))
    s = _text(v)
    if s is None:
        return None
    return _RUN_STATES.get(s.replace(" ", "").casefold(), s)


def _start(d: dict[str, Any]) -> Optional[str]:
    v = d.get("startmode", d.get("starttype"))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _START_ENUM.get(to_int(v) or 0, str(v))
    s = _text(v)
    if s is None:
        return None
    return _START_WORDS.get(s.casefold(), s)


def service_from_mapping(obj: dict[Any, Any]) -> Optional[Service]:
    """A :class:`Service` from one JSON object / Format-List block; None without a name."""
    d = _lower_keys(obj)
    name = _text(d.get("name")) or _text(d.get("servicename"))
    if not name:
        return None
    return Service(
        name=name,
        display_name=_text(d.get("displayname")) or _text(d.get("caption")),
        state=_state(d),
        start_mode=_start(d),
        pid=to_int(d.get("processid")),
    )


# --- JSON ----------------------------------------------------------------------------------------


_DECODER = json.JSONDecoder()
_JSON_START = re.compile(r"^[ \t]*[\[{]", re.MULTILINE)


def _salvage(t: str) -> tuple[Optional[Any], Optional[str]]:
    """JSON after junk lines (``WARNING: ...``), or the complete leading objects of a cut-off array."""
    m = _JSON_START.search(t)
    if m is None:
        return None, None
    start = m.end() - 1
    try:
        return _DECODER.raw_decode(t, start)[0], "text around the JSON ignored"
    except (ValueError, RecursionError):
        pass
    if t[start] != "[":
        return None, None
    items, i = [], start + 1
    while True:
        while i < len(t) and t[i] in " \t\r\n,":
            i += 1
        try:
            obj, i = _DECODER.raw_decode(t, i)
        except (ValueError, RecursionError):
            break
        items.append(obj)
    return (items, f"JSON cut off: kept the {len(items)} complete item(s)") if items else (None, None)


def _load_json(text: str) -> tuple[Optional[list[Any]], Optional[str]]:
    """(items, note). Accepts an array, one object, or the 5.1 ``{"value": [...], "Count": n}``
    wrapper; salvages JSON surrounded by other lines and the complete items of a cut-off array.
    items is None when there is no JSON (note says why)."""
    t = text.replace("\ufeff", "").strip()
    if not t:
        return [], None
    note = None
    try:
        data = json.loads(t)
    except (ValueError, RecursionError) as exc:
        data, note = _salvage(t)
        if data is None:
            return None, f"not JSON: {exc}"
    if isinstance(data, dict):
        low = _lower_keys(data)
        if isinstance(low.get("value"), list) and set(low) <= {"value", "count"}:
            data = low["value"]
        else:
            data = [data]
    if not isinstance(data, list):
        return None, f"JSON is a {type(data).__name__}, not an object or array"
    if json_may_hold_surrogates(t):  # a "\ud800" escape decodes to a lone surrogate: U+FFFD, noted
        data, n = valid_unicode_value(data)
        if n:
            note = "; ".join(x for x in (note, f"{n} {REPLACED_NOTE}") if x)
    return data, note


# --- fast paths: the exact shape port80's own pipelines print -----------------------------------------
#
# When every item is a dict with exactly the keys the collector's Select-Object names (spelled as
# PowerShell spells them), the generic mapping above reduces to a few lookups; the values' conversions
# are memoized per string (a handful of distinct states and modes). A fast path returns None as soon as
# anything differs (another key set, an item the generic path would warn about): the caller then runs
# the generic path on the same items, so the records are always the generic path's
# (tests/test_parsers_fast_paths.py compares the two).

FAST_PATHS = True  # tests turn it off to compare with the generic path
_MEMO_MAX = 512
_MISS = object()
_STATE_MEMO: dict[str, Optional[str]] = {}
_START_MEMO: dict[str, Optional[str]] = {}


def memo_str(memo: dict[str, Any], fn: Any, v: Any) -> Any:
    """``fn(v)``, memoized when ``v`` is a str (other values, e.g. ints that equal True, are not keys)."""
    if type(v) is not str:
        return fn(v)
    got = memo.get(v, _MISS)
    if got is _MISS:
        got = fn(v)
        if len(memo) < _MEMO_MAX:
            memo[v] = got
    return got


def _state_value(v: Any) -> Optional[str]:
    return _state({"state": v})


def _start_value(v: Any) -> Optional[str]:
    return _start({"startmode": v})


def _services_fast(items: list[Any]) -> Optional[list[Service]]:
    """Win32_Service objects with exactly the collector's five keys (any order: none folds like another)."""
    out = []
    states, modes = _STATE_MEMO, _START_MEMO
    try:
        for obj in items:
            if type(obj) is not dict or len(obj) != 5:
                return None
            name, dn, state, mode, pid = obj["Name"], obj["DisplayName"], obj["State"], obj["StartMode"], obj["ProcessId"]
            name = name.strip() if type(name) is str else _text(name)
            if not name:
                return None
            out.append(Service(
                name,
                (dn.strip() or None) if type(dn) is str else _text(dn),
                states[state] if type(state) is str and state in states else memo_str(states, _state_value, state),
                modes[mode] if type(mode) is str and mode in modes else memo_str(modes, _start_value, mode),
                pid if type(pid) is int else to_int(pid),
            ))
    except KeyError:
        return None
    return out


def _processes_fast(items: list[Any]) -> Optional[list[ProcessInfo]]:
    """Get-Process objects with exactly the collector's three keys."""
    out = []
    try:
        for obj in items:
            if type(obj) is not dict or len(obj) != 3:
                return None
            pid, name, path = obj["Id"], obj["ProcessName"], obj["Path"]
            if type(pid) is not int:
                pid = to_int(pid)
                if pid is None:
                    return None
            out.append(ProcessInfo(
                pid,
                (name.strip() or None) if type(name) is str else _text(name),
                (path.strip() or None) if type(path) is str else _text(path),
            ))
    except KeyError:
        return None
    return out


@never_raise(ServicesResult)
def parse_services_json(text: str) -> ServicesResult:
    """Parse service JSON (Win32_Service or Get-Service); falls back to the text tables."""
    res = ServicesResult()
    items, problem = _load_json(text)
    if items is not None and problem:
        res.warnings.append(problem)
    if items is None:
        err = detect_error(text)
        if err:
            res.error = err
            return res
        table = parse_services_table(text)
        table.warnings.insert(0, f"{problem}; read as a text table")
        if not table.services:  # neither JSON nor a table: unreadable, as a missing file is (host partial)
            table.error = f"unreadable: {problem}"
        return table
    fast = _services_fast(items) if FAST_PATHS else None
    if fast is not None:
        res.services = fast
        return res
    for i, item in enumerate(items):
        svc = service_from_mapping(item) if isinstance(item, dict) else None
        if svc is None:
            res.warnings.append(f"item {i}: not a service object")
        else:
            res.services.append(svc)
    return res


@never_raise(ProcessesResult)
def parse_processes_json(text: str) -> ProcessesResult:
    """Parse ``Get-Process | Select-Object Id,ProcessName,Path | ConvertTo-Json``."""
    res = ProcessesResult()
    items, problem = _load_json(text)
    if items is not None and problem:
        res.warnings.append(problem)
    if items is None:
        res.error = detect_error(text)
        if not res.error:
            res.warnings.append(problem or "not JSON")
        return res
    fast = _processes_fast(items) if FAST_PATHS else None
    if fast is not None:
        res.processes = fast
        return res
    for i, item in enumerate(items):
        d = _lower_keys(item) if isinstance(item, dict) else {}
        pid = to_int(d.get("id"))
        if pid is None:
            pid = to_int(d.get("processid"))
        if pid is None:
            res.warnings.append(f"item {i}: no process id")
            continue
        res.processes.append(ProcessInfo(
            pid=pid,
            name=_text(d.get("processname")) or _text(d.get("name")),
            path=_text(d.get("path")) or _text(d.get("executablepath")),
        ))
    return res


# --- text tables ---------------------------------------------------------------------------------

_FL_LABEL = re.compile(r"^(?P<key>[A-Za-z_][\w]*)\s*:(?: (?P<value>.*))?$")
_TABLE_COLS = {"processid", "name", "startmode", "state", "status", "exitcode", "pscomputername",
               "displayname", "starttype"}
# Multi-word Win32_Service values, joined before a whitespace split.
_MULTI = re.compile(r"\b(Start|Stop|Continue|Pause) Pending\b|\bPred Fail\b|\bNo Contact\b|\bLost Comm\b")


@never_raise(ServicesResult)
def parse_services_table(text: str) -> ServicesResult:
    """Parse a service listing printed as a table or ``Format-List``; never raises."""
    res = ServicesResult()
    lines = [ln for ln in split_lines(text) if ln.text and not is_marker(ln.text)]
    i = 0
    while i < len(lines):
        ln = lines[i]
        words = [w.casefold() for w in ln.text.split()]
        if "name" in words and set(words) <= _TABLE_COLS and len(words) >= 3:
            if "status" in words and not {"processid", "state"} & set(words):
                res.warnings.append(
                    f"line {ln.no}: Get-Service table skipped (its Name column is truncated)"
                )
                i = _skip_table(lines, i + 1)
                continue
            i = _read_table(lines, i, res)
            continue
        if _FL_LABEL.match(ln.text) and ln.indent == 0:
            i = _read_list(lines, i, res)
            continue
        if not is_rule(ln.text):
            res.warnings.append(f"line {ln.no}: unrecognized line {ln.text[:60]!r}")
        i += 1
    if not res.services:
        res.error = detect_error(text)
    return res


def _skip_table(lines: list[Line], i: int) -> int:
    while i < len(lines) and not _FL_LABEL.match(lines[i].text):
        i += 1
    return i


def _read_table(lines: list[Line], i: int, res: ServicesResult) -> int:
    """wmic / Win32_Service default table: header words give the column order and offsets."""
    header = lines[i]
    cols = [w.casefold() for w in header.text.split()]
    starts = [m.start() for m in re.finditer(r"\S+", header.raw)]
    i += 1
    while i < len(lines):
        ln = lines[i]
        if is_rule(ln.text):
            i += 1
            continue
        if _FL_LABEL.match(ln.text) and ln.indent == 0 and ":" in ln.text:
            break
        row = _row_by_offsets(ln.raw, cols, starts) or _row_by_tokens(ln.text, cols)
        if row is None:
            res.warnings.append(f"line {ln.no}: unrecognized table row {ln.text[:60]!r}")
        else:
            svc = service_from_mapping(row)
            if svc is not None:
                res.services.append(svc)
        i += 1
    return i


def _row_by_offsets(raw: str, cols: list[str], starts: list[int]) -> Optional[dict[str, str]]:
    row: dict[str, str] = {}
    for k, (col, s) in enumerate(zip(cols, starts)):
        if s > 0 and s <= len(raw) and raw[s - 1] != " ":
            return None  # the row does not line up with the header
        end = starts[k + 1] if k + 1 < len(starts) else len(raw)
        row[col] = raw[s:end].strip()
    return row if _row_ok(row) else None


def _row_by_tokens(text: str, cols: list[str]) -> Optional[dict[str, str]]:
    """Collapsed spacing: every column is one token except Name, which takes the rest."""
    tokens = _MULTI.sub(lambda m: m.group(0).replace(" ", "\x00"), text).split()
    tokens = [t.replace("\x00", " ") for t in tokens]
    if "name" not in cols or len(tokens) < len(cols):
        return None
    k = cols.index("name")
    after = len(cols) - k - 1
    row = dict(zip(cols[:k], tokens[:k]))
    row["name"] = " ".join(tokens[k : len(tokens) - after])
    row.update(zip(cols[k + 1 :], tokens[len(tokens) - after :]))
    return row if _row_ok(row) else None


def _row_ok(row: dict[str, str]) -> bool:
    if not row.get("name"):
        return False
    for key in ("processid", "exitcode"):
        if key in row and row[key] and to_int(row[key]) is None:
            return False
    return True


def _read_list(lines: list[Line], i: int, res: ServicesResult) -> int:
    """``Format-List``: ``Key : value`` at column 0, wrapped values indented; a repeated key or a
    new table starts the next object."""
    block: dict[str, str] = {}
    last_key: Optional[str] = None
    while i < len(lines):
        ln = lines[i]
        m = _FL_LABEL.match(ln.text)
        if m and ln.indent == 0:
            key = m.group("key").casefold()
            if key in block:
                _emit(block, res)
                block = {}
            block[key] = (m.group("value") or "").strip()
            last_key = key
        elif last_key is not None and not is_rule(ln.text):  # wrapped value (indent may be lost)
            block[last_key] = (block[last_key] + " " + ln.text).strip()
        else:
            break
        i += 1
    _emit(block, res)
    return i


def _emit(block: dict[str, str], res: ServicesResult) -> None:
    if block:
        svc = service_from_mapping(block)
        if svc is not None:
            res.services.append(svc)
