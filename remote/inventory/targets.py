"""From inventory hosts (remote.inventory.ansible_ini.HostConfig) to connection specs the collector uses,
with the secure defaults and the per-host password source. No IO, no pypsrp."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from remote.remoting.collect import ConnectionSpec


class TargetError(Exception):
    """A host whose settings cannot be used as given (message names the host)."""


@dataclass
class Overrides:
    user: Optional[str] = None
    cert_validation: Optional[bool] = None  # False = --no-cert-validation (explicit opt-out)
    connection_timeout: Optional[float] = None
    read_timeout: Optional[float] = None


def to_spec(h, ov: Overrides = Overrides()) -> ConnectionSpec:
    """ConnectionSpec for an inventory host; enforces: Basic over plain HTTP only with encryption
    explicitly ``never`` (the inventory module already refuses it otherwise)."""
    validate = h.cert_validation if ov.cert_validation is None else ov.cert_validation
    cert: object = validate
    if validate and getattr(h, "ca_cert", None):
        cert = h.ca_cert
    auth = (h.auth or "negotiate").lower()
    if auth in ("basic", "certificate") and h.scheme == "http" and h.encryption != "never":
        raise TargetError(f"{h.name}: Basic/certificate auth over plain HTTP needs message encryption "
                          "turned off explicitly (ansible_psrp_message_encryption=never)")
    return ConnectionSpec(
        name=h.name,
        address=h.address,
        port=int(h.port),
        scheme=h.scheme,
        auth=auth,
        user=ov.user or h.user,
        cert_validation=cert,  # type: ignore[arg-type]
        encryption=h.encryption or "auto",
        connection_timeout=float(ov.connection_timeout or h.connection_timeout or 10),
        read_timeout=float(ov.read_timeout or h.read_timeout or 30),
        operation_timeout=int(h.operation_timeout or 20),
        configuration_name=h.configuration_name or "Microsoft.PowerShell",
        certificate_pem=getattr(h, "cert_pem", None),
        certificate_key_pem=getattr(h, "cert_key_pem", None),
        groups=list(getattr(h, "groups", None) or []),
    )


class FleetCredentials:
    """Per-host credentials for a fleet: the global user/password (option, environment, prompt)
    or each host's inventory ``ansible_user`` / password. Never prints a secret."""

    def __init__(self, creds, hosts) -> None:
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
            out.append(replace(s, user=c.user) if c is not None and c.user else s)
        return out

    def secrets(self) -> list[str]:
        return sorted({s for c in self._per.values() for s in c.secrets() if s})
