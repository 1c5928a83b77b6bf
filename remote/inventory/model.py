"""Inventory records (``HostConfig``, ``Group``), the connection variables port80 reads, and the
inventory errors. Split from ansible_ini.py (which re-exports these names)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional, Union

from remote.errors import Port80Error
from remote.inventory.credentials import Secret


DEFAULT_CONFIGURATION_NAME = "Microsoft.PowerShell"
HTTP_PORT = 5985
HTTPS_PORT = 5986
DEFAULT_CONNECTION_TIMEOUT = 30
DEFAULT_READ_TIMEOUT = 30
DEFAULT_OPERATION_TIMEOUT = 20
AUTH_CHOICES = ("negotiate", "ntlm", "kerberos", "credssp", "basic", "certificate")
ENCRYPTING_AUTHS = frozenset({"negotiate", "ntlm", "kerberos", "credssp"})
ENCRYPTION_CHOICES = ("auto", "always", "never")
CONNECTION_CHOICES = ("psrp", "winrm")
MAX_RANGE_HOSTS = 100_000

# variable -> what it sets; the psrp/winrm flavour that matches ansible_connection is preferred
PASSWORD_VARS = (
    "ansible_password",
    "ansible_pass",
    "ansible_psrp_password",
    "ansible_psrp_pass",
    "ansible_winrm_password",
    "ansible_winrm_pass",
)
CONNECTION_VARS: dict[str, str] = {
    "ansible_connection": "connection",
    "ansible_host": "address",
    "ansible_psrp_host": "address",
    "ansible_winrm_host": "address",
    "ansible_port": "port",
    "ansible_psrp_port": "port",
    "ansible_winrm_port": "port",
    "ansible_user": "user",
    "ansible_psrp_user": "user",
    "ansible_winrm_user": "user",
    "ansible_psrp_protocol": "scheme",
    "ansible_winrm_scheme": "scheme",
    "ansible_psrp_auth": "auth",
    "ansible_winrm_transport": "auth",
    "ansible_psrp_cert_validation": "cert_validation",
    "ansible_winrm_server_cert_validation": "cert_validation",
    "ansible_psrp_ca_cert": "ca_cert",
    "ansible_psrp_cert_trust_path": "ca_cert",
    "ansible_winrm_ca_trust_path": "ca_cert",
    "ansible_psrp_connection_timeout": "connection_timeout",
    "ansible_winrm_connection_timeout": "connection_timeout",
    "ansible_psrp_read_timeout": "read_timeout",
    "ansible_winrm_read_timeout_sec": "read_timeout",
    "ansible_psrp_operation_timeout": "operation_timeout",
    "ansible_winrm_operation_timeout_sec": "operation_timeout",
    "ansible_psrp_configuration_name": "configuration_name",
    "ansible_psrp_message_encryption": "encryption",
    "ansible_winrm_message_encryption": "encryption",
    "ansible_psrp_path": "path",
    "ansible_winrm_path": "path",
    "ansible_psrp_certificate_pem": "cert_pem",
    "ansible_psrp_cert_pem": "cert_pem",
    "ansible_winrm_cert_pem": "cert_pem",
    "ansible_psrp_certificate_key_pem": "cert_key_pem",
    "ansible_psrp_cert_key_pem": "cert_key_pem",
    "ansible_winrm_cert_key_pem": "cert_key_pem",
    **{name: "password" for name in PASSWORD_VARS},
}
PORT80_VARS = ("port80_ports", "port80_segment")  # port80_segment: Dask placement (remote/runner/cluster.py)

# Ansible psrp/winrm options port80 does not use: accepted silently (kept in ``vars``)
_KNOWN_UNUSED = frozenset(
    {
        "ansible_winrm_kerberos_delegation",
        "ansible_winrm_kinit_cmd",
        "ansible_winrm_kinit_args",
        "ansible_winrm_kinit_env_vars",
        "ansible_winrm_kerberos_hostname_override",
        "ansible_winrm_service",
        "ansible_winrm_send_cbt",
        "ansible_winrm_credssp_disable_tlsv1_2",
        "ansible_winrm_proxy",
        "ansible_winrm_noproxy",
        "ansible_winrm_shell",
        "ansible_winrm_codepage",
        "ansible_winrm_realm",
        "ansible_psrp_proxy",
        "ansible_psrp_ignore_proxy",
        "ansible_psrp_reconnection_retries",
        "ansible_psrp_reconnection_backoff",
        "ansible_psrp_connection_backoff",
        "ansible_psrp_max_envelope_size",
        "ansible_psrp_credssp_auth_mechanism",
        "ansible_psrp_credssp_disable_tlsv1_2",
        "ansible_psrp_credssp_minimum_version",
        "ansible_psrp_negotiate_delegate",
        "ansible_psrp_negotiate_hostname_override",
        "ansible_psrp_negotiate_send_cbt",
        "ansible_psrp_negotiate_service",
        "ansible_psrp_pipelining",
    }
)

# any variable whose name looks like this holds a secret: its value is never kept in ``vars``
_SECRET_NAME_RE = re.compile(r"pass(word|wd)?|secret|token|credential|api_?key|private_?key(?!_file)", re.IGNORECASE)
_VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECTION_RE = re.compile(r"^\[([^:\]\s\[]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_GROUP_NAME_RE = re.compile(r"^([^:\]\s\[]+)\s*(?:[#;].*)?$")
_RANGE_RE = re.compile(r"\[([^\[\]]*)\]")
_LIMIT_SUBSCRIPT_RE = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+):([0-9]*))\]$")


class InventoryError(Port80Error):
    """An inventory that cannot be used. ``str()`` is ``file:line: what is wrong``."""

    def __init__(self, message: str, source: Optional[str] = None, line: Optional[int] = None) -> None:
        self.message = message
        self.source = source
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.source is not None and self.line:
            return f"{self.source}:{self.line}: {self.message}"
        if self.source is not None:
            return f"{self.source}: {self.message}"
        return self.message


class ShardError(Port80Error, ValueError):
    """A bad ``--shard K/N``."""


def is_secret_var(name: str) -> bool:
    """Whether a variable's value must never be shown (passwords, tokens, secrets...)."""
    return name in PASSWORD_VARS or bool(_SECRET_NAME_RE.search(name))


# --- records ----------------------------------------------------------------------------------------


@dataclass
class HostConfig:
    """One host, resolved: how to reach it, and its (non-secret) variables.

    The inventory password, if any, is not a field: it is kept in ``_password`` (a
    :class:`~remote.inventory.credentials.Secret`) and only :meth:`inventory_password` returns its text.
    ``dataclasses.replace`` does not carry it over."""

    name: str
    address: str
    port: int = HTTPS_PORT
    scheme: str = "https"
    auth: str = "negotiate"
    user: Optional[str] = None
    password_from_inventory: bool = False
    cert_validation: bool = True
    ca_cert: Optional[str] = None
    ca_cert_line: int = 0  # the line that set ca_cert (a missing file is reported there)
    connection_timeout: Union[int, float] = DEFAULT_CONNECTION_TIMEOUT
    read_timeout: Union[int, float] = DEFAULT_READ_TIMEOUT
    operation_timeout: Union[int, float] = DEFAULT_OPERATION_TIMEOUT
    configuration_name: str = DEFAULT_CONFIGURATION_NAME
    encryption: str = "auto"
    connection: str = "psrp"
    path: str = "wsman"
    cert_pem: Optional[str] = None
    cert_key_pem: Optional[str] = None
    ports: Optional[list[int]] = None  # port80_ports: the ports to audit on this host (None: the CLI's)
    groups: list[str] = field(default_factory=list)  # Ansible's group_names: sorted, without 'all'
    vars: dict[str, Any] = field(default_factory=dict)  # every variable but secrets, after precedence
    secret_vars: list[str] = field(default_factory=list)  # names of the secret variables set (values hidden)
    line: int = 0  # where the host was first defined
    source: str = "<inventory>"

    def __post_init__(self) -> None:
        self._password: Optional[Secret] = None

    def inventory_password(self) -> Optional[str]:
        """The password given in the inventory (``ansible_password`` & co), or None."""
        return self._password.reveal() if self._password is not None else None

    def _set_password(self, password: Optional[str]) -> None:
        self._password = Secret(password) if password is not None else None
        self.password_from_inventory = password is not None

    @property
    def ssl(self) -> bool:
        return self.scheme == "https"

    @property
    def url(self) -> str:
        host = self.address
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}/{self.path}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; never holds a secret (only ``password_from_inventory`` and ``secret_vars``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v
        out["url"] = self.url
        return out


@dataclass
class Group:
    name: str
    line: int = 0  # where first declared ([name] or [name:children]); 0 for the implicit all/ungrouped
    vars: dict[str, Any] = field(default_factory=dict)  # without secrets
    secret_vars: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # direct members, in order of first appearance
    depth: int = 0
    priority: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
