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

import difflib
import fnmatch
import re
from pathlib import Path
from typing import Any, Iterable, Optional

from remote.inventory.ini_parser import _is_ipv6, _Parser, _Var
from remote.inventory.model import (
    _KNOWN_UNUSED,
    _LIMIT_SUBSCRIPT_RE,
    CONNECTION_VARS,
    Group,
    HostConfig,
    InventoryError,
    is_secret_var,
    PASSWORD_VARS,
    PORT80_VARS,
)
from remote.inventory.resolver import _Resolver
# the names split into model.py, ini_parser.py, resolver.py and shards.py stay importable from here
from remote.inventory.ini_parser import _parse_value  # noqa: F401
from remote.inventory.model import (  # noqa: F401
    DEFAULT_CONFIGURATION_NAME,
    HTTP_PORT,
    HTTPS_PORT,
    ShardError,
)
from remote.inventory.shards import parse_shard, shard, shard_index  # noqa: F401

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
