"""Ansible INI inventories, so that an existing Ansible Windows inventory works with port80 unchanged.

What is read (Ansible's ``ini`` inventory plugin, same rules unless said otherwise):

* ``[group]`` host sections, ``[group:vars]``, ``[group:children]`` (nested; cycles are errors),
  hosts before any section (group ``ungrouped``), the implicit ``all`` group and ``[all:vars]``;
* host ranges ``web[01:20].corp.example.com`` (zero padding kept), ``db-[a:f].x``, strides
  ``[1:10:2]``, several ranges in one name; ``host:5986`` sets ``ansible_port``;
* inline host variables ``host ansible_host=10.0.0.5 ansible_port=5986`` (split like a shell line,
  ``# comment`` at the end), quoted values ``'a b'`` / ``"a b"``; values are read as Python
  literals when they are (``5986`` is a number, ``'5986'`` a string), else kept as text;
* ``[group:vars]`` lines ``key=value`` (everything after ``=`` is the value; a trailing
  `` # comment`` is dropped — port80's choice, Ansible keeps it unless the value is a literal);
* ``#`` and ``;`` comment lines, blank lines; UTF-8 with or without BOM.

Variable precedence (Ansible's): ``all`` < groups sorted by (depth, ``ansible_group_priority``,
name) < host variables; a child group is deeper than its parents so it wins over them, and among
groups of the same depth the alphabetically later one wins. A group's depth is the length of the
longest path from ``all`` to it.

Connection variables become a typed :class:`HostConfig` (``ansible_host``, ``ansible_port``,
``ansible_user``, ``ansible_connection``, ``ansible_psrp_*`` and ``ansible_winrm_*``, see
:data:`CONNECTION_VARS`), with Ansible psrp's secure defaults: https on 5986 unless told otherwise,
port 5985 alone means http, certificate validation on, and Basic over plain HTTP refused unless
message encryption is explicitly ``never``. Passwords in the inventory are accepted with a warning;
they are kept out of every printable field (``repr``, ``to_dict()``, ``vars``, warnings, errors).

Errors are :class:`InventoryError`, whose ``str()`` is ``file:line: what is wrong``; the first
one found is reported.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import functools
import hashlib
import ipaddress
import math
import re
import shlex
import string
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Optional, Sequence, Union

from remote.errors import Port80Error
from remote.inventory.credentials import Secret

__all__ = [
    "CONNECTION_VARS",
    "DEFAULT_CONFIGURATION_NAME",
    "Group",
    "HostConfig",
    "Inventory",
    "InventoryError",
    "ShardError",
    "load_inventory",
    "parse_inventory",
    "parse_shard",
    "shard",
    "shard_index",
]

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


# --- parsing ----------------------------------------------------------------------------------------


class _Var(NamedTuple):
    raw: str  # the text as written (after shell-unquoting on host lines)
    value: Any  # the Python literal it reads as, or the text
    line: int

    @property
    def text(self) -> str:
        """As a string option: the literal if it is a string, else the text as written."""
        return self.value if isinstance(self.value, str) else self.raw


@dataclass
class _GroupB:
    name: str
    line: int = 0
    declared: bool = False
    vars: dict[str, _Var] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    host_set: set[str] = field(default_factory=set)
    priority: int = 1
    first_ref: Optional[tuple[int, str, str]] = None  # (line, "vars"|"children", parent)


@dataclass
class _HostB:
    name: str
    line: int
    order: int
    groups: list[str] = field(default_factory=list)
    vars: dict[str, _Var] = field(default_factory=dict)


def _normalize(value: Any, raw: str) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else raw
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_normalize(v, repr(v)) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_normalize(v, repr(v)) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): _normalize(v, repr(v)) for k, v in value.items()}
    return raw  # complex, Ellipsis...


def _parse_value(raw: str) -> Any:
    """Ansible's ``_parse_value``: a Python literal if the text is one, else the text."""
    if not raw or len(raw) > 4096:
        return raw
    try:
        with warnings.catch_warnings():  # "1if" is a SyntaxWarning too: a plain string, no noise on stderr
            warnings.simplefilter("ignore")
            value = ast.literal_eval(raw)
    except Exception:  # ValueError, SyntaxError, MemoryError, RecursionError...
        return raw
    return _normalize(value, raw)


def _strip_value_comment(value: str) -> str:
    """A ``[group:vars]`` value without a trailing `` # comment`` (a quoted value is kept whole)."""
    value = value.strip()
    if value[:1] in ("'", '"'):
        quote, i = value[0], 1
        while i < len(value):
            if value[i] == "\\":
                i += 2
                continue
            if value[i] == quote:
                rest = value[i + 1 :].strip()
                if not rest or rest[0] in "#;":
                    return value[: i + 1]
                return value
            i += 1
        return value
    m = re.search(r"\s#", value)
    return value[: m.start()].rstrip() if m else value


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.groups: dict[str, _GroupB] = {}
        self.hosts: dict[str, _HostB] = {}
        self.edges: list[tuple[str, str, int]] = []  # (parent, child, line)
        self.warnings: list[tuple[int, str]] = []  # (line, text)
        self.lineno = 0
        for implicit in ("all", "ungrouped"):
            self.groups[implicit] = _GroupB(implicit, declared=True)

    def error(self, message: str, line: Optional[int] = None) -> InventoryError:
        return InventoryError(message, self.source, line if line is not None else self.lineno)

    def warn(self, message: str, line: Optional[int] = None) -> None:
        line = line if line is not None else self.lineno
        item = (line, f"{self.source}:{line}: {message}")
        if item not in self.warnings:
            self.warnings.append(item)

    def group(self, name: str) -> _GroupB:
        g = self.groups.get(name)
        if g is None:
            g = self.groups[name] = _GroupB(name)
        return g

    # -- the pass over the lines

    def parse(self) -> None:
        text = self.text[1:] if self.text.startswith("\ufeff") else self.text
        group, state = "ungrouped", "hosts"
        seen_content = False
        for self.lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if not seen_content:
                seen_content = True
                self._reject_yaml(line)
            if line.startswith("[") and self._looks_like_section(line):
                group, state = self._section(line)
                continue
            if state == "hosts":
                self._host_line(line, group)
            elif state == "vars":
                self._vars_line(line, group)
            else:
                self._children_line(line, group)

    def _reject_yaml(self, line: str) -> None:
        if line == "---" or line.startswith("{") or re.fullmatch(r"[\w.-]+:\s*(#.*)?", line):
            raise self.error(
                "this looks like a YAML (or JSON) inventory; port80 reads Ansible's INI inventory format "
                "([group] sections, 'host key=value' lines)"
            )

    @staticmethod
    def _looks_like_section(line: str) -> bool:
        bare = re.sub(r"\s[#;].*$", "", line).rstrip()
        return bare.endswith("]")

    def _section(self, line: str) -> tuple[str, str]:
        m = _SECTION_RE.match(line)
        if not m:
            raise self.error(
                f"bad section header {_short(line)!r}: expected [group], [group:vars] or [group:children] "
                "(no spaces or brackets in group names)"
            )
        name, kind = m.group(1), m.group(2) or "hosts"
        if kind not in ("hosts", "vars", "children"):
            raise self.error(f"unknown section type ':{kind}' in [{name}:{kind}]: expected :vars or :children")
        g = self.group(name)
        if kind in ("hosts", "children"):
            if not g.declared:
                g.declared, g.line = True, self.lineno
        elif not g.declared and g.first_ref is None:
            g.first_ref = (self.lineno, "vars", name)
        if name in self.hosts:
            self.warn(f"'{name}' is both a host and a group name")
        return name, kind

    def _host_line(self, line: str, group: str) -> None:
        first_word = line.split(None, 1)[0]
        try:
            tokens = shlex.split(line, comments=True, posix=True)
        except ValueError as e:  # do not echo the line: it may hold a password
            raise self.error(f"host line for {_short(first_word)!r}: {e} (check the quotes)") from None
        if not tokens or not tokens[0]:
            raise self.error("empty host name")
        pattern = tokens[0]
        if "=" in pattern:
            name = pattern.split("=", 1)[0]
            raise self.error(
                f"expected a host name, got the variable {name!r}: a host line is 'name key=value ...', "
                "group variables go in a [group:vars] section"
            )
        if "\\" in line and _has_dropped_backslash(line):
            self.warn(
                "a backslash outside quotes on a host line is an escape character (as in Ansible): "
                "CORP\\svc reads as CORPsvc; write 'CORP\\svc' (single quotes) or CORP\\\\svc"
            )
        names, port = self._expand_hostpattern(pattern)
        variables: dict[str, _Var] = {}
        if port is not None:
            variables["ansible_port"] = _Var(str(port), port, self.lineno)
        last_key: Optional[str] = None
        for tok in tokens[1:]:
            if "=" not in tok:
                if last_key is not None and is_secret_var(last_key):
                    raise self.error(f"the value of {last_key} has an unquoted space: quote it ('...')")
                raise self.error(f"expected key=value after the host name, got {_short(tok)!r}")
            key, raw = tok.split("=", 1)
            self._check_var_name(key)
            variables[key] = _Var(raw, _parse_value(raw), self.lineno)
            last_key = key
        for name in names:
            self._add_host(name, group, variables)

    def _add_host(self, name: str, group: str, variables: dict[str, _Var]) -> None:
        h = self.hosts.get(name)
        if h is None:
            h = self.hosts[name] = _HostB(name, self.lineno, len(self.hosts))
            if name in self.groups and self.groups[name].declared and name not in ("all", "ungrouped"):
                self.warn(f"'{name}' is both a host and a group name")
        if group not in h.groups:
            h.groups.append(group)
        g = self.group(group)
        if name not in g.host_set:
            g.host_set.add(name)
            g.hosts.append(name)
        h.vars.update(variables)

    def _check_var_name(self, key: str) -> None:
        if not key:
            raise self.error("empty variable name before '='")
        if not _VAR_NAME_RE.match(key):
            raise self.error(f"bad variable name {_short(key)!r}: letters, digits and '_' only, not starting with a digit")

    def _vars_line(self, line: str, group: str) -> None:
        if "=" not in line:
            raise self.error(f"expected key=value in [{group}:vars], got {_short(line)!r}")
        key, raw = line.split("=", 1)
        key = key.strip()
        self._check_var_name(key)
        raw = _strip_value_comment(raw)
        value = _parse_value(raw)
        g = self.group(group)
        if key == "ansible_group_priority":
            if isinstance(value, bool) or not isinstance(value, int):
                try:
                    value = int(str(value).strip())
                except ValueError:
                    raise self.error(f"ansible_group_priority must be a whole number, got {_short(raw)!r}") from None
            g.priority = value
            return
        g.vars[key] = _Var(raw, value, self.lineno)

    def _children_line(self, line: str, group: str) -> None:
        m = _GROUP_NAME_RE.match(line)
        if not m:
            raise self.error(f"expected a group name in [{group}:children], got {_short(line)!r}")
        child = m.group(1)
        if child == group:
            raise self.error(f"group '{group}' cannot be a child of itself")
        if child == "all":
            raise self.error(f"group 'all' cannot be a child of '{group}': every group is already in 'all' (a cycle)")
        c = self.group(child)
        if not c.declared and c.first_ref is None:
            c.first_ref = (self.lineno, "children", group)
        if (group, child) not in {(p, ch) for p, ch, _ in self.edges}:
            self.edges.append((group, child, self.lineno))

    # -- host patterns

    def _expand_hostpattern(self, pattern: str) -> tuple[list[str], Optional[int]]:
        """(host names, port) for 'name', 'name:port', '[v6]:port', a bare IPv6 or a range."""
        m = re.fullmatch(r"\[([^\[\]]+)\](?::([^:]*))?", pattern)
        if m and _is_ipv6(m.group(1)):
            port = self._port(m.group(2), pattern) if m.group(2) is not None else None
            return [m.group(1)], port
        if "[" not in pattern and pattern.count(":") >= 2:
            if _is_ipv6(pattern):
                return [pattern], None
            raise self.error(f"bad host {_short(pattern)!r}: too many ':' (write an IPv6 address with a port as [addr]:port)")
        colons = [i for i, _ in _outside_brackets(pattern, ":")]
        port = None
        if len(colons) > 1:
            raise self.error(f"bad host {_short(pattern)!r}: too many ':'")
        if colons:
            i = colons[0]
            if i == len(pattern) - 1:
                raise self.error(f"bad host {_short(pattern)!r}: a host name cannot end with ':'")
            pattern, port = pattern[:i], self._port(pattern[i + 1 :], pattern)
            if not pattern:
                raise self.error(f"bad host ':{port}': the host name is missing")
        names = self._expand_ranges(pattern)
        return names, port

    def _port(self, text: str, pattern: str) -> int:
        if not re.fullmatch(r"[0-9]{1,5}", text or "") or not 0 < int(text) < 65536:
            raise self.error(f"invalid port {_short(text)!r} in {_short(pattern)!r}: expected 1-65535")
        return int(text)

    def _expand_ranges(self, name: str) -> list[str]:
        m = _RANGE_RE.search(name)
        if not m:
            if "[" in name or "]" in name:
                raise self.error(f"bad host range in {_short(name)!r}: unbalanced '[' or ']'")
            return [name]
        head, body, tail = name[: m.start()], m.group(1), name[m.end() :]
        if "[" in head or "]" in head:
            raise self.error(f"bad host range in {_short(name)!r}: unbalanced '[' or ']'")
        bad = f"bad host range [{_short(body, 30)}] in {_short(name)!r}"
        bounds = body.split(":")
        if len(bounds) not in (2, 3):
            raise self.error(f"{bad}: expected [start:end] or [start:end:step]")
        beg, end = bounds[0] or "0", bounds[1]
        if not end:
            raise self.error(f"{bad}: the end is missing")
        step_text = bounds[2] if len(bounds) == 3 else "1"
        if not re.fullmatch(r"[0-9]+", step_text) or int(step_text) < 1:
            raise self.error(f"{bad}: the step must be a whole number of at least 1")
        step = int(step_text)
        items: list[str]
        if len(beg) == 1 and len(end) == 1 and beg in string.ascii_letters and end in string.ascii_letters:
            i_beg, i_end = string.ascii_letters.index(beg), string.ascii_letters.index(end)
            if i_beg > i_end:
                raise self.error(f"{bad}: the start comes after the end")
            items = list(string.ascii_letters[i_beg : i_end + 1 : step])
        elif re.fullmatch(r"[0-9]+", beg) and re.fullmatch(r"[0-9]+", end):
            width = 0
            if beg[0] == "0" and len(beg) > 1:
                width = len(beg)
                if len(end) != width:
                    raise self.error(f"{bad}: a zero-padded range needs a start and an end of the same width")
            b, e = int(beg), int(end)
            if b > e:
                raise self.error(f"{bad}: the start is greater than the end")
            count = (e - b) // step + 1
            if count > MAX_RANGE_HOSTS:
                raise self.error(f"{bad}: {count} hosts is too many (at most {MAX_RANGE_HOSTS})")
            items = [str(x).zfill(width) for x in range(b, e + 1, step)]
        else:
            raise self.error(f"{bad}: start and end must both be numbers or both be single letters")
        tails = self._expand_ranges(tail)
        if len(items) * len(tails) > MAX_RANGE_HOSTS:
            raise self.error(f"{bad}: {len(items) * len(tails)} hosts is too many (at most {MAX_RANGE_HOSTS})")
        return [head + x + t for x in items for t in tails]

    # -- structure checks at the end

    def finish(self) -> None:
        problems: list[tuple[int, str]] = []
        for g in self.groups.values():
            if not g.declared and g.first_ref is not None:
                line, kind, parent = g.first_ref
                if kind == "vars":
                    problems.append((line, f"[{g.name}:vars] for a group that is never defined: add a [{g.name}] or [{g.name}:children] section"))  # noqa: E501
                else:
                    problems.append((line, f"[{parent}:children] includes the undefined group '{g.name}': add a [{g.name}] or [{g.name}:children] section"))  # noqa: E501
        cycle = self._first_cycle()
        if cycle is not None:
            problems.append(cycle)
        if problems:
            line, message = min(problems)
            raise self.error(message, line)

    def _first_cycle(self) -> Optional[tuple[int, str]]:
        children: dict[str, list[str]] = {}
        for parent, child, line in self.edges:
            path = _path(children, child, parent)
            if path is not None:
                loop = " -> ".join([parent] + path)
                return line, f"adding '{child}' as a child of '{parent}' creates a cycle: {loop}"
            children.setdefault(parent, []).append(child)
        return None


def _has_dropped_backslash(line: str) -> bool:
    """Whether shell-like splitting drops a backslash that was likely meant literally (DOMAIN\\user):
    one outside quotes that does not escape a backslash, a quote, a blank or '#'."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = None
        elif quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#":  # shell-like splitting: a comment, even inside a word
            return False
        elif c == "\\":
            if i + 1 < len(line) and line[i + 1] not in "\\'\" #":
                return True
            i += 1
        i += 1
    return False


def _path(children: dict[str, list[str]], start: str, goal: str) -> Optional[list[str]]:
    """A path start -> ... -> goal along child edges, or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        if node in seen:
            continue
        seen.add(node)
        for c in reversed(children.get(node, [])):
            stack.append((c, path + [c]))
    return None


def _outside_brackets(text: str, char: str) -> Iterable[tuple[int, str]]:
    depth = 0
    for i, c in enumerate(text):
        if c == "[":
            depth += 1
        elif c == "]":
            depth = max(0, depth - 1)
        elif c == char and depth == 0:
            yield i, c


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text.split("%", 1)[0]), ipaddress.IPv6Address)
    except ValueError:
        return False


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


# --- the inventory ----------------------------------------------------------------------------------


class Inventory:
    """A parsed, resolved inventory.

    ``groups``: name -> :class:`Group` (including ``all`` and ``ungrouped``); ``warnings``: what
    deserves a look (with ``file:line:``), never a secret; ``hosts(limit)``: the hosts, in order of
    first appearance in the file."""

    def __init__(self, source: str, groups: dict[str, Group], hosts: list[HostConfig], warnings: list[str]) -> None:
        self.source = source
        self.groups = groups
        self.warnings = warnings
        self._hosts: dict[str, HostConfig] = {h.name: h for h in hosts}
        self._order = {h.name: i for i, h in enumerate(hosts)}
        self._members: dict[str, set[str]] = {}
        for g in groups:
            self._members[g] = set()
        for h in hosts:
            self._members["all"].add(h.name)
            for g in h.groups:
                self._members[g].add(h.name)

    def __repr__(self) -> str:
        return f"<Inventory {self.source}: {len(self._hosts)} hosts, {len(self.groups)} groups>"

    def __len__(self) -> int:
        return len(self._hosts)

    def __contains__(self, name: object) -> bool:
        return name in self._hosts

    def host(self, name: str) -> HostConfig:
        """The host called *name* (KeyError if none)."""
        return self._hosts[name]

    def hosts(self, limit: Optional[str] = None) -> list[HostConfig]:
        """The hosts selected by *limit* (Ansible pattern subset; None: all), in file order.

        Patterns that match nothing add a warning to ``warnings``; a malformed limit raises
        :class:`InventoryError`."""
        selected, warnings = self.select(limit)
        for w in warnings:
            if w not in self.warnings:
                self.warnings.append(w)
        return selected

    def select(self, limit: Optional[str] = None) -> tuple[list[HostConfig], list[str]]:
        """(hosts, warnings) for *limit*; see :meth:`hosts`."""
        if limit is None:
            return list(self._hosts.values()), []
        patterns = _split_limit(limit)
        if not patterns:
            raise InventoryError(f"--limit {limit!r}: no pattern given")
        warnings: list[str] = []
        includes = [p for p in patterns if p[0] not in "!&"]
        intersections = [p[1:] for p in patterns if p[0] == "&"]
        exclusions = [p[1:] for p in patterns if p[0] == "!"]
        for p in intersections + exclusions:
            if not p:
                raise InventoryError(f"--limit {limit!r}: '&' or '!' must be followed by a pattern")
        if not includes:
            includes = ["all"]
        chosen: set[str] = set()
        for p in includes:
            chosen |= self._match(p, limit, warnings)
        for p in intersections:
            chosen &= self._match(p, limit, warnings)
        for p in exclusions:
            chosen -= self._match(p, limit, warnings)
        if not chosen and self._hosts:
            warnings.append(f"--limit {limit!r} selects no hosts")
        return sorted((self._hosts[n] for n in chosen), key=lambda h: self._order[h.name]), warnings

    def _ordered(self, names: Iterable[str]) -> list[str]:
        return sorted(names, key=self._order.__getitem__)

    def _match(self, pattern: str, limit: str, warnings: list[str]) -> set[str]:
        result = self._match_one(pattern, limit)
        if not result:
            warnings.append(f"--limit: {pattern!r} matches no host or group")
        return result

    def _match_one(self, pattern: str, limit: str) -> set[str]:
        if pattern in ("all", "*"):
            return set(self._hosts)
        if pattern in self._hosts:
            return {pattern}
        if pattern.startswith("~"):
            try:
                rx = re.compile(pattern[1:])
            except re.error as e:
                raise InventoryError(f"--limit {limit!r}: bad regular expression {pattern!r}: {e}") from None
            out: set[str] = set()
            for g in self.groups:
                if rx.search(g):
                    out |= self._members[g]
            out |= {h for h in self._hosts if rx.search(h)}
            return out
        m = _LIMIT_SUBSCRIPT_RE.match(pattern)
        if m and m.group(1) not in self._hosts:
            base, index, start, end = m.groups()
            members = self._ordered(self._match_one(base, limit))
            try:
                if index is not None:
                    return {members[int(index)]}
                stop = int(end) if end else len(members) - 1
                return set(members[int(start) : stop + 1])
            except IndexError:
                return set()
        out = set()
        matched_group = False
        for g in self.groups:
            if fnmatch.fnmatchcase(g, pattern):
                matched_group = True
                out |= self._members[g]
        if not matched_group or any(c in pattern for c in ".?*["):
            out |= {h for h in self._hosts if fnmatch.fnmatchcase(h, pattern)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready listing (for ``port80 inventory``); holds no secret."""
        return {
            "source": self.source,
            "hosts": [h.to_dict() for h in self._hosts.values()],
            "groups": {name: g.to_dict() for name, g in self.groups.items()},
            "warnings": list(self.warnings),
        }


def _split_limit(limit: str) -> list[str]:
    """Ansible's split_host_pattern: commas, else colons outside [...] (an IPv6 address is one)."""
    text = limit.strip()
    if "," in text:
        parts = text.split(",")
    elif _is_ipv6(text.lstrip("!&")):
        parts = [text]
    else:  # split at ':' and blanks outside [...]; an unclosed '[' keeps the rest in one pattern
        parts, current, depth = [], "", 0
        for c in text:
            if c == "[":
                depth += 1
            elif c == "]":
                depth = max(0, depth - 1)
            elif depth == 0 and (c == ":" or c.isspace()):
                parts.append(current)
                current = ""
                continue
            current += c
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _typo_warnings(parser: _Parser) -> None:
    known = set(CONNECTION_VARS) | _KNOWN_UNUSED
    for where in [g.vars for g in parser.groups.values()] + [h.vars for h in parser.hosts.values()]:
        for key, v in where.items():
            if key.startswith("port80_") and key not in PORT80_VARS:
                parser.warn(f"unknown port80 variable '{key}' (known: {', '.join(PORT80_VARS)})", v.line)
            elif key.startswith(("ansible_psrp_", "ansible_winrm_")) and key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.85)
                if close:
                    parser.warn(f"unknown variable '{key}' (did you mean '{close[0]}'?)", v.line)
            if key in PASSWORD_VARS:
                parser.warn(
                    f"{key} is set in the inventory: it is used, but secrets belong in PORT80_PASSWORD or "
                    "--password-file (the value is never shown)",
                    v.line,
                )


def _build(parser: _Parser) -> Inventory:
    source = parser.source
    pg = parser.groups

    parents: dict[str, list[str]] = {name: [] for name in pg}
    children: dict[str, list[str]] = {name: [] for name in pg}
    for parent, child, _ in parser.edges:
        children[parent].append(child)
        parents[child].append(parent)
    for name in pg:
        if name != "all" and not parents[name]:
            parents[name].append("all")
            children["all"].append(name)

    depth: dict[str, int] = {"all": 0}

    def depth_of(name: str) -> int:  # the graph is acyclic (checked in finish())
        if name not in depth:
            stack = [name]
            while stack:
                n = stack[-1]
                pending = [p for p in parents[n] if p not in depth]
                if pending:
                    stack.extend(pending)
                else:
                    depth[n] = 1 + max(depth[p] for p in parents[n])
                    stack.pop()
        return depth[name]

    ancestors: dict[str, set[str]] = {}

    def ancestors_of(name: str) -> set[str]:
        if name not in ancestors:
            out: set[str] = set()
            stack = list(parents[name])
            while stack:
                p = stack.pop()
                if p not in out:
                    out.add(p)
                    stack.extend(parents[p])
            ancestors[name] = out
        return ancestors[name]

    # Ansible: a host is in 'ungrouped' only if it is in no other group (besides 'all')
    ungrouped: list[str] = []
    for h in sorted(parser.hosts.values(), key=lambda x: x.order):
        real = [g for g in h.groups if g not in ("all", "ungrouped")]
        h.groups = real or ["ungrouped"]
        if not real:
            ungrouped.append(h.name)
    pg["ungrouped"].hosts = ungrouped
    pg["all"].hosts = []

    resolver = _Resolver(source)
    hosts: list[HostConfig] = []
    for h in sorted(parser.hosts.values(), key=lambda x: x.order):
        closure: set[str] = {"all"}
        for g in h.groups:
            closure.add(g)
            closure |= ancestors_of(g)
        ordered = sorted(closure, key=lambda g: (depth_of(g), pg[g].priority, g))
        merged: dict[str, _Var] = {}
        for g in ordered:
            merged.update(pg[g].vars)
        merged.update(h.vars)
        group_names = sorted(g for g in closure if g != "all")
        hosts.append(resolver.resolve(h, merged, group_names))

    groups: dict[str, Group] = {}
    for name, gb in pg.items():
        groups[name] = Group(
            name=name,
            line=gb.line,
            vars={k: v.value for k, v in gb.vars.items() if not is_secret_var(k)},
            secret_vars=sorted(k for k in gb.vars if is_secret_var(k)),
            children=list(children[name]),
            parents=[p for p in parents[name]],
            hosts=list(gb.hosts),
            depth=depth_of(name),
            priority=gb.priority,
        )

    _typo_warnings(parser)
    ordered_warnings = sorted(parser.warnings + resolver.rendered_warnings(), key=lambda w: w[0])
    warnings = list(dict.fromkeys(text for _, text in ordered_warnings))
    return Inventory(source, groups, hosts, warnings)


def parse_inventory(text: str, source: str = "<inventory>") -> Inventory:
    """Parse and resolve an Ansible INI inventory held in *text* (pure: no IO).

    Raises :class:`InventoryError` (``source:line: what is wrong``) at the first problem."""
    parser = _Parser(text, str(source))
    parser.parse()
    parser.finish()
    return _build(parser)


def load_inventory(path: "str | Path") -> Inventory:
    """Read an inventory file (UTF-8, optional BOM) and parse it; see :func:`parse_inventory`."""
    p = Path(path)
    source = str(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise InventoryError("is a directory; port80 reads one INI inventory file", source) from None
    except OSError as e:
        raise InventoryError(f"cannot read the inventory ({e.strerror or type(e).__name__})", source) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InventoryError("not UTF-8 text (save the inventory as UTF-8)", source, line) from None
    return parse_inventory(text, source)


# --- shards -----------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/5"`` -> ``(2, 5)``: the 2nd of 5 slices. Raises :class:`ShardError`."""
    m = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", text or "")
    if not m:
        raise ShardError(f"--shard {text!r}: expected K/N, e.g. 2/5 for the 2nd of 5 slices")
    k, n = int(m.group(1)), int(m.group(2))
    _check_shard(k, n, text)
    return k, n


def _check_shard(k: int, n: int, text: Optional[str] = None) -> None:
    shown = text if text is not None else f"{k}/{n}"
    if n < 1:
        raise ShardError(f"--shard {shown!r}: N (the number of slices) must be at least 1")
    if not 1 <= k <= n:
        raise ShardError(f"--shard {shown!r}: K must be between 1 and N ({n})")


def shard_index(name: str, n: int) -> int:
    """The 0-based slice of *n* that host *name* falls in: sha1 of the lower-cased name, mod n.

    Depends on nothing but the name, so a host stays in its slice when the file is reordered."""
    digest = hashlib.sha1(name.strip().lower().encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % n


def shard(hosts: Sequence[Any], k: int, n: int) -> list[Any]:
    """The *k*-th (1-based) of *n* stable slices of *hosts* (HostConfig, or anything with
    ``.name``, or names), in their given order. Every host is in exactly one slice."""
    _check_shard(k, n)
    return [h for h in hosts if shard_index(h if isinstance(h, str) else h.name, n) == k - 1]
