"""Authentication of the lab's WinRM listeners, as a Windows host does it.

* Basic: ``Authorization: Basic`` on every request, checked against the lab user. Like Windows with
  ``AllowUnencrypted=false`` (its default), Basic over plain HTTP is refused with 401 unless the lab
  was started with ``allow_unencrypted=True`` (the client then has to turn encryption off).
* Negotiate/NTLM: a ``spnego.server`` acceptor per TCP connection (HTTP.sys keeps the auth state per
  connection), then WinRM message encryption (``multipart/encrypted``,
  ``application/HTTP-SPNEGO-session-encrypted``) framed with pypsrp's own ``WinRMEncryption`` around
  the acceptor context. An authenticated but unencrypted request over plain HTTP gets HTTP 500, as
  from a host with ``AllowUnencrypted=false``.
* Negotiate/Kerberos (a lab started with a KDC, remote/lab/protocol/kdc.py): the same acceptor also
  takes Kerberos tokens (raw or SPNEGO-wrapped) for the host's own service principal
  ``HTTP/<host>`` only, with the key from the lab's keytab (``KerberosAcceptor``). A host with NTLM
  turned off (``ntlm=False``, ``--auth kerberos``) answers an NTLM token with a bare 401. Message
  encryption is the same framing; the protocol is ``application/HTTP-Kerberos-session-encrypted``
  when the client authenticated with the ``Kerberos`` scheme, SPNEGO's otherwise.
* Wrong credentials: 401, with the same challenge headers (pypsrp raises ``AuthenticationError``).

pyspnego's NTLM acceptor reads its users from the file named by ``NTLM_USER_FILE`` (process-wide),
so every lab of this process shares one generated file; a second lab with a different password
for the same user in the same process is refused (it could not be told apart).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Optional
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # spnego and pypsrp load when a connection authenticates, not with the CLI
    from pypsrp.encryption import WinRMEncryption

log = logging.getLogger("port80.lab.auth")

LAB_USER = "auditor"
LAB_DOMAIN = "LAB"
DEFAULT_PASSWORD = "Lab-Audit-2026!"  # the documented lab password (a lab value, not a secret)
PASSWORD_ENV = "PORT80_LAB_PASSWORD"
REALM = "WSMAN"
SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"  # pypsrp WinRMEncryption.SPNEGO
KERBEROS_PROTOCOL = "application/HTTP-Kerberos-session-encrypted"  # pypsrp WinRMEncryption.KERBEROS
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{SPNEGO_PROTOCOL}";boundary="Encrypted Boundary"'


def lab_password(explicit: Optional[str] = None) -> str:
    """The lab password: ``explicit``, else ``$PORT80_LAB_PASSWORD``, else the documented default."""
    return explicit or os.environ.get(PASSWORD_ENV) or DEFAULT_PASSWORD


@dataclass(frozen=True)
class Credentials:
    user: str = LAB_USER
    password: str = DEFAULT_PASSWORD
    domain: str = LAB_DOMAIN

    def names(self) -> set[str]:
        """The user names Windows would accept for this local account (case-insensitive)."""
        u, d = self.user.lower(), self.domain.lower()
        return {u, f"{d}\\{u}", f"{u}@{d}", f".\\{u}"}

    def matches_user(self, name: str) -> bool:
        return name.lower() in self.names()

    def check_basic(self, header_value: str) -> Optional[str]:
        """The user name when ``Basic <b64>`` holds valid credentials, else None."""
        try:
            raw = base64.b64decode(header_value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        name, sep, password = raw.partition(":")
        if not sep or not self.matches_user(name) or password != self.password:
            return None
        return name

    def ntlm_lines(self) -> list[str]:
        """NTLM_USER_FILE lines for this account (user, DOMAIN\\user, .\\user, user@DOMAIN) in the smbpasswd
        form, LM and NT hashes computed once here: from a ``DOMAIN:USER:PASSWORD`` line pyspnego derives the
        LM hash with its pure-Python DES at every authentication (~1 ms, half the lab's NTLM cost per host)."""
        from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1  # pyspnego's own hash functions

        u, d = self.user, self.domain
        hashes = f"{lmowfv1(self.password).hex().upper()}:{ntowfv1(self.password).hex().upper()}"
        return [f"{name}:0:{hashes}:[U]:LCT-00000000" for name in (u, f"{d}\\{u}", f".\\{u}", f"{u}@{d}")]


class _NtlmUserFile:
    """The process-wide NTLM user file (``NTLM_USER_FILE``) shared by every running lab."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[int, Credentials] = {}
        self._next = 0
        self._path: Optional[str] = None
        self._previous: Optional[str] = None

    def register(self, creds: Credentials) -> int:
        with self._lock:
            for other in self._users.values():
                if other.user.lower() == creds.user.lower() and other.password != creds.password:
                    raise ValueError(
                        f"another lab in this process serves user {creds.user!r} with a different password; "
                        "NTLM cannot tell them apart (NTLM_USER_FILE is process-wide): stop it first or use the "
                        "same password")
            self._next += 1
            self._users[self._next] = creds
            self._write()
            return self._next

    def unregister(self, token: int) -> None:
        with self._lock:
            self._users.pop(token, None)
            if self._users:
                self._write()
                return
            if self._path:
                try:
                    os.unlink(self._path)
                except OSError:
                    pass
                if os.environ.get("NTLM_USER_FILE") == self._path:
                    if self._previous is None:
                        os.environ.pop("NTLM_USER_FILE", None)
                    else:
                        os.environ["NTLM_USER_FILE"] = self._previous
            self._path = None

    def _write(self) -> None:
        lines: list[str] = []
        for creds in self._users.values():
            for line in creds.ntlm_lines():
                if line not in lines:
                    lines.append(line)
        if self._path is None:
            fd, self._path = tempfile.mkstemp(prefix="port80-lab-ntlm-", suffix=".txt")
            os.close(fd)
            os.chmod(self._path, 0o600)
            self._previous = os.environ.get("NTLM_USER_FILE")
        tmp = self._path + ".part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(tmp, self._path)
        os.environ["NTLM_USER_FILE"] = self._path


NTLM_USERS = _NtlmUserFile()


def challenge_headers(basic: bool, negotiate: bool) -> list[tuple[str, str]]:
    """The ``WWW-Authenticate`` headers of a 401, as a Windows WinRM listener lists them."""
    h = []
    if negotiate:
        h.append(("WWW-Authenticate", "Negotiate"))
    if basic:
        h.append(("WWW-Authenticate", f'Basic realm="{REALM}"'))
    return h


class KerberosAcceptor:
    """The Kerberos side of one emulated host: acceptor credentials for ``<service>/<host>`` from the
    lab's keytab (a ticket for another host's principal is refused, as on Windows: the host cannot
    decrypt it). Shared by the host's connections; the gssapi credential is acquired once."""

    def __init__(self, keytab: str, host: str, service: str = "HTTP", rcache: Optional[str] = None) -> None:
        self.keytab, self.host, self.service = keytab, host, service
        self.rcache = rcache  # this host's replay cache (LabKDC.replay_cache); None: MIT's default
        self._cred = None
        self._lock = threading.Lock()

    @property
    def principal(self) -> str:
        return f"{self.service}/{self.host}"

    def credential(self):
        with self._lock:
            if self._cred is None:
                import gssapi

                name = gssapi.Name(f"{self.service}@{self.host}", name_type=gssapi.NameType.hostbased_service)
                store = {b"keytab": self.keytab.encode()}
                if self.rcache:
                    store[b"rcache"] = self.rcache.encode()
                self._cred = gssapi.Credentials(name=name, usage="accept", store=store)
            return self._cred

    def context(self):
        """A Kerberos acceptor (pyspnego over gssapi) with this host's credential, ready to sit in SPNEGO."""
        import spnego

        ctx = spnego.server(hostname=self.host, service=self.service, protocol="kerberos",
                            options=spnego.NegotiateOptions.wrapping_winrm, _gssapi_credential=self.credential())
        ctx._is_wrapped = True  # as pyspnego marks the mechanism contexts it builds inside SPNEGO
        return ctx


class NegotiateState:
    """The Negotiate (NTLM and, with a KDC, Kerberos) state of one TCP connection."""

    def __init__(self, kerberos: Optional[KerberosAcceptor] = None, ntlm: bool = True) -> None:
        self.kerberos = kerberos
        self.ntlm = ntlm
        self.ctx: Any = None
        self.user: Optional[str] = None
        self.protocol: Optional[str] = None  # "ntlm" / "kerberos" once complete
        self.encryption: Optional[WinRMEncryption] = None

    def reset(self) -> None:
        self.ctx = None
        self.user = None
        self.protocol = None
        self.encryption = None

    def _new_context(self):
        import spnego

        if self.kerberos is None:
            return spnego.server(protocol="negotiate", options=spnego.NegotiateOptions.wrapping_winrm)
        from spnego._spnego import GSSMech  # pyspnego's mechanism ids (the keys of _negotiate_contexts)

        contexts = {GSSMech.kerberos: self.kerberos.context()}
        if self.ntlm:
            try:
                ntlm = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.wrapping_winrm)
                ntlm._is_wrapped = True
                contexts[GSSMech.ntlm] = ntlm
            except Exception as e:  # no NTLM_USER_FILE: Kerberos only
                log.debug("lab: no NTLM acceptor: %s", e)
        return spnego.server(protocol="negotiate", options=spnego.NegotiateOptions.wrapping_winrm,
                             _negotiate_contexts=contexts)

    def step(self, token_b64: str, scheme: str = "negotiate") -> tuple[str, Optional[bytes]]:
        """One leg. Returns ("continue", out) / ("complete", out or None) / ("failed", None)."""
        try:
            token = base64.b64decode(token_b64.strip())
        except (binascii.Error, ValueError):
            self.reset()
            return "failed", None
        if not self.ntlm and token.startswith(b"NTLMSSP\x00"):
            log.debug("lab: NTLM token refused (NTLM is turned off on this host)")
            self.reset()
            return "failed", None
        if self.ctx is None or self.user is not None:
            # first leg, or a new handshake on an authenticated connection
            self.reset()
            try:
                self.ctx = self._new_context()
            except Exception as e:  # no NTLM_USER_FILE / keytab: a lab set up without them
                log.warning("lab: cannot create an acceptor: %s", e)
                return "failed", None
        try:
            out = self.ctx.step(token)
        except Exception as e:  # wrong password, bad token, ticket for another host: a bare 401
            log.debug("lab: Negotiate step failed: %s", e)
            self.reset()
            return "failed", None
        try:
            protocol = self.ctx.negotiated_protocol
        except Exception:
            protocol = None
        if not self.ntlm and protocol == "ntlm":
            log.debug("lab: NTLM (inside SPNEGO) refused: NTLM is turned off on this host")
            self.reset()
            return "failed", None
        if self.ctx.complete:
            self.user = LAB_USER
            self.protocol = protocol
            from pypsrp.encryption import WinRMEncryption

            enc = KERBEROS_PROTOCOL if scheme.lower() == "kerberos" else SPNEGO_PROTOCOL
            self.encryption = WinRMEncryption(self.ctx, enc)
            return "complete", out
        return "continue", out

    def unwrap(self, body: bytes, content_type: str) -> bytes:
        if self.encryption is None:
            raise ValueError("encrypted message on a connection without a security context")
        boundary = "Encrypted Boundary"
        for part in content_type.split(";"):
            k, _, v = part.strip().partition("=")
            if k.lower() == "boundary":
                boundary = v.strip().strip('"')
        return self.encryption.unwrap_message(body, boundary)

    def wrap(self, body: bytes) -> tuple[str, bytes]:
        assert self.encryption is not None
        _, payload = self.encryption.wrap_message(body)
        protocol = self.encryption.protocol or SPNEGO_PROTOCOL
        return f'multipart/encrypted;protocol="{protocol}";boundary="Encrypted Boundary"', payload
