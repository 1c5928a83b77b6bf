"""Drift between two runs: what changed per host and port. Pure: two lists of host records in, changes out.

Changes, in this order per host:
- ``host-added`` / ``host-removed``: the host is in one run only;
- ``status``: the host's scan status changed (ok → auth, timeout → ok, ...). When either run could
  not collect the host's evidence (a failed status), only the status change is reported: the ports
  of a host that was not scanned are unknown, not changed;
- per port present in both runs: ``holder`` (http.sys → free, ...), ``registration-added`` /
  ``registration-removed`` (an HTTP.sys URL, with its product), ``product-added`` /
  ``product-removed`` (a product label of the port's registrations), ``process-added`` /
  ``process-removed`` (a user-mode listener's process name).
Run-to-run noise is ignored on purpose: times, evidence paths, PIDs, notes.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Optional

from remote.runner.failures import FAILED

if TYPE_CHECKING:
    from remote.analysis.verdicts import HostReport, PortVerdict

KINDS = ("host-added", "host-removed", "status", "holder", "registration-removed", "registration-added",
         "product-removed", "product-added", "process-removed", "process-added")
FORMATS = ("table", "json", "csv", "markdown")
CSV_COLUMNS = ["host", "port", "change", "before", "after", "evidence"]


@dataclass
class Change:
    host: str
    port: Optional[int]
    change: str  # one of KINDS
    before: str = ""
    after: str = ""
    evidence: str = ""  # the evidence line of what was added or removed (the run that has it)


def _products(p: "PortVerdict") -> set[str]:
    return {g.product for g in p.registrations if g.product}


def _processes(p: "PortVerdict") -> set[str]:
    return {ls.process or f"PID {ls.pid}" for ls in p.listeners if ls.pid != 4}


def _port_changes(host: str, a: "PortVerdict", b: "PortVerdict") -> list[Change]:
    out: list[Change] = []
    if a.holder != b.holder:
        out.append(Change(host, b.port, "holder", a.holder, b.holder))
    regs_a = {g.url: g for g in a.registrations}
    regs_b = {g.url: g for g in b.registrations}
    for url in regs_a.keys() - regs_b.keys():
        g = regs_a[url]
        out.append(Change(host, b.port, "registration-removed", f"{url} ({g.product})" if g.product else url, "",
                          g.evidence))
    for url in regs_b.keys() - regs_a.keys():
        g = regs_b[url]
        out.append(Change(host, b.port, "registration-added", "", f"{url} ({g.product})" if g.product else url,
                          g.evidence))
    for prod in sorted(_products(a) - _products(b)):
        out.append(Change(host, b.port, "product-removed", prod, ""))
    for prod in sorted(_products(b) - _products(a)):
        out.append(Change(host, b.port, "product-added", "", prod))
    for proc in sorted(_processes(a) - _processes(b)):
        ev = next((ls.evidence for ls in a.listeners if (ls.process or f"PID {ls.pid}") == proc), "")
        out.append(Change(host, b.port, "process-removed", proc, "", ev))
    for proc in sorted(_processes(b) - _processes(a)):
        ev = next((ls.evidence for ls in b.listeners if (ls.process or f"PID {ls.pid}") == proc), "")
        out.append(Change(host, b.port, "process-added", "", proc, ev))
    return sorted(out, key=lambda c: (KINDS.index(c.change), c.before, c.after))


def diff(old: list["HostReport"], new: list["HostReport"]) -> list[Change]:
    """Every change from ``old`` to ``new``, in ``new``'s host order (removed hosts last)."""
    a = {r.host: r for r in old}
    b = {r.host: r for r in new}
    out: list[Change] = []
    for host, rb in b.items():
        ra = a.get(host)
        if ra is None:
            holders = ", ".join(f"{p.port}: {p.holder}" for p in rb.ports)
            out.append(Change(host, None, "host-added", "", f"{rb.status}" + (f" ({holders})" if holders else "")))
            continue
        if ra.status != rb.status:
            out.append(Change(host, None, "status", ra.status, rb.status))
        if ra.status in FAILED or rb.status in FAILED:
            continue
        pa = {p.port: p for p in ra.ports}
        for p in rb.ports:
            if p.port in pa:
                out.extend(_port_changes(host, pa[p.port], p))
    for host, ra in a.items():
        if host not in b:
            out.append(Change(host, None, "host-removed", ra.status, ""))
    return out


def summary(changes: list[Change]) -> dict[str, Any]:
    return {"changes": len(changes), "hosts_changed": len({c.host for c in changes}),
            "by_change": dict(Counter(c.change for c in changes))}


def to_doc(changes: list[Change], before: str, after: str) -> dict[str, Any]:
    from remote.report.schema import SCHEMA_VERSION

    return {"schema_version": SCHEMA_VERSION, "kind": "diff", "from": before, "to": after,
            "changes": [asdict(c) for c in changes], "summary": summary(changes)}


def render(changes: list[Change], fmt: str, before: str = "", after: str = "") -> str:
    if fmt == "json":
        return json.dumps(to_doc(changes, before, after), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        from remote.report.sanitize import csv_cell as csv_safe

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(CSV_COLUMNS)
        for c in changes:
            w.writerow([csv_safe(x) for x in (c.host, "" if c.port is None else c.port, c.change, c.before, c.after,
                                               c.evidence)])
        return buf.getvalue()
    if fmt in ("table", "markdown"):
        from tabulate import tabulate

        from remote.report.sanitize import cut, md, shown

        esc = md if fmt == "markdown" else shown
        head = f"changes from {before} to {after}" if before or after else "changes"
        if not changes:
            return f"{shown(head)}: none\n"
        rows = [[esc(cut(c.host, 24)), "" if c.port is None else c.port, c.change, esc(cut(c.before, 40)),
                 esc(cut(c.after, 40))] for c in changes]
        s = summary(changes)
        table = tabulate(rows, headers=["HOST", "PORT", "CHANGE", "BEFORE", "AFTER"],
                         tablefmt="github" if fmt == "markdown" else "simple")
        return (f"{shown(head)}\n\n{table}\n\n{s['changes']} changes on {s['hosts_changed']} hosts: "
                + ", ".join(f"{k} {v}" for k, v in s["by_change"].items()) + "\n")
    raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
