"""Resolving a host's merged variables into a ``HostConfig`` (connection variables, flavours
psrp/winrm, secure defaults, warnings naming file:line). Split from ansible_ini.py."""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Optional, Union

from remote.inventory.ini_parser import (
    _HostB,
    _is_ipv6,
    _short,
    _Var,
)
from remote.inventory.model import (
    AUTH_CHOICES,
    CONNECTION_CHOICES,
    CONNECTION_VARS,
    DEFAULT_CONFIGURATION_NAME,
    DEFAULT_CONNECTION_TIMEOUT,
    DEFAULT_OPERATION_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    ENCRYPTING_AUTHS,
    ENCRYPTION_CHOICES,
    HostConfig,
    HTTP_PORT,
    HTTPS_PORT,
    InventoryError,
    is_secret_var,
)


# --- resolution into HostConfig ---------------------------------------------------------------------


class _Resolver:
    """Turns one host's merged variables into a HostConfig, collecting warnings by (line, text)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.host_warnings: dict[tuple[int, str], dict[str, None]] = {}  # ordered sets of host names

    def error(self, message: str, line: int) -> InventoryError:
        return InventoryError(message, self.source, line)

    def warn_host(self, line: int, message: str, host: str) -> None:
        self.host_warnings.setdefault((line, message), {})[host] = None

    def rendered_warnings(self) -> list[tuple[int, str]]:
        out = []
        for (line, message), host_set in self.host_warnings.items():
            hosts = list(host_set)
            shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
            out.append((line, f"{self.source}:{line}: {message} (host{'s' if len(hosts) > 1 else ''}: {shown})"))
        return out

    def resolve(self, h: _HostB, merged: dict[str, _Var], group_names: list[str]) -> HostConfig:
        name = h.name
        who = f"host '{name}'"

        def pick(*names: str) -> Optional[tuple[str, _Var]]:
            for n in names:
                if n in merged:
                    return n, merged[n]
            return None

        # connection type first: it decides which of psrp_*/winrm_* wins when both are set
        connection = "psrp"
        got = pick("ansible_connection")
        if got is not None:
            key, v = got
            text = v.text.strip().lower()
            text = text.rsplit(".", 1)[-1] if text.startswith("ansible.builtin.") else text
            if text not in CONNECTION_CHOICES:
                raise self.error(
                    f"{who}: ansible_connection={_short(v.text)!r} is not supported: port80 talks to Windows hosts "
                    "over psrp or winrm (keep other hosts in another inventory)",
                    v.line,
                )
            connection = text
        first, second = ("winrm", "psrp") if connection == "winrm" else ("psrp", "winrm")

        def pick_flavoured(option: str, generic: tuple[str, ...] = ()) -> Optional[tuple[str, _Var]]:
            """ansible_<first>_<option>, then ansible_<second>_<option>, then the generic names."""
            return pick(*_flavour_order(first, second, option, generic))

        address = name
        got = pick_flavoured("address", ("ansible_host",))
        if got is not None:
            address = got[1].text.strip()
            if not address:
                raise self.error(f"{who}: {got[0]} is empty", got[1].line)
            if address.startswith("[") and address.endswith("]"):
                address = address[1:-1]
            if re.search(r"[\s/\\@?#\[\]]", address) or (":" in address and not _is_ipv6(address)):
                raise self.error(
                    f"{who}: {got[0]} {_short(address)!r} is not a host name or an IP address "
                    "(a port goes in ansible_port)",
                    got[1].line,
                )

        port: Optional[int] = None
        port_line = h.line
        got = pick_flavoured("port", ("ansible_port",))
        if got is not None:
            key, v = got
            port = _as_port(v)
            if port is None:
                raise self.error(f"{who}: invalid {key} {_short(v.raw)!r}: expected a TCP port 1-65535", v.line)
            port_line = v.line

        scheme: Optional[str] = None
        scheme_line = h.line
        got = pick_flavoured("scheme")
        if got is not None:
            key, v = got
            scheme = v.text.strip().lower()
            if scheme not in ("http", "https"):
                raise self.error(f"{who}: invalid {key} {_short(v.text)!r}: expected http or https", v.line)
            scheme_line = v.line

        # Ansible psrp's defaults: https on 5986; port 5985 alone means http
        if scheme is None and port is None:
            scheme, port = "https", HTTPS_PORT
        elif scheme is None:
            scheme = "http" if port == HTTP_PORT else "https"
        elif port is None:
            port = HTTPS_PORT if scheme == "https" else HTTP_PORT
        assert port is not None  # for mypy: every branch above set it

        user = None
        got = pick_flavoured("user", ("ansible_user",))
        if got is not None:
            user = got[1].text.strip() or None

        auth = "negotiate"
        auth_line = h.line
        got = pick_flavoured("auth")
        if got is not None:
            key, v = got
            text = v.text.strip().lower()
            if key == "ansible_winrm_transport":
                text = text.split(",", 1)[0].strip()  # a list: the first one
                if text in ("plaintext", "ssl"):
                    mapped = "basic"
                    self.warn_host(v.line, f"ansible_winrm_transport={text} is read as 'basic'", name)
                    text = mapped
            if text not in AUTH_CHOICES:
                raise self.error(
                    f"{who}: invalid {key} {_short(v.text)!r}: expected one of {', '.join(AUTH_CHOICES)}", v.line
                )
            auth, auth_line = text, v.line

        cert_validation = True
        got = pick_flavoured("cert_validation")
        if got is not None:
            key, v = got
            text = v.text.strip().lower()
            if text not in ("validate", "ignore"):
                raise self.error(f"{who}: invalid {key} {_short(v.text)!r}: expected validate or ignore", v.line)
            cert_validation = text == "validate"
            if not cert_validation and scheme == "https":
                self.warn_host(v.line, "server certificate validation is off (ignore): the server is not authenticated", name)

        ca_cert, ca_cert_line = None, 0
        got = pick_flavoured("ca_cert")
        if got is not None:
            ca_cert, ca_cert_line = got[1].text.strip() or None, got[1].line

        timeouts: dict[str, Union[int, float]] = {
            "connection_timeout": DEFAULT_CONNECTION_TIMEOUT,
            "read_timeout": DEFAULT_READ_TIMEOUT,
            "operation_timeout": DEFAULT_OPERATION_TIMEOUT,
        }
        timeout_lines: dict[str, Optional[int]] = {k: None for k in timeouts}
        for option in timeouts:
            got = pick_flavoured(option)
            if got is not None:
                key, v = got
                seconds = _as_seconds(v)
                if seconds is None:
                    raise self.error(f"{who}: invalid {key} {_short(v.raw)!r}: expected a number of seconds > 0", v.line)
                timeouts[option], timeout_lines[option] = seconds, v.line
        if timeouts["read_timeout"] <= timeouts["operation_timeout"]:
            line = timeout_lines["read_timeout"] or timeout_lines["operation_timeout"] or h.line
            raise self.error(
                f"{who}: the read timeout ({timeouts['read_timeout']}s) must be greater than the operation "
                f"timeout ({timeouts['operation_timeout']}s)",
                line,
            )

        configuration_name = DEFAULT_CONFIGURATION_NAME
        got = pick_flavoured("configuration_name")
        if got is not None:
            configuration_name = got[1].text.strip()
            if not configuration_name:
                raise self.error(f"{who}: {got[0]} is empty", got[1].line)

        encryption = "auto"
        encryption_line = None
        got = pick_flavoured("encryption")
        if got is not None:
            key, v = got
            encryption = v.text.strip().lower()
            if encryption not in ENCRYPTION_CHOICES:
                raise self.error(f"{who}: invalid {key} {_short(v.text)!r}: expected auto, always or never", v.line)
            encryption_line = v.line

        path = "wsman"
        got = pick_flavoured("path")
        if got is not None:
            path = got[1].text.strip().strip("/") or "wsman"

        cert_pem = cert_key_pem = None
        got = pick_flavoured("cert_pem")
        if got is not None:
            cert_pem = got[1].text.strip() or None
        got = pick_flavoured("cert_key_pem")
        if got is not None:
            cert_key_pem = got[1].text.strip() or None

        password = None
        got = pick_flavoured("password", ("ansible_password", "ansible_pass"))
        if got is not None:
            password = got[1].text

        ports = None
        if "port80_ports" in merged:
            v = merged["port80_ports"]
            ports = _as_port_list(v)
            if ports is None:
                raise self.error(f"{who}: invalid port80_ports {_short(v.raw)!r}: expected ports like 80,443", v.line)

        # --- the rules that keep a password off the wire
        if auth == "certificate":
            if scheme != "https":
                raise self.error(f"{who}: certificate authentication needs https (it is a TLS client certificate)", auth_line)
            if not cert_pem or not cert_key_pem:
                raise self.error(
                    f"{who}: certificate authentication needs ansible_psrp_certificate_pem and "
                    "ansible_psrp_certificate_key_pem (or the ansible_winrm_cert_pem/_key_pem pair)",
                    auth_line,
                )
        if encryption == "always" and auth not in ENCRYPTING_AUTHS:
            raise self.error(
                f"{who}: message encryption 'always' needs negotiate, ntlm, kerberos or credssp, not {auth}",
                encryption_line or auth_line,
            )
        if scheme == "http" and auth == "basic":
            if encryption != "never":
                raise self.error(
                    f"{who}: Basic authentication over plain HTTP would send the password in clear text; use "
                    f"https (port {HTTPS_PORT}), or ntlm/kerberos/negotiate/credssp (which encrypt the messages), "
                    "or set the message encryption to 'never' to accept the risk",
                    auth_line,
                )
            self.warn_host(
                max(auth_line, encryption_line or 0),
                "Basic authentication over plain HTTP: the password travels base64-encoded, readable by anyone on the path",
                name,
            )
        elif scheme == "http" and encryption == "never":
            self.warn_host(encryption_line or scheme_line, "plain HTTP without message encryption: the traffic is readable on the path", name)  # noqa: E501
        if scheme == "http" and port == HTTPS_PORT:
            self.warn_host(max(scheme_line, port_line), f"http on port {HTTPS_PORT} (the https port)", name)
        elif scheme == "https" and port == HTTP_PORT:
            self.warn_host(max(scheme_line, port_line), f"https on port {HTTP_PORT} (the http port)", name)

        public_vars: dict[str, Any] = {}
        secret_vars: list[str] = []
        for key, v in merged.items():
            if is_secret_var(key):
                secret_vars.append(key)
            else:
                public_vars[key] = v.value

        host = HostConfig(
            name=name,
            address=address,
            port=port,
            scheme=scheme,
            auth=auth,
            user=user,
            cert_validation=cert_validation,
            ca_cert=ca_cert,
            ca_cert_line=ca_cert_line,
            connection_timeout=timeouts["connection_timeout"],
            read_timeout=timeouts["read_timeout"],
            operation_timeout=timeouts["operation_timeout"],
            configuration_name=configuration_name,
            encryption=encryption,
            connection=connection,
            path=path,
            cert_pem=cert_pem,
            cert_key_pem=cert_key_pem,
            ports=ports,
            groups=group_names,
            vars=public_vars,
            secret_vars=sorted(secret_vars),
            line=h.line,
            source=self.source,
        )
        host._set_password(password)
        return host


@functools.lru_cache(maxsize=None)
def _flavour_order(first: str, second: str, option: str, generic: tuple[str, ...]) -> tuple[str, ...]:
    names = [n for n, o in CONNECTION_VARS.items() if o == option and n not in generic]
    ordered = [n for n in names if n.startswith(f"ansible_{first}_")]
    ordered += [n for n in names if n.startswith(f"ansible_{second}_")]
    return (*ordered, *generic)


def _as_port(v: _Var) -> Optional[int]:
    value = v.value
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"[0-9]{1,5}", value):
            return None
        value = int(value)
    if isinstance(value, int) and 0 < value < 65536:
        return value
    return None


def _as_seconds(v: _Var) -> Optional[Union[int, float]]:
    value = v.value
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _as_port_list(v: _Var) -> Optional[list[int]]:
    value = v.value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, list):
        items = value
    else:
        items = [x.strip() for x in str(value).split(",")]
    ports: list[int] = []
    for x in items:
        p = _as_port(_Var(str(x), x, v.line))
        if p is None:
            return None
        if p not in ports:
            ports.append(p)
    return ports or None
