"""Parsing an Ansible INI inventory into raw groups, hosts and variables (with their file lines), before
any precedence is applied. Split from ansible_ini.py."""

from __future__ import annotations

import ast
import ipaddress
import math
import re
import shlex
import string
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Optional

from remote.inventory.model import (
    _GROUP_NAME_RE,
    _RANGE_RE,
    _SECTION_RE,
    _VAR_NAME_RE,
    InventoryError,
    is_secret_var,
    MAX_RANGE_HOSTS,
)


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


# A word that starts with a letter or "_" and holds only letters, digits, "_", "." and "-" (a host
# name, a group, "psrp", "https", "validate") is a Name, an Attribute or a subtraction of those to
# ast.literal_eval, never a literal: it raises, and the text is kept. Only True, False and None are
# names that are literals (and "None-1j"-like sums of them), so words starting with those take the
# slow path. 10,000 host lines: ast's compile per value was a third of reading the inventory.
# Digits with two dots or more ("127.0.0.1", "10.1.2") are a syntax error to it: text too.
_PLAIN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*|[0-9]+(?:\.[0-9]+){2,}")
_LITERAL_NAMES = ("True", "False", "None")


def _parse_value(raw: str) -> Any:
    """Ansible's ``_parse_value``: a Python literal if the text is one, else the text."""
    if not raw or len(raw) > 4096:
        return raw
    if _PLAIN_WORD.fullmatch(raw) and not raw.startswith(_LITERAL_NAMES):
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


# What shlex treats specially in a host line (posix mode, comments on): quotes, the escape, the
# comment sign. A line without any of them splits on shlex's whitespace (space, tab, CR, LF) alone.
_SHLEX_SPECIAL = re.compile(r"['\"\\#]")
_SHLEX_SPACE = re.compile(r"[ \t\r\n]+")


def split_host_line(line: str) -> list[str]:
    """``shlex.split(line, comments=True, posix=True)``, as Ansible splits a host line; a line with no
    quote, backslash or "#" (nearly all of them) is split on shlex's whitespace without the tokenizer,
    which cost ~0.1 ms per line (tests/test_inventory_core.py checks the two agree)."""
    if _SHLEX_SPECIAL.search(line) is None:
        stripped = line.strip(" \t\r\n")
        return _SHLEX_SPACE.split(stripped) if stripped else []
    return shlex.split(line, comments=True, posix=True)


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
            tokens = split_host_line(line)
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
