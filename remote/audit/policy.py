"""Policy as code: which holders, products and services may use a port, per inventory group or host
pattern. Pure: a policy file's text and host records in, violations out (each names the rule's
``file:line`` and the evidence line).

A policy is TOML (docs/policy.md; ``examples/policy.toml``)::

    unknown = "violation"          # default for every rule: a port that could not be checked is a violation
                                   # ("ignore": it is skipped)
    [[rule]]
    hosts = "all"                  # a --limit pattern: groups, host globs, !exclude, &intersect, a,b lists
    port = 80                      # or a list: [80, 443]
    forbidden_products = ["branchcache"]

    [[rule]]
    hosts = "!web"
    port = 80
    forbidden_products = ["iis"]

Rule keys: ``hosts``, ``port``, ``allowed_holders`` (free, http.sys, process), ``allowed_products``,
``forbidden_products``, ``allowed_services``, ``forbidden_services``, ``must_be_free``, ``unknown``,
``name``. Products match a registration's product key (``iis``, ``branchcache``, ``ssrs``...) or
label (``IIS (W3SVC/WAS)``), or a user-mode listener's process name (``nginx.exe``), case-blind, with
``*``/``?`` wildcards. Every rule that selects a host applies to it (they all must hold).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

from remote.errors import Port80Error
from remote.runner.failures import FAILED

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


if TYPE_CHECKING:
    from remote.analysis.verdicts import HostReport, PortVerdict
    from remote.inventory.ansible_ini import Inventory

HOLDERS = ("free", "http.sys", "process")
UNKNOWN_MODES = ("violation", "ignore")
LIST_KEYS = ("allowed_holders", "allowed_products", "forbidden_products", "allowed_services", "forbidden_services")
RULE_KEYS = ("hosts", "port", "must_be_free", "unknown", "name", *LIST_KEYS)
TOP_KEYS = ("unknown", "rule", "description")
FORMATS = ("table", "json", "csv", "markdown")
CSV_COLUMNS = ["host", "port", "rule", "check", "found", "message", "evidence", "evidence_dir"]


class PolicyError(Port80Error):
    """A policy that cannot be used: ``str()`` is ``file:line: what is wrong``."""


@dataclass
class Rule:
    index: int
    line: int
    hosts: str = "all"
    ports: list[int] = field(default_factory=list)
    allowed_holders: Optional[list[str]] = None
    allowed_products: Optional[list[str]] = None
    forbidden_products: list[str] = field(default_factory=list)
    allowed_services: Optional[list[str]] = None
    forbidden_services: list[str] = field(default_factory=list)
    must_be_free: bool = False
    unknown: str = "violation"
    name: str = ""
    key_lines: dict[str, int] = field(default_factory=dict)

    def where(self, source: str, key: Optional[str] = None) -> str:
        return f"{source}:{self.key_lines.get(key, self.line) if key else self.line}"


@dataclass
class Policy:
    source: str
    rules: list[Rule]
    unknown: str = "violation"


@dataclass
class Violation:
    host: str
    port: int
    rule: str  # file:line of the rule's key that is broken
    check: str  # allowed_holders, forbidden_products, must_be_free, unknown, ...
    found: str  # what was found (a product, a holder, a service)
    message: str
    evidence: str = ""  # servicestate.txt:38
    evidence_dir: str = ""


# --- reading -----------------------------------------------------------------------------------------

_HEADER_RE = re.compile(r"^\s*\[\[\s*rule\s*\]\]\s*(#.*)?$")
_TABLE_RE = re.compile(r"^\s*\[")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def _lines(text: str) -> tuple[list[int], list[dict[str, int]], dict[str, int]]:
    """Line numbers of each [[rule]] header, of each rule's keys, and of the top-level keys. A plain
    reading of the text (tomllib gives no positions); a key inside a multi-line string may fool it,
    which only costs a less precise line number."""
    headers: list[int] = []
    keys: list[dict[str, int]] = []
    top: dict[str, int] = {}
    in_other_table = False
    for n, line in enumerate(text.splitlines(), 1):
        if _HEADER_RE.match(line):
            headers.append(n)
            keys.append({})
            in_other_table = False
            continue
        if _TABLE_RE.match(line):
            in_other_table = True
            continue
        m = _KEY_RE.match(line)
        if m:
            if keys and not in_other_table:
                keys[-1].setdefault(m.group(1), n)
            elif not headers and not in_other_table:
                top.setdefault(m.group(1), n)
    return headers, keys, top


def _str_list(value: Any, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: {key} must be a list of strings")
    return list(value)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = m.group(1) if m else "1"
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg) if m else msg
        raise PolicyError(f"{source}:{line}: not valid TOML: {msg}") from None
    headers, key_lines, top_lines = _lines(text)
    for k in doc:
        if k not in TOP_KEYS:
            raise PolicyError(f"{source}:{top_lines.get(k, 1)}: unknown key {k!r} (expected {', '.join(TOP_KEYS)})")
    default_unknown = doc.get("unknown", "violation")
    if default_unknown not in UNKNOWN_MODES:
        raise PolicyError(f"{source}:{top_lines.get('unknown', 1)}: unknown must be \"violation\" or \"ignore\"")
    raw_rules = doc.get("rule", [])
    if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
        raise PolicyError(f"{source}:{top_lines.get('rule', 1)}: rule must be an array of tables: [[rule]]")
    if not raw_rules:
        raise PolicyError(f"{source}:1: no [[rule]] in the policy")
    rules = []
    for i, raw in enumerate(raw_rules):
        line = headers[i] if i < len(headers) else 1
        kl = key_lines[i] if i < len(key_lines) else {}
        rule = Rule(index=i + 1, line=line, unknown=default_unknown, key_lines=dict(kl))
        for k, v in raw.items():
            where = f"{source}:{kl.get(k, line)}"
            if k not in RULE_KEYS:
                raise PolicyError(f"{where}: unknown rule key {k!r} (expected {', '.join(RULE_KEYS)})")
            if k == "hosts":
                if not isinstance(v, str) or not v.strip():
                    raise PolicyError(f"{where}: hosts must be a host pattern (as --limit), e.g. \"web:!web03\"")
                rule.hosts = v
            elif k == "port":
                ports = v if isinstance(v, list) else [v]
                if not ports or not all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536
                                        for p in ports):
                    raise PolicyError(f"{where}: port must be a TCP port (1-65535) or a list of them")
                rule.ports = list(ports)
            elif k == "must_be_free":
                if not isinstance(v, bool):
                    raise PolicyError(f"{where}: must_be_free must be true or false")
                rule.must_be_free = v
            elif k == "unknown":
                if v not in UNKNOWN_MODES:
                    raise PolicyError(f"{where}: unknown must be \"violation\" or \"ignore\"")
                rule.unknown = v
            elif k == "name":
                if not isinstance(v, str):
                    raise PolicyError(f"{where}: name must be a string")
                rule.name = v
            else:
                values = _str_list(v, where, k)
                if k == "allowed_holders":
                    bad = [x for x in values if x not in HOLDERS]
                    if bad:
                        raise PolicyError(f"{where}: allowed_holders: {bad[0]!r} is not one of {', '.join(HOLDERS)}")
                setattr(rule, k, values)
        if not rule.ports:
            raise PolicyError(f"{source}:{line}: rule {i + 1} has no port")
        _check_pattern(rule.hosts, f"{source}:{kl.get('hosts', line)}")
        rules.append(rule)
    return Policy(source=source, rules=rules, unknown=default_unknown)


def load_policy(path: Path) -> Policy:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise PolicyError(f"{path}:1: cannot read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise PolicyError(f"{path}:{line}: not UTF-8 text") from None
    return parse_policy(text, str(path))


# --- host patterns (the inventory's own --limit matcher) ---------------------------------------------


def _inventory(hosts: dict[str, list[str]]) -> Inventory:
    from remote.inventory.ansible_ini import Group, HostConfig, Inventory

    names = {"all", "ungrouped"} | {g for gs in hosts.values() for g in gs}
    return Inventory("<policy>", {g: Group(g) for g in sorted(names)},
                     [HostConfig(name=n, address=n, groups=list(gs)) for n, gs in hosts.items()], [])


def _check_pattern(pattern: str, where: str) -> None:
    from remote.inventory.ansible_ini import InventoryError

    try:
        _inventory({"x": []}).select(pattern)
    except InventoryError as e:
        msg = str(e).replace("--limit ", "hosts ")
        raise PolicyError(f"{where}: {msg}") from None


def select(pattern: str, hosts: dict[str, list[str]]) -> set[str]:
    """Names among ``hosts`` (name -> groups) that the --limit style ``pattern`` selects."""
    return {h.name for h in _inventory(hosts).select(pattern)[0]}


# --- checking ------------------------------------------------------------------------------------------


def _match(patterns: Iterable[str], names: Iterable[str]) -> Optional[str]:
    names = [n.casefold() for n in names if n]
    for p in patterns:
        pc = p.casefold()
        for n in names:
            if fnmatch.fnmatchcase(n, pc) or (n.endswith(".exe") and fnmatch.fnmatchcase(n[:-4], pc)):
                return p
    return None


def _things(p: "PortVerdict") -> list[tuple[str, list[str], str]]:
    """(label, names it matches by, evidence) of every product on the port."""
    out = []
    for g in p.registrations:
        if g.product or g.product_key:
            out.append((g.product or g.product_key, [g.product_key, g.product], g.evidence))
    for ls in p.listeners:
        if ls.pid != 4:
            name = ls.process or f"PID {ls.pid}"
            out.append((name, [name], ls.evidence))
    return out


def check(policy: Policy, reports: list["HostReport"]) -> list[Violation]:
    hosts = {r.host: list(r.groups) for r in reports}
    selected = [select(rule.hosts, hosts) for rule in policy.rules]
    out: list[Violation] = []
    src = policy.source
    for r in reports:
        ports = {p.port: p for p in r.ports}
        unknown: set[int] = set()  # one "cannot check" per port, from the first rule that asks
        for rule, chosen in zip(policy.rules, selected):
            if r.host not in chosen:
                continue
            for port in rule.ports:
                for v in _check_port(rule, src, r, port, ports.get(port)):
                    if v.check == "unknown":
                        if port in unknown:
                            continue
                        unknown.add(port)
                    out.append(v)
    return out


def _check_port(rule: Rule, src: str, r: "HostReport", port: int, p: Optional["PortVerdict"]) -> list[Violation]:
    ev_dir = r.evidence_dir or ""

    def viol(key: str, found: str, message: str, evidence: str = "") -> Violation:
        return Violation(r.host, port, rule.where(src, key), key, found, message, evidence, ev_dir)

    if p is None or p.holder == "unknown" or r.status in FAILED:
        if rule.unknown == "violation":
            why = (f"not scanned ({r.status}: {r.error})" if r.status in FAILED and r.error
                   else "port not audited in this run" if p is None
                   else "; ".join(p.notes) or "holder unknown")
            return [viol("unknown", "unknown", f"cannot check port {port}: {why}")]
        return []
    out: list[Violation] = []
    lines = [x.evidence for x in p.listeners] + [g.evidence for g in p.registrations]
    first_ev = next((x for x in lines if x), "")
    if rule.must_be_free and p.holder != "free":
        out.append(viol("must_be_free", p.holder, f"port {port} must be free; held by {p.holder}", first_ev))
    if rule.allowed_holders is not None:
        held = ["free"] if p.holder == "free" else list(p.holders or p.holder.split("+"))
        for h in held:
            if h not in rule.allowed_holders:
                out.append(viol("allowed_holders", h, f"holder {h} is not allowed on port {port} "
                                f"(allowed: {', '.join(rule.allowed_holders) or 'none'})", first_ev))
    things = _things(p)
    for label, names, ev in things:
        hit = _match(rule.forbidden_products, names)
        if hit is not None:
            out.append(viol("forbidden_products", label, f"{label} is forbidden on port {port}", ev))
        if rule.allowed_products is not None and _match(rule.allowed_products, names) is None:
            out.append(viol("allowed_products", label, f"{label} is not an allowed product on port {port}", ev))
    for g in p.registrations:
        for s in g.services:
            hit = _match(rule.forbidden_services, [s])
            if hit is not None:
                out.append(viol("forbidden_services", s, f"service {s} is forbidden on port {port}", g.evidence))
            if rule.allowed_services is not None and _match(rule.allowed_services, [s]) is None:
                out.append(viol("allowed_services", s, f"service {s} is not allowed on port {port}", g.evidence))
    seen, unique = set(), []
    for v in out:  # one line per (check, found, evidence)
        key = (v.check, v.found, v.evidence)
        if key not in seen:
            seen.add(key)
            unique.append(v)
    return unique


# --- learning ------------------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def _cover(names: list[str], members: dict[str, set[str]]) -> str:
    """A --limit pattern for exactly ``names``: the biggest inventory groups wholly inside them first,
    then the hosts left, by name."""
    left, parts = set(names), []
    for g, m in sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if g != "ungrouped" and m and m <= left:
            parts.append(g)
            left -= m
    return ",".join(parts + [n for n in names if n in left])


def learn(reports: list["HostReport"], label: str = "") -> str:
    """A policy that the given run satisfies: per port, hosts with the same holders and products share a
    rule (named by their inventory group when the group is exactly those hosts). For review, not as is."""
    hosts = {r.host: list(r.groups) for r in reports}
    members: dict[str, set[str]] = {}
    for h, gs in hosts.items():
        for g in gs:
            members.setdefault(g, set()).add(h)
    ports = sorted({p.port for r in reports for p in r.ports})
    lines = [f"# port80 policy learned from {label or 'a run'} on "
             f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}: the fleet as it was then.",
             "# Review every rule before using it: it allows what was found, including what should not be there.",
             'unknown = "violation"  # a port that could not be checked (host not scanned) is a violation', ""]
    skipped = sorted((r.host, r.status) for r in reports if r.status in FAILED)
    for port in ports:
        groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
        for r in reports:
            if r.status in FAILED:
                continue
            p = next((x for x in r.ports if x.port == port), None)
            if p is None or p.holder == "unknown":
                continue
            held = ("free",) if p.holder == "free" else tuple(sorted(p.holders or p.holder.split("+")))
            prods = tuple(sorted({g.product_key or g.product for g in p.registrations if g.product_key or g.product}
                                 | {ls.process or f"PID {ls.pid}" for ls in p.listeners if ls.pid != 4}))
            groups.setdefault((held, prods), []).append(r.host)
        for (held, prods), names in sorted(groups.items(), key=lambda kv: kv[1][0]):
            pattern = _cover(names, members)
            lines.append("[[rule]]")
            lines.append(f"hosts = {_toml(pattern)}")
            lines.append(f"port = {port}")
            if held == ("free",):
                lines.append("must_be_free = true")
            else:
                lines.append(f"allowed_holders = {_toml(list(held))}")
                lines.append(f"allowed_products = {_toml(list(prods))}")
            lines.append("")
    if skipped:
        lines.append("# not scanned in that run, so not in any rule above: "
                     + ", ".join(f"{h} ({s})" for h, s in skipped))
    return "\n".join(lines).rstrip("\n") + "\n"


# --- rendering -----------------------------------------------------------------------------------------


def to_doc(violations: list[Violation], policy: str, checked: str, hosts: int) -> dict[str, Any]:
    from remote.report.schema import SCHEMA_VERSION

    return {"schema_version": SCHEMA_VERSION, "kind": "policy", "policy": policy, "checked": checked,
            "violations": [asdict(v) for v in violations],
            "summary": {"hosts": hosts, "violations": len(violations),
                        "hosts_in_violation": len({v.host for v in violations})}}


def render(violations: list[Violation], fmt: str, policy: str = "", checked: str = "", hosts: int = 0) -> str:
    if fmt == "json":
        return json.dumps(to_doc(violations, policy, checked, hosts), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        from remote.report.sanitize import csv_cell as csv_safe

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(CSV_COLUMNS)
        for v in violations:
            d = asdict(v)
            w.writerow([csv_safe(d[c]) for c in CSV_COLUMNS])
        return buf.getvalue()
    if fmt in ("table", "markdown"):
        from tabulate import tabulate

        from remote.report.sanitize import cut, md, shown

        esc = md if fmt == "markdown" else shown
        if not violations:
            return shown(f"policy {policy}: no violation on {hosts} hosts ({checked})") + "\n"
        rows = [[esc(cut(v.host, 20)), v.port, esc(v.rule), esc(cut(v.message, 60)), esc(v.evidence)]
                for v in violations]
        table = tabulate(rows, headers=["HOST", "PORT", "RULE", "VIOLATION", "EVIDENCE"],
                         tablefmt="github" if fmt == "markdown" else "simple")
        n_hosts = len({v.host for v in violations})
        return f"{table}\n\n" + shown(f"{len(violations)} violations on {n_hosts} of {hosts} hosts (policy {policy}, "
                                         f"{checked})") + "\n"
    raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
