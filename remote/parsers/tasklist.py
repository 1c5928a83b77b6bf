"""``tasklist /svc`` (and plain ``tasklist`` / ``tasklist /FI``) → :class:`TasklistResult`.

Shapes handled (tests/fixtures/tasklist):

* ``/svc`` (htb-academy-winlpe-srv01-ws2016-svc): ``Image Name  PID Services`` header and
  ``===`` underline; image names with spaces and truncated to 25 characters
  (``FileZilla Server Interfac``); services comma-separated and wrapped onto continuation lines
  (35-space indent, or none when indentation was lost: the wrapped line then follows a row whose
  services end with ``,``); ``N/A`` → ``[]``;
* the default / ``/FI`` shape (``Session Name  Session#  Mem Usage``): image + PID, no services,
  with or without header, French ``Ko`` and a thousands separator mangled to ``?``
  (gh-x64dbgmcp-21-fr-win11-findstr); a hand-edited row whose image overflows its column
  (bookofdaniel-fi-pid-ssrs) is read by the regular-expression fallback.

Columns come from the ``===`` underline when there is one and the row fits it; otherwise from
regular expressions keyed on the PID and memory shapes. ``INFO:`` lines ("no tasks match") give an
empty, error-free result.
"""

from __future__ import annotations

import re
from typing import Optional

from .records import TaskProcess, TasklistResult
from .common import _INFO_RE, Line, detect_error, is_marker, is_rule, never_raise, split_lines, to_int

_MEM = r"[\d.,?'\u00a0\u202f ]*\d\s?[KMG]\w{0,2}"
_DEFAULT_ROW = re.compile(
    r"^(?P<image>\S.{0,259}?)\s+(?P<pid>\d{1,10})\s+(?:(?P<session>\S.{0,63}?)\s+)?"
    r"(?P<num>\d{1,5})\s+(?P<mem>" + _MEM + r")$",
    re.ASCII,
)
_SVC_ROW = re.compile(r"^(?P<image>\S.{0,259}?)\s+(?P<pid>\d{1,10})(?:\s+(?P<rest>\S.*))?$", re.ASCII)
_MAX_LINE = 2000


def _spans(rule: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", rule)]


def _services(text: str) -> list[str]:
    t = text.strip()
    if not t or t.upper() == "N/A":
        return []
    return [s.strip() for s in t.split(",") if s.strip()]


def _by_columns(ln: Line, spans: list[tuple[int, int]]) -> Optional[tuple[str, int, str]]:
    """(image, pid, rest) when the row fits the ``===`` columns exactly."""
    if len(spans) < 2:
        return None
    raw = ln.raw
    (s0, e0), (s1, e1) = spans[0], spans[1]
    if len(raw) < e1 or raw[e0 : e0 + 1] not in (" ", "") or raw[s1 - 1 : s1] not in (" ", ""):
        return None
    image, pid = raw[s0:e0].strip(), to_int(raw[s1:e1])
    if not image or pid is None:
        return None
    rest = raw[spans[2][0] :].strip() if len(spans) > 2 else ""
    return image, pid, rest


@never_raise(TasklistResult)
def parse_tasklist(text: str) -> TasklistResult:
    """Parse ``tasklist [/svc] [/FI ...]`` table output; never raises."""
    res = TasklistResult()
    lines = split_lines(text)
    spans: list[tuple[int, int]] = []
    header_nos: set[int] = set()
    prev_nonblank: Optional[Line] = None
    for ln in lines:  # the line above each "=== ===" underline is a column header
        if ln.text and is_rule(ln.text) and "=" in ln.text:
            if prev_nonblank is not None:
                header_nos.add(prev_nonblank.no)
        if ln.text:
            prev_nonblank = ln
    svc_mode: Optional[bool] = None  # True: /svc, False: default columns, None: unknown
    last: Optional[TaskProcess] = None
    last_rest = ""
    for ln in lines:
        t = ln.text
        if not t or is_marker(t) or ln.no in header_nos:
            continue
        if len(t) > _MAX_LINE:
            res.warnings.append(f"line {ln.no}: overlong line skipped")
            continue
        if is_rule(t):
            if "=" in t:
                spans = _spans(ln.raw)
                svc_mode = len(spans) == 3
            continue
        if _INFO_RE.match(t):
            res.warnings.append(f"line {ln.no}: {t[:80]}")
            continue
        if last is not None and svc_mode is not False and (ln.indent >= 20 or last_rest.endswith(",")):
            if ln.indent >= 20 or not _SVC_ROW.match(t):
                last.services.extend(_services(t))  # wrapped service list
                last_rest = t
                continue
        row = _row(ln, spans, svc_mode)
        if row is None:
            res.warnings.append(f"line {ln.no}: unrecognized line {t[:60]!r}")
            continue
        image, pid, rest, is_svc = row
        last = TaskProcess(image=image, pid=pid, services=_services(rest) if is_svc else [], line=ln.no)
        last_rest = rest if is_svc else ""
        res.processes.append(last)
    if not res.processes:
        res.error = detect_error(text)
    return res


def _row(ln: Line, spans: list[tuple[int, int]], svc_mode: Optional[bool]) -> Optional[tuple[str, int, str, bool]]:
    t = ln.text
    if spans and ln.indent == 0:
        cols = _by_columns(ln, spans)
        if cols is not None:
            return cols[0], cols[1], cols[2], bool(svc_mode)
    if svc_mode is not True:
        m = _DEFAULT_ROW.match(t)
        if m:
            return m.group("image"), int(m.group("pid")), "", False
    if svc_mode is not False:
        m = _SVC_ROW.match(t)
        if m:
            return m.group("image"), int(m.group("pid")), m.group("rest") or "", True
    return None
