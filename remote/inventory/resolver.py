"""Resolving a host's merged variables into a ``HostConfig`` (connection variables, flavours
psrp/winrm, secure defaults, warnings naming file:line). Split from ansible_ini.py."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable, Optional, Union

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
        who = f"host '{h.name}'"
        connection = self._connection(who, merged)
        first, second = ("winrm", "psrp") if connection == "winrm" else ("psrp", "winrm")
        st = _State(self, h, who)
        for row in _OPTIONS:
            names = _flavour_order(first, second, row.option, row.generic) if row.option else row.generic
            st.values[row.field], st.lines[row.field] = row.default, row.line_default(h)
            for key in names:
                if key in merged:
                    v = merged[key]
                    try:
                        st.values[row.field] = row.parse(key, v, functools.partial(self.warn_host, host=h.name))
                    except _Invalid as e:
                        raise self.error(f"{who}: {e}", v.line) from None
                    st.lines[row.field] = v.line
                    break
            if row.then is not None:
                row.then(st)
        _check_wire_rules(st)

        public_vars: dict[str, Any] = {}
        secret_vars: list[str] = []
        for key, v in merged.items():
            if is_secret_var(key):
                secret_vars.append(key)
            else:
                public_vars[key] = v.value

        val = st.values
        host = HostConfig(
            name=h.name,
            address=h.name if val["address"] is None else val["address"],
            connection=connection,
            ca_cert_line=st.lines["ca_cert"],
            groups=group_names,
            vars=public_vars,
            secret_vars=sorted(secret_vars),
            line=h.line,
            source=self.source,
            **{row.field: val[row.field] for row in _OPTIONS if row.field not in ("address", "password")},
        )
        host._set_password(val["password"])
        return host

    def _connection(self, who: str, merged: dict[str, _Var]) -> str:
        """ansible_connection first: it decides which of psrp_*/winrm_* wins when both are set."""
        v = merged.get("ansible_connection")
        if v is None:
            return "psrp"
        text = v.text.strip().lower()
        text = text.rsplit(".", 1)[-1] if text.startswith("ansible.builtin.") else text
        if text not in CONNECTION_CHOICES:
            raise self.error(
                f"{who}: ansible_connection={_short(v.text)!r} is not supported: port80 talks to Windows hosts "
                "over psrp or winrm (keep other hosts in another inventory)",
                v.line,
            )
        return text


# --- the table of options ---------------------------------------------------------------------------


class _Invalid(Exception):
    """A variable's value is not acceptable; the message follows "host 'x': " in the error."""


_Warn = Callable[[int, str], None]


@dataclass
class _State:
    """One host's resolution so far: values and the line each came from (for later rules)."""

    resolver: _Resolver
    h: _HostB
    who: str
    values: dict[str, Any] = dc_field(default_factory=dict)
    lines: dict[str, Any] = dc_field(default_factory=dict)


@dataclass(frozen=True)
class _Option:
    """One setting: the HostConfig field, the CONNECTION_VARS option whose ansible_<first>_ then
    ansible_<second>_ names are read (then the generic names), the converter, the default."""

    field: str
    option: Optional[str]
    parse: Callable[[str, _Var, _Warn], Any]
    default: Any = None
    generic: tuple[str, ...] = ()
    line: Optional[str] = "host"  # the line when unset: "host" (the host's line), or None / "0"
    then: Optional[Callable[[_State], None]] = None  # a rule run right after this row

    def line_default(self, h: _HostB) -> Optional[int]:
        return h.line if self.line == "host" else (0 if self.line == "0" else None)


def _text_or_none(key: str, v: _Var, warn: _Warn) -> Optional[str]:
    return v.text.strip() or None


def _raw_text(key: str, v: _Var, warn: _Warn) -> str:
    return v.text


def _non_empty(key: str, v: _Var, warn: _Warn) -> str:
    text = v.text.strip()
    if not text:
        raise _Invalid(f"{key} is empty")
    return text


def _address(key: str, v: _Var, warn: _Warn) -> str:
    address = _non_empty(key, v, warn)
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if re.search(r"[\s/\\@?#\[\]]", address) or (":" in address and not _is_ipv6(address)):
        raise _Invalid(f"{key} {_short(address)!r} is not a host name or an IP address (a port goes in ansible_port)")
    return address


def _checked(convert: Callable[[_Var], Any], expected: str) -> Callable[[str, _Var, _Warn], Any]:
    def parse(key: str, v: _Var, warn: _Warn) -> Any:
        value = convert(v)
        if value is None:
            raise _Invalid(f"invalid {key} {_short(v.raw)!r}: expected {expected}")
        return value

    return parse


def _choice(choices: tuple[str, ...], expected: str) -> Callable[[str, _Var, _Warn], str]:
    def parse(key: str, v: _Var, warn: _Warn) -> str:
        text = v.text.strip().lower()
        if text not in choices:
            raise _Invalid(f"invalid {key} {_short(v.text)!r}: expected {expected}")
        return text

    return parse


def _auth(key: str, v: _Var, warn: _Warn) -> str:
    text = v.text.strip().lower()
    if key == "ansible_winrm_transport":
        text = text.split(",", 1)[0].strip()  # a list: the first one
        if text in ("plaintext", "ssl"):
            warn(v.line, f"ansible_winrm_transport={text} is read as 'basic'")
            text = "basic"
    if text not in AUTH_CHOICES:
        raise _Invalid(f"invalid {key} {_short(v.text)!r}: expected one of {', '.join(AUTH_CHOICES)}")
    return text


def _cert_validation(key: str, v: _Var, warn: _Warn) -> bool:
    return _choice(("validate", "ignore"), "validate or ignore")(key, v, warn) == "validate"


def _path(key: str, v: _Var, warn: _Warn) -> str:
    return v.text.strip().strip("/") or "wsman"


def _default_scheme_port(st: _State) -> None:
    """Ansible psrp's defaults: https on 5986; port 5985 alone means http."""
    val = st.values
    if val["scheme"] is None and val["port"] is None:
        val["scheme"], val["port"] = "https", HTTPS_PORT
    elif val["scheme"] is None:
        val["scheme"] = "http" if val["port"] == HTTP_PORT else "https"
    elif val["port"] is None:
        val["port"] = HTTPS_PORT if val["scheme"] == "https" else HTTP_PORT


def _warn_no_validation(st: _State) -> None:
    if not st.values["cert_validation"] and st.values["scheme"] == "https":
        st.resolver.warn_host(
            st.lines["cert_validation"], "server certificate validation is off (ignore): the server is not authenticated", st.h.name
        )


def _check_timeouts(st: _State) -> None:
    val, lines = st.values, st.lines
    if val["read_timeout"] <= val["operation_timeout"]:
        line = lines["read_timeout"] or lines["operation_timeout"] or st.h.line
        raise st.resolver.error(
            f"{st.who}: the read timeout ({val['read_timeout']}s) must be greater than the operation "
            f"timeout ({val['operation_timeout']}s)",
            line,
        )


def _check_wire_rules(st: _State) -> None:
    """The rules that keep a password off the wire, and the scheme/port mismatch warnings."""
    val, who, name, error, warn = st.values, st.who, st.h.name, st.resolver.error, st.resolver.warn_host
    auth, scheme, port, encryption = val["auth"], val["scheme"], val["port"], val["encryption"]
    auth_line, encryption_line = st.lines["auth"], st.lines["encryption"]
    scheme_line, port_line = st.lines["scheme"], st.lines["port"]
    if auth == "certificate":
        if scheme != "https":
            raise error(f"{who}: certificate authentication needs https (it is a TLS client certificate)", auth_line)
        if not val["cert_pem"] or not val["cert_key_pem"]:
            raise error(
                f"{who}: certificate authentication needs ansible_psrp_certificate_pem and "
                "ansible_psrp_certificate_key_pem (or the ansible_winrm_cert_pem/_key_pem pair)",
                auth_line,
            )
    if encryption == "always" and auth not in ENCRYPTING_AUTHS:
        raise error(
            f"{who}: message encryption 'always' needs negotiate, ntlm, kerberos or credssp, not {auth}",
            encryption_line or auth_line,
        )
    if scheme == "http" and auth == "basic":
        if encryption != "never":
            raise error(
                f"{who}: Basic authentication over plain HTTP would send the password in clear text; use "
                f"https (port {HTTPS_PORT}), or ntlm/kerberos/negotiate/credssp (which encrypt the messages), "
                "or set the message encryption to 'never' to accept the risk",
                auth_line,
            )
        warn(
            max(auth_line, encryption_line or 0),
            "Basic authentication over plain HTTP: the password travels base64-encoded, readable by anyone on the path",
            name,
        )
    elif scheme == "http" and encryption == "never":
        warn(encryption_line or scheme_line, "plain HTTP without message encryption: the traffic is readable on the path", name)
    if scheme == "http" and port == HTTPS_PORT:
        warn(max(scheme_line, port_line), f"http on port {HTTPS_PORT} (the https port)", name)
    elif scheme == "https" and port == HTTP_PORT:
        warn(max(scheme_line, port_line), f"https on port {HTTP_PORT} (the http port)", name)


_SECONDS = _checked(lambda v: _as_seconds(v), "a number of seconds > 0")

# One row per setting, in the order they are read (which decides which error a host gets first).
_OPTIONS: tuple[_Option, ...] = (
    _Option("address", "address", _address, generic=("ansible_host",)),
    _Option("port", "port", _checked(lambda v: _as_port(v), "a TCP port 1-65535"), generic=("ansible_port",)),
    _Option("scheme", "scheme", _choice(("http", "https"), "http or https"), then=_default_scheme_port),
    _Option("user", "user", _text_or_none, generic=("ansible_user",)),
    _Option("auth", "auth", _auth, default="negotiate"),
    _Option("cert_validation", "cert_validation", _cert_validation, default=True, then=_warn_no_validation),
    _Option("ca_cert", "ca_cert", _text_or_none, line="0"),
    _Option("connection_timeout", "connection_timeout", _SECONDS, default=DEFAULT_CONNECTION_TIMEOUT, line=None),
    _Option("read_timeout", "read_timeout", _SECONDS, default=DEFAULT_READ_TIMEOUT, line=None),
    _Option("operation_timeout", "operation_timeout", _SECONDS, default=DEFAULT_OPERATION_TIMEOUT, line=None,
            then=_check_timeouts),
    _Option("configuration_name", "configuration_name", _non_empty, default=DEFAULT_CONFIGURATION_NAME),
    _Option("encryption", "encryption", _choice(ENCRYPTION_CHOICES, "auto, always or never"), default="auto", line=None),
    _Option("path", "path", _path, default="wsman"),
    _Option("cert_pem", "cert_pem", _text_or_none),
    _Option("cert_key_pem", "cert_key_pem", _text_or_none),
    _Option("password", "password", _raw_text, generic=("ansible_password", "ansible_pass")),
    _Option("ports", None, _checked(lambda v: _as_port_list(v), "ports like 80,443"), generic=("port80_ports",)),
)


@functools.lru_cache(maxsize=None)
@functools.lru_cache(maxsize=None)  # a few rows x two flavours: computed once, not per host
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
