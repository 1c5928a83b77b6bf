"""port80's Kerberos client side: which credential each host's context uses, and why Kerberos failed.

Two modes, per run (``ansible_psrp_auth=kerberos|negotiate``):

* **ticket**: no password given (no ``PORT80_PASSWORD`` / ``--password-file`` / inventory password)
  and a valid ticket-granting ticket in the user's credential cache (after ``kinit``): every host's
  context starts from that cache; port80 asks for no password.
* **private cache**: a password was given. port80 gets ONE ticket-granting ticket for the run
  (one AS exchange, two when the KDC first asks for pre-authentication) into a credential cache of
  its own (``MEMORY:port80-<random>``: in this process only, never on disk), and every host's
  context starts from it; service tickets land there too (one TGS exchange per host). The user's
  default cache is never read or written in this mode, so an expired ticket there cannot get in
  the way of explicit credentials (pypsrp#27), and concurrent connections never share a file
  cache (ansible#15310). A failed ticket request (wrong password...) is remembered for the run: a
  fleet of 200 hosts makes one attempt, not 200 (which could lock the account).

With ``negotiate``, a password and no Kerberos for that user (no realm, KDC unreachable), hosts are
reached over NTLM, as Windows' Negotiate does.

``reason()`` turns what GSSAPI/MIT krb5 raise into one line (no ticket or expired, clock skew,
unknown service principal, KDC unreachable, pre-authentication failed). Needs ``pyspnego[kerberos]``
(``pip install "port80[kerberos]"``); without it Kerberos hosts fail with a line saying so.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import re
import threading
import uuid
from typing import Any, Optional

from remote.errors import Port80Error

log = logging.getLogger("port80.kerberos")

KERBEROS_AUTHS = ("kerberos", "negotiate")
MISSING = 'Kerberos support is not installed: pip install "port80[kerberos]" (pyspnego[kerberos]: gssapi, krb5)'


class KerberosError(Port80Error):
    """Kerberos could not authenticate (message: one line, the reason)."""


def available() -> bool:
    try:
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError:
        return False
    return True


def principal_name(user: Optional[str]) -> Optional[str]:
    """The Kerberos name of an inventory user: ``DOMAIN\\user`` -> ``user`` (the default realm: the
    NetBIOS domain name is not a realm), ``user@corp.example.com`` -> ``user@CORP.EXAMPLE.COM``
    (realms are upper case in Active Directory; MIT compares them case-sensitively)."""
    if not user:
        return None
    if "\\" in user:
        user = user.split("\\", 1)[1]
    name, at, realm = user.rpartition("@")
    if at and name:
        return f"{name}@{realm.upper()}"
    return user


# ------------------------------------------------------------------------------------ private cache

_LOCK = threading.Lock()
_CACHES: dict[str, Any] = {}  # key -> ccache name (str) or KerberosError (a failed attempt, remembered)


def _key(user: str, password: str) -> str:
    return hashlib.sha256(f"{user}\0{password}".encode("utf-8", "surrogatepass")).hexdigest()


def private_ccache(user: str, password: str) -> str:
    """The name of this run's private credential cache holding a TGT for ``user`` (obtained on first
    use, once per user and password; thread-safe). Raises ``KerberosError`` (remembered)."""
    key = _key(user, password)
    with _LOCK:
        got = _CACHES.get(key)
        if got is None:
            try:
                got = _kinit(user, password)
            except KerberosError as e:
                got = e
            _CACHES[key] = got
    if isinstance(got, KerberosError):
        raise got
    return got


def _kinit(user: str, password: str) -> str:
    if not available():
        raise KerberosError(MISSING)
    import gssapi
    import gssapi.raw as graw

    principal = principal_name(user) or user
    krb5_mech = gssapi.MechType.kerberos
    try:
        name = gssapi.Name(principal, name_type=gssapi.NameType.user)
        got = graw.acquire_cred_with_password(name, password.encode("utf-8"), usage="initiate", mechs=[krb5_mech])
        ccache = f"MEMORY:port80-{uuid.uuid4().hex}"
        graw.store_cred_into({b"ccache": ccache.encode()}, got.creds, usage="initiate", mech=krb5_mech,
                             overwrite=True, set_default=False)
    except gssapi.exceptions.GSSError as e:
        raise KerberosError(reason(e, user=principal) or f"cannot get a ticket for {principal}: {_gss_text(e)}") \
            from None
    log.debug("kerberos: a ticket for %s in the run's private cache", principal)
    return ccache


def forget() -> None:
    """Drop this run's private caches (tests; at exit)."""
    with _LOCK:
        names = [v for v in _CACHES.values() if isinstance(v, str)]
        _CACHES.clear()
    if not names or not available():
        return
    try:
        import krb5

        ctx = krb5.init_context()
        for n in names:
            try:
                krb5.cc_destroy(ctx, krb5.cc_resolve(ctx, n.encode()))
            except Exception:
                pass
    except Exception:  # pragma: no cover - best effort at exit
        pass


atexit.register(forget)


def default_ticket() -> Optional[str]:
    """The principal of a valid ticket in the user's default credential cache, or None (no cache,
    no ticket, expired, or Kerberos support not installed)."""
    if not available():
        return None
    import gssapi

    try:
        cred = gssapi.Credentials(usage="initiate", mechs=[gssapi.MechType.kerberos])
        if (cred.lifetime or 0) <= 0:
            return None
        return str(cred.name)
    except Exception:  # GSSError: no credentials / expired
        return None


def ticket_problem() -> str:
    """Why the default credential cache holds no usable ticket, in a few words."""
    if not available():
        return MISSING
    import gssapi

    try:
        cred = gssapi.Credentials(usage="initiate", mechs=[gssapi.MechType.kerberos])
        if (cred.lifetime or 0) > 0:
            return f"a valid ticket for {cred.name} is in the cache"
        return "the Kerberos ticket has expired"
    except Exception as e:
        why = reason(e) or ""
        return "the Kerberos ticket has expired" if "expired" in why else "no Kerberos ticket in the credential cache"


def client_credentials(user: Optional[str], password: Optional[str], protocol: str) -> list[Any]:
    """``spnego.client`` credentials for one host's Kerberos/Negotiate context.

    password given: the run's private cache (+ the NT hash for NTLM under negotiate); no password:
    the default cache (``spnego`` picks the principal; a user name, when given, selects it)."""
    import spnego

    creds: list[Any] = []
    if password is None:
        return [spnego.CredentialCache(username=None)]
    if protocol in KERBEROS_AUTHS:
        if not available():
            if protocol == "kerberos":
                raise KerberosError(MISSING)
        else:
            try:
                creds.append(spnego.KerberosCCache(ccache=private_ccache(user or "", password)))
            except KerberosError as e:
                if protocol == "kerberos":
                    raise
                log.debug("negotiate: no Kerberos ticket for %s (%s): NTLM", user, e)
    if protocol in ("ntlm", "negotiate") and user:
        from remote.remoting.transport import _nt_hash as nt_hash

        creds.append(spnego.NTLMHash(user, nt_hash=nt_hash(password)))
    if not creds:
        raise KerberosError(f"no credentials for {protocol}")
    return creds


# ------------------------------------------------------------------------------------ reasons

_REASONS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"Server not found in Kerberos database|S_PRINCIPAL_UNKNOWN|Server .* not found", re.I),
     "unknown service principal {spn}: the KDC does not know it (register the SPN on the host's account, or "
     "set ansible_psrp_negotiate_hostname_override / _service to the name it is registered under)"),
    (re.compile(r"Clock skew too great|KRB_AP_ERR_SKEW|clock skew", re.I),
     "clock skew too great between this machine and the KDC or the host (Kerberos allows 5 minutes): sync the clocks"),
    (re.compile(r"Cannot contact any KDC|Cannot find KDC|Unable to reach|KDC unreachable|No KDC", re.I),
     "KDC unreachable{realm}: check krb5.conf ([realms] kdc =, KRB5_CONFIG) and the network path to the KDC"),
    (re.compile(r"Preauthentication failed|Password incorrect|PREAUTH_FAILED|Decrypt integrity check failed", re.I),
     "pre-authentication failed for {user}: wrong password"),
    (re.compile(r"Client .* not found in Kerberos database|Client not found|C_PRINCIPAL_UNKNOWN", re.I),
     "unknown user principal {user}: the KDC does not know it"),
    (re.compile(r"expired|Ticket expired|KRB_AP_ERR_TKT_EXPIRED", re.I),
     "the Kerberos ticket has expired: run kinit again, or give a password (PORT80_PASSWORD) for a private ticket"),
    (re.compile(r"No Kerberos credentials available|No credentials cache found|No credentials were supplied|"
                r"credentials cache .*not found|Credentials cache file .* not found|NoCredentialError", re.I),
     "no Kerberos ticket: run kinit first, or give a password (PORT80_PASSWORD) for a private ticket"),
    (re.compile(r"Cannot find realm|Configuration file does not specify default realm|default realm", re.I),
     "no Kerberos realm configured: set KRB5_CONFIG to a krb5.conf naming the realm and its KDC"),
    (re.compile(r"Wrong principal in request|KRB_AP_ERR_BADMATCH|KRB_AP_ERR_NOT_US", re.I),
     "the host rejected the ticket for {spn}: the SPN belongs to another account"),
]


def _gss_text(exc: BaseException) -> str:
    parts = [str(exc)]
    for attr in ("gen_message", "base_error", "message"):
        v = getattr(exc, attr, None)
        if v is not None and not callable(v):
            parts.append(str(v))
    return " ".join(" ".join(parts).split())


def reason(exc: BaseException, *, spn: Optional[str] = None, user: Optional[str] = None,
           realm: Optional[str] = None) -> Optional[str]:
    """A one-line Kerberos reason for ``exc`` (or anything in its cause chain), None if it is not a
    Kerberos failure port80 recognises."""
    seen: set[int] = set()
    texts = []
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        texts.append(_gss_text(e))
        e = e.__cause__ or e.__context__ or getattr(e, "base_error", None)
    text = " | ".join(texts)
    if isinstance(exc, KerberosError):
        return str(exc)
    for pattern, template in _REASONS:
        if pattern.search(text):
            m = re.search(r"for realm [`'\"]?([A-Za-z0-9.\-]+)", text)
            where = realm or (m.group(1) if m else None)
            return template.format(spn=spn or "(unknown)", user=user or "the user",
                                   realm=f" for realm {where}" if where else "")
    return None
