"""Per-host fault switches: a broken Windows host, as the pypsrp client sees it.

A fault comes from the bundle's host.json (``lab.fault``, read by ``LabHost.faults``) or is given on
the command line / to the fixture, overriding the bundle's for that host. One fault is a dict with a
``kind``; a list of such dicts combines them (e.g. latency + slow).

=============  =====================================================  ==========================================
kind           what the host does                                      what pypsrp raises (as against real Windows)
=============  =====================================================  ==========================================
refuse         no listener at all                                      requests.exceptions.ConnectionError
auth           401 to every request (wrong password)                   pypsrp.exceptions.AuthenticationError
hang           accepts, reads the request, never answers               requests.exceptions.ReadTimeout
hang_receive   only a pipeline Receive never answers                   ReadTimeout after pypsrp's 5 Receive retries
slow           pipeline output only after ``seconds``; meanwhile       nothing: pypsrp polls again on each
               the OperationTimeout fault each OperationTimeout        OperationTimeout fault (2150858793)
latency        ``ms`` added to every request                           nothing (slower)
wsman_fault    HTTP 500 WSManFault ``code``/``message`` on ``action``  pypsrp.exceptions.WSManFaultError (.code)
garbage        HTTP 200 with a non-XML body                            xml.etree.ElementTree.ParseError
reset          closes the TCP connection without a response (RST)      requests.exceptions.ConnectionError
http500        HTTP 500 with a text/plain body                         pypsrp.exceptions.WinRMTransportError
slow_open      the pool open's second Receive (RUNSPACEPOOL_STATE)     WSManFaultError 2150858793 from pypsrp's
               only after ``seconds`` (OperationTimeout faults first)  RunspacePool.open (it does not retry)
access_denied  Create answered with fault Code 5 "Access is denied."   WSManFaultError (.code 5): an account
               (a valid account without remoting rights)               without remoting rights
provider_fault Create answered with a fault whose text is only in       WSManFaultError with an empty reason and
               ``f:ProviderFault`` (empty Reason; recorded shape)       the text in .provider_fault
=============  =====================================================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Union

from remote.errors import Port80Error
from remote.lab.protocol import wsman

KINDS = (
    "refuse",
    "auth",
    "hang",
    "hang_receive",
    "slow",
    "latency",
    "wsman_fault",
    "garbage",
    "reset",
    "http500",
    "slow_open",
    "access_denied",
    "provider_fault",
)
ENGINE_KINDS = ("not_elevated",)  # faults the Windows emulation (remote/lab/engine/host.py) implements: ignored here
WSMAN_ACTIONS = ("create", "receive", "command", "send", "signal", "delete", "get", "any")
DEFAULT_FAULT_MESSAGE = "The WS-Management service cannot process the request. (lab fault)"


class FaultError(Port80Error, ValueError):
    """A fault specification that cannot be used (message says why)."""


@dataclass
class Faults:
    """The fault switches of one emulated host (all off by default)."""

    refuse: bool = False
    auth: bool = False
    hang: bool = False
    hang_receive: bool = False
    slow_seconds: float = 0.0
    latency_ms: float = 0.0
    wsman_faults: dict[str, tuple[int, str]] = field(default_factory=dict)  # lower-case action -> (code, message)
    garbage: bool = False
    reset: bool = False
    http500: bool = False
    slow_open_seconds: float = 0.0
    access_denied: bool = False
    provider_fault: bool = False
    kinds: list[str] = field(default_factory=list)  # the kinds given, in order (for display)

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def wsman_fault_for(self, action: str) -> Optional[tuple[int, str]]:
        if not self.wsman_faults:
            return None
        return self.wsman_faults.get(action.lower()) or self.wsman_faults.get("any")

    def describe(self) -> str:
        return ",".join(self.kinds) if self.kinds else "none"


FaultSpec = Union[None, str, dict, Iterable[dict]]


def _number(spec: dict, keys: Iterable[str], default: float) -> float:
    for k in keys:
        if k in spec and spec[k] is not None:
            try:
                return float(spec[k])
            except (TypeError, ValueError):
                raise FaultError(f"fault {spec.get('kind')!r}: {k}={spec[k]!r} is not a number") from None
    return default


def parse_faults(spec: FaultSpec) -> Faults:
    """``Faults`` from a host.json ``lab.fault`` value: ``{}``, ``{"kind": ...}``, a kind string, or a list."""
    f = Faults()
    if spec is None or spec == {} or spec == []:
        return f
    items: list[Any]
    if isinstance(spec, (str, dict)):
        items = [spec]
    else:
        items = list(spec)
    for item in items:
        if isinstance(item, str):
            item = {"kind": item}
        if not isinstance(item, dict):
            raise FaultError(f"fault {item!r}: expected an object with a 'kind'")
        kind = str(item.get("kind", "")).strip().lower().replace("-", "_")
        if not kind or kind == "none" or kind in ENGINE_KINDS:
            continue
        if kind not in KINDS:
            raise FaultError(f"unknown fault kind {kind!r} (choose from {', '.join(KINDS)})")
        f.kinds.append(kind)
        if kind == "slow":
            f.slow_seconds = _number(item, ("seconds", "delay", "s"), 5.0)
        elif kind == "slow_open":
            f.slow_open_seconds = _number(item, ("seconds", "delay", "s"), 5.0)
        elif kind == "latency":
            ms = _number(item, ("ms", "latency_ms", "milliseconds"), -1.0)
            if ms < 0:
                ms = _number(item, ("seconds",), 0.1) * 1000.0
            f.latency_ms = ms
        elif kind == "wsman_fault":
            action = str(item.get("action") or "Create").strip().lower()
            if action not in WSMAN_ACTIONS:
                raise FaultError(f"wsman_fault action {item.get('action')!r}: choose from Create, Command, "
                                 "Receive, Send, Signal, Delete, Get, Any")
            code = int(_number(item, ("code",), wsman.CODE_INTERNAL))
            message = str(item.get("message") or DEFAULT_FAULT_MESSAGE)
            f.wsman_faults[action] = (code, message)
        else:
            setattr(f, kind, True)
    return f


def parse_fault_option(text: str) -> tuple[str, dict]:
    """``NAME=KIND[:ARG[:ARG]]`` from the command line -> (host name, fault dict).

    ``slow:5`` / ``slow_open:5`` (seconds), ``latency:200`` (ms), ``wsman_fault:Command[:CODE[:MESSAGE]]``.
    """
    if "=" not in text:
        raise FaultError(f"--fault {text!r}: expected HOST=KIND[:ARG] (e.g. web-01=slow:5)")
    name, _, rest = text.partition("=")
    name = name.strip()
    parts = rest.split(":", 3)
    kind = parts[0].strip().lower().replace("-", "_")
    spec: dict[str, Any] = {"kind": kind}
    args = parts[1:]
    if kind in ("slow", "slow_open") and args:
        spec["seconds"] = args[0]
    elif kind == "latency" and args:
        spec["ms"] = args[0]
    elif kind == "wsman_fault":
        if args:
            spec["action"] = args[0]
        if len(args) > 1:
            spec["code"] = args[1]
        if len(args) > 2:
            spec["message"] = args[2]
    parse_faults(spec)  # validate now
    if not name:
        raise FaultError(f"--fault {text!r}: no host name before '='")
    return name, spec
