"""From inventory hosts (remote.inventory.ansible_ini.HostConfig) to connection specs the collector uses,
with the secure defaults and the per-host password source. No pypsrp; the only IO is checking that
a CA certificate file named by the inventory exists."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

from remote.errors import Port80Error
from remote.inventory.model import HostConfig
from remote.remoting.collect import ConnectionSpec

if TYPE_CHECKING:
    from remote.inventory.credentials import Credentials


class TargetError(Port80Error):
    """A host whose settings cannot be used as given (message names the host)."""


class MissingCAFile(TargetError):
    """ansible_psrp_ca_cert names a file this machine does not have (an error for a scan; a warning
    for ``port80 inventory``, which only lists the settings)."""


@dataclass
class Overrides:
    user: Optional[str] = None
    cert_validation: Optional[bool] = None  # False = --no-cert-validation (explicit opt-out)
    connection_timeout: Optional[float] = None
    read_timeout: Optional[float] = None


# Kerberos/Negotiate settings: option -> (psrp variable, winrm variable). Read from the host's resolved
# variables (the inventory keeps them in ``vars``); the flavour matching ansible_connection wins.
NEGOTIATE_VARS: dict[str, tuple[str, str]] = {
    "negotiate_hostname_override": ("ansible_psrp_negotiate_hostname_override", "ansible_winrm_kerberos_hostname_override"),
    "negotiate_service": ("ansible_psrp_negotiate_service", "ansible_winrm_service"),
    "negotiate_delegate": ("ansible_psrp_negotiate_delegate", "ansible_winrm_kerberos_delegation"),
    "negotiate_send_cbt": ("ansible_psrp_negotiate_send_cbt", "ansible_winrm_send_cbt"),
    "realm": ("ansible_psrp_realm", "ansible_winrm_realm"),  # appended to a user name without a domain
}
_TRUE, _FALSE = {"true", "yes", "on", "1", "y"}, {"false", "no", "off", "0", "n"}


def negotiate_settings(h: HostConfig) -> dict[str, Any]:
    """The Kerberos/Negotiate settings of an inventory host (see ``NEGOTIATE_VARS``); TargetError
    naming the host and variable for a bad value."""
    hv = h.vars
    winrm_first = h.connection == "winrm"
    out: dict[str, Any] = {}
    for option, (psrp, winrm) in NEGOTIATE_VARS.items():
        for var in ((winrm, psrp) if winrm_first else (psrp, winrm)):
            if var in hv and hv[var] is not None and str(hv[var]).strip() != "":
                value = hv[var]
                if option in ("negotiate_delegate", "negotiate_send_cbt"):
                    text = str(value).strip().lower()
                    if text not in _TRUE | _FALSE:
                        raise TargetError(f"{h.name}: {var}={value!r}: expected true or false")
                    value = text in _TRUE
                else:
                    value = str(value).strip()
                    if any(c.isspace() for c in value) or "/" in value and option != "negotiate_service":
                        raise TargetError(f"{h.name}: {var}={value!r} is not a host, service or realm name")
                out[option] = value
                break
    return out


def to_spec(h: HostConfig, ov: Overrides = Overrides(), check_files: bool = True) -> ConnectionSpec:
    """ConnectionSpec for an inventory host; enforces: Basic over plain HTTP only with encryption
    explicitly ``never`` (the inventory module already refuses it otherwise); ``check_files``: a
    missing CA file raises ``MissingCAFile``."""
    validate = h.cert_validation if ov.cert_validation is None else ov.cert_validation
    cert: object = validate
    if validate and h.ca_cert:
        cert = h.ca_cert
        if check_files and h.scheme == "https" and not os.path.isfile(os.path.expanduser(h.ca_cert)):
            # an inventory error (file:line), not a "FileNotFoundError" per host at connect time
            where = f"{h.source}:{h.ca_cert_line or h.line}"
            raise MissingCAFile(f"{where}: {h.name}: ansible_psrp_ca_cert {h.ca_cert!r}: no such file (the CA "
                              "certificate to validate the host's TLS certificate with)")
    auth = (h.auth or "negotiate").lower()
    if auth in ("basic", "certificate") and h.scheme == "http" and h.encryption != "never":
        raise TargetError(f"{h.name}: Basic/certificate auth over plain HTTP needs message encryption "
                          "turned off explicitly (ansible_psrp_message_encryption=never)")
    neg = negotiate_settings(h)
    user = ov.user or h.user
    realm = neg.pop("realm", None)
    if realm and user and "@" not in user and "\\" not in user:
        user = f"{user}@{realm.upper()}"
    return ConnectionSpec(
        **neg,
        name=h.name,
        address=h.address,
        port=int(h.port),
        scheme=h.scheme,
        auth=auth,
        user=user,
        cert_validation=cert,  # type: ignore[arg-type]
        encryption=h.encryption or "auto",
        connection_timeout=float(ov.connection_timeout or h.connection_timeout or 10),
        read_timeout=float(ov.read_timeout or h.read_timeout or 30),
        operation_timeout=int(h.operation_timeout or 20),
        configuration_name=h.configuration_name or "Microsoft.PowerShell",
        path=h.path or "wsman",
        ports=list(h.ports) if h.ports else None,
        certificate_pem=h.cert_pem,
        certificate_key_pem=h.cert_key_pem,
        groups=list(h.groups),
    )


class FleetCredentials:
    """Per-host credentials for a fleet: the global user/password (option, environment, prompt)
    or each host's inventory ``ansible_user`` / password. Never prints a secret."""

    def __init__(self, creds: Credentials, hosts: Iterable[HostConfig]) -> None:
        self.warnings = list(getattr(creds, "warnings", []))
        self._per = {h.name: creds.for_host(h) for h in hosts}  # raises CredentialsError naming the host

    def password_for(self, spec: ConnectionSpec) -> Optional[str]:
        c = self._per.get(spec.name)
        return c.password() if c is not None else None

    def apply_users(self, specs: list[ConnectionSpec]) -> list[ConnectionSpec]:
        from dataclasses import replace

        out = []
        for s in specs:
            c = self._per.get(s.name)
            keep = c is not None and c.user and s.user and s.user.lower().startswith(c.user.lower() + "@")
            out.append(replace(s, user=c.user) if c is not None and c.user and not keep else s)
        return out

    def secrets(self) -> list[str]:
        return sorted({s for c in self._per.values() for s in c.secrets() if s})

    def users(self, specs: list[ConnectionSpec]) -> list[str]:
        """Every user name sent to a host (not secret, but base64("user:password") is: the log filter
        needs them to find a Basic token anywhere)."""
        names = {c.user for c in self._per.values() if c.user} | {s.user for s in self.apply_users(specs) if s.user}
        return sorted(names)
