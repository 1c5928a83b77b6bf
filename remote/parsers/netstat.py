"""``netstat -ano`` / ``-abno`` (and ``findstr`` excerpts of them) → :class:`NetstatResult`.

Shapes handled (tests/fixtures/netstat):

* full or excerpted ``-ano`` with its ``Active Connections`` / ``Proto ...`` header
  (gh-runner-images-9915-ws2022-excerpt) or without any header, with indentation intact
  (htb-overwatch-findstr-tcp, gh-x64dbgmcp-21-fr-win11-findstr), reduced (uts-iotbay-ipv6-8080-pid4)
  or lost (htb-flight-findstr-listening, bookofdaniel-8082-find);
* ``-abo`` / ``-abon``: owner lines after a row — service line(s) (``  RpcSs``), image
  (`` [svchost.exe]``) and `` Can not obtain ownership information``, attached to the preceding
  socket by order, not by indentation (thm-winclr-abon-trailing-spaces, blog-pid4-abo-excerpt with
  a host name as foreign address ``myhostname:0``);
* TCP/TCPv6/UDP/UDPv6, ``[::]:80``, zone ids ``[fe80::1%4]:139``, UDP ``*:*`` (no state: the PID
  is then the 4th column), multi-word localized states (PID = last integer token);
* bonus: ``Get-NetTCPConnection | Select LocalAddress,LocalPort,OwningProcess`` tables
  (htb-overwatch-oxdf-get-nettcpconnection; State/Remote* columns used when present).

States are normalized to English. The corpus has no localized state word at all (French Windows 11
and Japanese Windows 8 print ``LISTENING``); the localized words below come from third-party
fixtures and are **unverified**. Structurally, a TCP row whose foreign end is ``0.0.0.0:0``,
``[::]:0``, ``*:*`` (or any host with port 0) is a listener whatever the word (``BOUND`` excepted: ``netstat -q`` prints
bound, non-listening sockets with the same foreign end).
"""

from __future__ import annotations

import functools
import re
from typing import Optional

from .records import NetstatResult, Socket
from .common import detect_error, is_marker, is_rule, never_raise, split_lines, strip_accents, to_int

_STATES = {
    # English, as printed by netstat (and the Get-NetTCPConnection enum names)
    "LISTENING": "LISTENING", "LISTEN": "LISTENING",
    "ESTABLISHED": "ESTABLISHED",
    "TIME_WAIT": "TIME_WAIT", "TIMEWAIT": "TIME_WAIT",
    "CLOSE_WAIT": "CLOSE_WAIT", "CLOSEWAIT": "CLOSE_WAIT",
    "SYN_SENT": "SYN_SENT", "SYNSENT": "SYN_SENT",
    "SYN_RECEIVED": "SYN_RECEIVED", "SYN_RCVD": "SYN_RECEIVED", "SYNRECEIVED": "SYN_RECEIVED",
    "FIN_WAIT_1": "FIN_WAIT_1", "FIN_WAIT1": "FIN_WAIT_1", "FINWAIT1": "FIN_WAIT_1",
    "FIN_WAIT_2": "FIN_WAIT_2", "FIN_WAIT2": "FIN_WAIT_2", "FINWAIT2": "FIN_WAIT_2",
    "LAST_ACK": "LAST_ACK", "LASTACK": "LAST_ACK",
    "CLOSING": "CLOSING",
    "CLOSED": "CLOSED",
    "BOUND": "BOUND",
    "DELETE_TCB": "DELETE_TCB", "DELETETCB": "DELETE_TCB",
    # German (unverified: third-party fixtures, NOTES §4)
    "ABHOREN": "LISTENING", "ABHOEREN": "LISTENING",
    "HERGESTELLT": "ESTABLISHED",
    "WARTEND": "TIME_WAIT",
    "SCHLIESSEN_WARTEN": "CLOSE_WAIT",
    # Spanish (unverified)
    "ESCUCHANDO": "LISTENING", "ESTABLECIDO": "ESTABLISHED",
    # French (unverified; fixtures disagree on accents, both accepted)
    "A_L'ECOUTE": "LISTENING", "ECOUTE": "LISTENING", "ETABLI": "ESTABLISHED",
    # Italian (unverified; "IN ATTESA" seen in a fixture is left out: it means "waiting")
    "IN_ASCOLTO": "LISTENING", "STABILITO": "ESTABLISHED",
}

# Windows netstat without -n prints well-known ports by name (e.g. "server:https"); no corpus sample.
_PORT_NAMES = {"http": 80, "https": 443, "epmap": 135, "netbios-ssn": 139, "microsoft-ds": 445,
               "wsd": 5357, "ms-wbt-server": 3389, "wsman": 5985, "wsmans": 5986}

_PROTO_RE = re.compile(r"^(TCP|UDP)(v6)?$", re.IGNORECASE)
_WILDCARD_FOREIGN = {("0.0.0.0", 0), ("::", 0), ("*", None)}
# English title; German and Spanish ones from third-party fixtures only (NOTES §4, unverified).
_TITLE_RE = re.compile(r"^(?:active connections|aktive verbindungen|conexiones activas)$", re.IGNORECASE)
_OWNERSHIP_RE = re.compile(r"ownership information", re.IGNORECASE)
_IMAGE_RE = re.compile(r"^\[(.+)\]$")
_GNTC_COLS = {"localaddress", "localport", "remoteaddress", "remoteport", "state", "owningprocess"}


def normalize_state(word: str) -> Optional[str]:
    """English state for a (possibly localized) netstat state word; None when unknown."""
    key = strip_accents(word).upper().replace("\u2019", "'").replace("-", "_")
    key = "_".join(key.split())
    return _STATES.get(key)


def split_endpoint(s: str) -> tuple[str, Optional[int], bool]:
    """``"[::]:80"`` → ``("::", 80, True)``; ``"*:*"`` → ``("*", None, False)``."""
    s = s.strip()
    if s.startswith("["):
        end = s.find("]")
        if end > 0:
            addr, port_text = s[1:end], s[end + 1 :].lstrip(":")
            return addr, _port(port_text), True
    addr, sep, port_text = s.rpartition(":")
    if not sep:
        return s, None, ":" in s
    return addr, _port(port_text), ":" in addr


def _port(text: str) -> Optional[int]:
    n = to_int(text)
    if n is not None:
        return n if 0 <= n < 65536 else None
    return _PORT_NAMES.get(text.lower())


_RowFields = tuple[str, str, Optional[int], Optional[str], Optional[int], Optional[str], Optional[int], bool]


@functools.lru_cache(maxsize=1024)  # rows repeat from host to host (common.py CACHE_NOTE)
def _row_text(t: str) -> Optional[tuple[_RowFields, tuple[str, ...]]]:
    """A row's Socket fields and warnings (``_row``), from its stripped text; None: not a row."""
    return _row(tuple(t.split()))


def _row(tokens: tuple[str, ...]) -> Optional[tuple[_RowFields, tuple[str, ...]]]:
    """A row's Socket fields (proto … ipv6) and its warnings without their line prefix; None: not a row."""
    proto_m = _PROTO_RE.match(tokens[0])
    if not proto_m or len(tokens) < 3:
        return None
    notes: list[str] = []
    proto = proto_m.group(1).upper()
    laddr, lport, l6 = split_endpoint(tokens[1])
    raddr, rport, r6 = split_endpoint(tokens[2])
    if lport is None and laddr != "*":
        return None  # not "addr:port": a findstr hit in some other text
    rest = tokens[3:]
    pid = to_int(rest[-1]) if rest else None
    words = rest[:-1] if pid is not None else rest
    if pid is None and rest and any(c.isdigit() for c in rest[-1]) and normalize_state(rest[-1]) is None:
        # the PID column holds something that is not a process ID (-5, 10^23, garbage): no PID
        notes.append(f"PID {rest[-1][:40]!r} is not a process ID; kept without one")
        words = rest[:-1]
    word = " ".join(words)
    state: Optional[str] = None
    if proto == "TCP":
        state = normalize_state(word) if word else None
        # A foreign port of 0 only ever appears on listeners (and -q BOUND sockets); this also
        # covers the non -n host-name form "myhostname:0" (blog-pid4-abo-excerpt).
        if (raddr, rport) in _WILDCARD_FOREIGN or rport == 0:
            if state != "BOUND":
                state = "LISTENING"
        elif word and state is None:
            state = word.upper()
            notes.append(f"unknown TCP state {word!r} kept as printed")
    return (proto, laddr, lport, raddr, rport, state, pid, bool(proto_m.group(2)) or l6 or r6), tuple(notes)


def _gntc_row(cols: list[str], tokens: list[str], no: int) -> Optional[Socket]:
    if len(tokens) != len(cols):
        return None
    row = dict(zip(cols, tokens))
    lport = to_int(row.get("localport", ""))
    if lport is None:
        return None
    raddr = row.get("remoteaddress")
    state_word = row.get("state")
    return Socket(
        proto="TCP",
        local_address=row.get("localaddress", ""),
        local_port=lport,
        remote_address=raddr,
        remote_port=to_int(row.get("remoteport", "")),
        state=normalize_state(state_word) if state_word else None,
        pid=to_int(row.get("owningprocess", "")),
        ipv6=":" in row.get("localaddress", ""),
        line=no,
    )


def _flush_pending(sock: Optional[Socket], pending: list[tuple[int, str]], b_mode: bool,
                   warnings: list[str]) -> None:
    """Owner lines not closed by an ``[image]`` line: "Can not obtain ownership information"."""
    if not pending:
        return
    if sock is not None and b_mode and sock.owner is None:
        sock.owner_unknown = True
    else:
        for no, text in pending:
            warnings.append(f"line {no}: unrecognized line {text[:60]!r}")
    pending.clear()


@never_raise(NetstatResult)
def parse_netstat(text: str) -> NetstatResult:
    """Parse netstat (or Get-NetTCPConnection table) text; never raises."""
    res = NetstatResult()
    lines = split_lines(text)
    # -b evidence anywhere: only then are stray lines after a row "ownership" lines.
    b_mode = any(
        (_IMAGE_RE.match(ln.text) and not is_marker(ln.text)) or _OWNERSHIP_RE.search(ln.text)
        for ln in lines
    )
    last: Optional[Socket] = None
    pending: list[tuple[int, str]] = []
    gntc_cols: Optional[list[str]] = None
    for ln in lines:
        t = ln.text
        if not t:
            continue
        row = _row_text(t)  # first: a row is never a marker or a rule (it starts with TCP/UDP)
        if row is not None:
            fields, notes = row
            if notes:
                res.warnings.extend(f"line {ln.no}: {n}" for n in notes)
            _flush_pending(last, pending, b_mode, res.warnings)
            last = Socket(*fields, line=ln.no)
            res.sockets.append(last)
            continue
        if is_marker(t) or is_rule(t):
            continue
        tokens = t.split()
        low = [x.lower() for x in tokens]
        if low[0] == "proto" or _TITLE_RE.match(t):
            continue  # column header / title (repeated by "netstat -ano 5")
        if {"localaddress", "localport"} <= set(low) and set(low) <= _GNTC_COLS | {"owningprocess"}:
            gntc_cols = low
            continue
        if gntc_cols:
            s = _gntc_row(gntc_cols, tokens, ln.no)
            if s is not None:
                res.sockets.append(s)
                last = None
                continue
        m = _IMAGE_RE.match(t)
        if m and last is not None:
            if last.owner is None:
                last.owner = m.group(1).strip()
                last.owner_services.extend(p for _, p in pending)
                pending.clear()
            else:
                res.warnings.append(f"line {ln.no}: second image line {t!r} ignored")
            continue
        if last is not None and b_mode:
            if _OWNERSHIP_RE.search(t):
                pending.append((ln.no, t))
                _flush_pending(last, pending, b_mode, res.warnings)
            else:
                pending.append((ln.no, t))
            continue
        if last is None and not res.sockets:
            continue  # title / localized header before the first row
        res.warnings.append(f"line {ln.no}: unrecognized line {t[:60]!r}")
    _flush_pending(last, pending, b_mode, res.warnings)
    if not res.sockets:
        res.error = detect_error(text)
    return res
