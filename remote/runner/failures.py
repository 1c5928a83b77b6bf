"""Failure classes of a host (``TABLE``), and the class of whatever a collection raised. Pure (no IO).

A host's status is one ``HostStatus``; ``TABLE`` says for each whether the host counts as scanned
(exit code 1 when not) and what it means (the README's table is generated from it). A new class is a
new member, a new row, and the ``classify`` branch that returns it.
"""

from __future__ import annotations

import errno
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Iterable, Optional
from xml.etree.ElementTree import ParseError

from remote.enums import StrEnum
from remote.errors import Port80Error


class HostStatus(StrEnum):
    """A host's status: ``ok``, ``partial``, or the class of the failure that stopped its collection."""

    OK = "ok"
    PARTIAL = "partial"
    UNREACHABLE = "unreachable"
    TLS = "tls"
    AUTH = "auth"
    TIMEOUT = "timeout"
    WINRM = "winrm"
    ERROR = "error"
    LOCAL = "local"


@dataclass(frozen=True)
class FailureClass:
    status: HostStatus
    scanned: bool  # its evidence was collected and analysed; False: every port unknown, exit code 1
    meaning: str  # the README's failure-class table (a test keeps the two equal)


# The one failure-class table: classification (``classify``), the exit code (``FAILED``), the report
# schema's status enum and the README table all read it.
TABLE: tuple[FailureClass, ...] = (
    FailureClass(HostStatus.OK, True, "every command answered"),
    FailureClass(HostStatus.PARTIAL, True, "some commands failed: which, and why (e.g. not elevated)"),
    FailureClass(HostStatus.UNREACHABLE, False, "DNS, refused, no route"),
    FailureClass(HostStatus.TLS, False, "certificate"),
    FailureClass(HostStatus.AUTH, False, "credentials refused"),
    FailureClass(HostStatus.TIMEOUT, False, "port80's per-host `--timeout`, enforced by port80 itself"),
    FailureClass(HostStatus.WINRM, False, "WSMan fault with its code and message, or the WinRM endpoint answering "
                                          "an HTTP error"),
    FailureClass(HostStatus.ERROR, False, "anything else, one line"),
    FailureClass(HostStatus.LOCAL, False, "port80's own failure, not the host's: its disk was full, or it could not "
                                          "process the evidence; `--resume` scans such hosts again"),
)
CLASSES: tuple[str, ...] = tuple(c.status.value for c in TABLE)
FAILED: tuple[str, ...] = tuple(c.status.value for c in TABLE if not c.scanned)  # not scanned: exit code 1
LOCAL = HostStatus.LOCAL
README_BEGIN = "<!-- failure classes: generated from remote/runner/failures.py -->"
README_END = "<!-- end of failure classes -->"


def readme_table() -> str:
    rows = ["| class | scanned | meaning |", "|---|---|---|"]
    rows += [f"| `{c.status}` | {'yes' if c.scanned else 'no: exit 1'} | {c.meaning} |" for c in TABLE]
    return "\n".join(rows) + "\n"


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DeadlineExceeded(Port80Error):
    """port80's own per-host deadline ran out."""


class Classified(Port80Error):
    """A failure classified where it happened (a Dask worker): its class and one-line message."""

    def __init__(self, status: str, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


def _chain(exc: Optional[BaseException]) -> Iterable[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        for a in getattr(exc, "args", ()):
            if isinstance(a, BaseException) and id(a) not in seen:
                yield a
                inner = getattr(a, "reason", None)
                if isinstance(inner, BaseException):
                    yield inner
        reason = getattr(exc, "reason", None)
        if isinstance(reason, BaseException) and id(reason) not in seen:
            yield reason
        exc = exc.__cause__ or exc.__context__


def one_line(text: object, secrets: Iterable[str] = (), limit: int = 400) -> str:
    """``text`` on one line, secrets masked (before it is cut, so no part of one survives), at most ``limit``."""
    text = " ".join(str(text).split())
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text[:limit]



def classify(exc: BaseException, secrets: Iterable[str] = ()) -> tuple[str, str]:
    """(class, one-line message) for an exception raised while collecting from a host."""
    import requests
    from pypsrp.exceptions import (
        AuthenticationError,
        WinRMTransportError,
        WSManFaultError,
    )

    secrets = list(secrets)
    chain = list(_chain(exc))
    if isinstance(exc, Classified):
        return exc.status, one_line(exc.error, secrets)
    if isinstance(exc, DeadlineExceeded):
        return HostStatus.TIMEOUT, one_line(str(exc) or "per-host deadline exceeded", secrets)
    if isinstance(exc, AuthenticationError) or (isinstance(exc, WinRMTransportError) and exc.code == 401):
        return HostStatus.AUTH, one_line(f"authentication failed: {exc.message if hasattr(exc, 'message') else exc}", secrets)
    if isinstance(exc, WSManFaultError):
        code = exc.code
        # many real faults carry their text only inside f:ProviderFault (empty Reason)
        text = exc.reason or exc.provider_fault or (f"provider {exc.provider}" if exc.provider else "") or "no message"
        if code == 5:  # Win32 ERROR_ACCESS_DENIED: the account is valid but may not use PowerShell remoting
            return HostStatus.AUTH, one_line(f"access denied (WSMan fault 5: {text}); the account needs PowerShell remoting "
                                    "rights on the host (Administrators or Remote Management Users, or the "
                                    "endpoint's permissions)", secrets)
        return HostStatus.WINRM, one_line(f"WSMan fault {code}: {text}", secrets)
    if isinstance(exc, WinRMTransportError):
        body = (exc.response_text or "").strip()
        return HostStatus.WINRM, one_line(f"WinRM endpoint answered HTTP {exc.code}" + (f": {body}" if body else ""), secrets)
    err = next((e for e in chain if isinstance(e, (ssl.SSLError, ssl.CertificateError, requests.exceptions.SSLError))),
               None)
    if err is not None:
        reason = getattr(err, "verify_message", None) or getattr(err, "reason", None) or str(err)
        return HostStatus.TLS, one_line(f"TLS: {reason}", secrets)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return HostStatus.UNREACHABLE, one_line("connection timed out (no route, or filtered)", secrets)
    if isinstance(exc, (requests.exceptions.Timeout, socket.timeout, TimeoutError)):
        return HostStatus.TIMEOUT, one_line("no answer within the read timeout", secrets)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return _connection_class(chain, secrets)
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return HostStatus.UNREACHABLE, one_line(str(exc), secrets)
    if isinstance(exc, ParseError):
        return HostStatus.ERROR, one_line(f"garbled response from WinRM (XML ParseError: {exc})", secrets)
    if isinstance(exc, struct.error):
        return HostStatus.ERROR, one_line(f"garbled PSRP data (struct.error: {exc})", secrets)
    return HostStatus.ERROR, one_line(f"{type(exc).__name__}: {exc}", secrets)


def _connection_class(chain: list[BaseException], secrets: list[str]) -> tuple[str, str]:
    import urllib3.exceptions as u3

    for e in chain:
        if isinstance(e, socket.gaierror) or "NameResolutionError" in type(e).__name__ or "getaddrinfo" in str(e):
            return HostStatus.UNREACHABLE, one_line("name not resolved (DNS)", secrets)
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or "Connection refused" in str(e) or "[Errno 111]" in str(e):
            return HostStatus.UNREACHABLE, one_line("connection refused (nothing listens on the WinRM port)", secrets)
        if isinstance(e, OSError) and getattr(e, "errno", None) in (101, 113, 110):  # unreachable, no route, timed out
            return HostStatus.UNREACHABLE, one_line(f"no route to host ({e.strerror or e})", secrets)
    for e in chain:
        if isinstance(e, u3.NewConnectionError) or "Failed to establish a new connection" in str(e):
            return HostStatus.UNREACHABLE, one_line(f"cannot connect: {e}", secrets)
    for e in chain:
        if isinstance(e, (ConnectionResetError, BrokenPipeError)) or "RemoteDisconnected" in type(e).__name__ \
                or "Connection aborted" in str(e) or "Connection reset" in str(e):
            return HostStatus.ERROR, one_line("connection closed by the host without a response", secrets)
    return HostStatus.ERROR, one_line(f"connection error: {chain[0]}", secrets)


def partial_message(command_errors: dict[str, str]) -> Optional[str]:
    """One line naming the commands that failed and why (None when none did)."""
    if not command_errors:
        return None
    return "; ".join(f"{k}: {v}" for k, v in command_errors.items())
