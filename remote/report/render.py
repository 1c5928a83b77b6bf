"""Fleet report renderings: table (tabulate), CSV, JSON, JSONL, Markdown. Pure: reports in, text out.

Every host appears in every format, whatever happened to it: CSV has one row per
(host, port, registration) and at least one row per (host, port).
"""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
from collections import Counter
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, TypeVar

from tabulate import tabulate

from remote.analysis.verdicts import Holder, HostReport, Listener, PortVerdict, Registration, ReservationView
from remote.jsontext import dumps_indented
from remote.report.formats import FORMATS  # noqa: F401 - re-exported
from remote.parsers.records import to_dict
from remote.report.sanitize import csv_cell, cut, json_text, md, shown, valid_unicode
from remote.report.schema import SCHEMA_VERSION
from remote.runner.failures import HostStatus

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_D = TypeVar("_D", bound="DataclassInstance")

CSV_COLUMNS = [
    "host", "address", "status", "error", "port", "holder", "listeners", "url", "queue", "pids",
    "controller_pid", "processes", "services", "product", "advice", "reservations", "iplisten", "notes",
    "evidence", "groups",
    # issue 13 (remote/analysis/binding.py)
    "bindable", "blockers", "excluded_ranges", "tls", "iis_site", "iis_site_id", "app_pool", "shadowed_by",
]


def host_to_dict(r: HostReport) -> dict[str, Any]:
    d: dict[str, Any] = to_dict(r)
    return d


def host_from_dict(d: dict[str, Any]) -> HostReport:
    """Inverse of ``host_to_dict`` (for merge / resume); unknown keys are ignored."""

    def build(cls: type[_D], data: dict[str, Any]) -> _D:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    ports = []
    for p in d.get("ports") or []:
        pv = build(PortVerdict, {**p, "listeners": [], "registrations": [], "reservations": []})
        pv.listeners = [build(Listener, x) for x in p.get("listeners") or []]
        pv.registrations = [build(Registration, x) for x in p.get("registrations") or []]
        pv.reservations = [build(ReservationView, x) for x in p.get("reservations") or []]
        pv.holder = _member(Holder, pv.holder)
        pv.holders = [_member(Holder, h) for h in pv.holders]
        ports.append(pv)
    r = build(HostReport, {**d, "ports": []})
    r.status = _member(HostStatus, r.status)
    r.ports = ports
    return r


def _member(enum: Any, value: Any) -> Any:
    """The enum member with this value; a value port80 does not know stays as it was read."""
    try:
        return enum(value)
    except ValueError:
        return value


def summarize(reports: list[HostReport]) -> dict[str, Any]:
    by_status = Counter(r.status for r in reports)
    by_holder: dict[str, Counter[Holder]] = {}
    by_product: Counter[str] = Counter()
    for r in reports:
        for p in r.ports:
            by_holder.setdefault(str(p.port), Counter())[p.holder] += 1
            for prod in dict.fromkeys(x.product for x in p.registrations if x.product):
                by_product[f"{prod} (port {p.port})"] += 1
            for label in dict.fromkeys(l.process or f"PID {l.pid}" for l in p.listeners if l.pid != 4):
                by_product[f"{label} (port {p.port})"] += 1
    held = sum(1 for r in reports if any(p.holder not in ("free", "unknown") for p in r.ports))
    return {
        "hosts": len(reports),
        "by_status": dict(sorted(by_status.items())),
        "hosts_with_a_port_held": held,
        "by_holder": {k: dict(sorted(v.items())) for k, v in sorted(by_holder.items(), key=lambda kv: int(kv[0]))},
        "by_product": dict(by_product.most_common()),
    }


def render(reports: list[HostReport], fmt: str, ports: Optional[list[int]] = None, show_all: bool = False) -> str:
    """The report in ``fmt``; always encodable (a lone surrogate left in host text becomes U+FFFD)
    and free of raw control characters (remote/report/sanitize.py)."""
    return valid_unicode(_render(reports, fmt, ports, show_all))[0]


def _render(reports: list[HostReport], fmt: str, ports: Optional[list[int]] = None, show_all: bool = False) -> str:
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    return renderer(reports, ports, show_all)


def _jsonl(reports: list[HostReport], ports: Optional[list[int]], show_all: bool) -> str:
    return "".join(json_text(json.dumps({"schema_version": SCHEMA_VERSION, **host_to_dict(r)}, ensure_ascii=False))
                   + "\n" for r in reports)


def _html(reports: list[HostReport], ports: Optional[list[int]], show_all: bool) -> str:
    from remote.report.html import render_html

    return render_html(reports, ports or sorted({p.port for r in reports for p in r.ports}))


def render_json(reports: list[HostReport], ports: Optional[list[int]] = None) -> str:
    doc = {"schema_version": SCHEMA_VERSION, "ports": ports or sorted({p.port for r in reports for p in r.ports}),
           "hosts": [host_to_dict(r) for r in reports], "summary": summarize(reports)}
    return json_text(dumps_indented(doc)) + "\n"  # json.dumps(doc, indent=2, ensure_ascii=False), faster


def csv_safe(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection guidance), with no raw
    control character (remote.report.sanitize.csv_cell)."""
    return csv_cell(value)


def _join(items: Iterable[Any]) -> str:
    return "; ".join(str(i) for i in items if i is not None and i != "")


def _bindable(value: Optional[bool], yes: str, no: str, unknown: str) -> str:
    return unknown if value is None else (yes if value else no)


def _blocker_text(b: dict[str, Any]) -> str:
    kind = b.get("kind")
    if kind == "listener":
        what = f"{b.get('address')} {b.get('process') or ''} ({b.get('pid')})"
    elif kind == "excluded_range":
        what = f"{b.get('start')}-{b.get('end')}"
    elif kind == "iplisten":
        what = ",".join(b.get("addresses") or [])
    else:
        what = str(b.get("address") or "")
    return f"{kind} {what} {b.get('evidence') or ''}".replace("  ", " ").strip()


def csv_rows(reports: list[HostReport]) -> Iterable[dict[str, str]]:
    for r in reports:
        for p in r.ports or [PortVerdict(port=0, holder=Holder.UNKNOWN)]:
            base = {
                "host": r.host, "address": r.address or "", "status": r.status, "error": r.error or "",
                "port": p.port, "holder": p.holder,
                "listeners": _join(f"{l.address}:{l.port} {l.process or ''} ({l.pid})".replace("  ", " ") for l in p.listeners),
                "reservations": _join(f"{x.url} [{', '.join(x.users)}]" for x in p.reservations),
                "iplisten": _join(p.iplisten), "notes": _join(p.notes), "groups": _join(r.groups),
                "bindable": _bindable(p.bindable, "true", "false", ""),
                "blockers": _join(_blocker_text(b) for b in p.blockers),
                "excluded_ranges": _join(f"{e['start']}-{e['end']}{'*' if e['administered'] else ''} ({e['ip']}) "
                                         f"{e['evidence']}" for e in p.excluded_ranges),
                "tls": _join(f"{t['binding']} {t['cert_hash']} [{t['cert_store'] or ''}] {t['app_id']} "
                             f"{t['product'] or ''} {t['evidence']}".replace("  ", " ") for t in p.tls),
            }
            regs: list[Optional[Registration]] = list(p.registrations) or [None]
            for reg in regs:
                row = dict(base)
                if reg is not None:
                    row.update(url=reg.url, queue=reg.queue or "", pids=_join(reg.pids),
                               controller_pid=reg.controller_pid if reg.controller_pid is not None else "",
                               processes=_join(reg.processes), services=_join(reg.services),
                               product=reg.product, advice=reg.advice, evidence=reg.evidence,
                               shadowed_by=reg.shadowed_by or "")
                    if reg.iis:
                        row.update(iis_site=reg.iis.get("site") or "", app_pool=reg.iis.get("app_pool") or "",
                                   iis_site_id="" if reg.iis.get("site_id") is None else reg.iis["site_id"])
                else:
                    procs = [l for l in p.listeners if l.pid != 4]
                    if procs:
                        row.update(pids=_join(dict.fromkeys(l.pid for l in procs)),
                                   processes=_join(dict.fromkeys(l.process or "" for l in procs)),
                                   evidence=_join(l.evidence for l in procs))
                yield {k: csv_safe(row.get(k, "")) for k in CSV_COLUMNS}


def render_csv(reports: list[HostReport]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    w.writeheader()
    for row in csv_rows(reports):
        w.writerow(row)
    return buf.getvalue()


def _who(p: PortVerdict) -> tuple[str, str]:
    """(who, pids) in a few words for the table: products with their services, user-mode processes."""
    who, pids = [], []
    for reg in p.registrations:
        label = reg.product + (f" [{','.join(reg.services)}]" if reg.services and reg.product_key in ("self-hosted", "unknown") else "")
        if label and label not in who:
            who.append(label)
        for pid in [*reg.pids, reg.controller_pid]:
            if pid is not None and str(pid) not in pids:
                pids.append(str(pid))
    if "http.sys" in p.holders and not p.registrations:
        who.append("HTTP.sys (registrant not visible)")
    for l in p.listeners:
        if l.pid != 4:
            label = l.process or f"PID {l.pid}"
            if label not in who:
                who.append(label)
            if str(l.pid) not in pids:
                pids.append(str(l.pid))
    return ", ".join(who), ",".join(pids)


_ID_RE = re.compile(r"\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b")
FIRST_HOSTS = 5  # hosts named per failure group (the rest is a count; --show-all lists them all)
TOP_PRODUCTS = 8  # products on the summary line (the rest is a count; JSON/CSV/HTML have them all)


def failure_groups(reports: list[HostReport]) -> list[tuple[str, str, list[str]]]:
    """(class, message, hosts) of the hosts not fully scanned, grouped by class and message (ids such as a
    ShellId GUID do not split a group), biggest group first."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in reports:
        if r.status != "ok" and r.error:
            msg = " ".join(r.error.split())
            groups.setdefault((r.status, _ID_RE.sub("<id>", msg)), []).append(r.host)
    return [(k[0], k[1], v) for k, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def render_table(reports: list[HostReport], tablefmt: str = "simple", show_all: bool = False) -> str:
    """One row per (host, port); fits 120 columns (long cells are cut with an ellipsis). Every piece
    of host text is shown escaped (remote/report/sanitize.py); in Markdown also escaped by its rules.
    Below it, the hosts not fully scanned grouped by class and message (every host with ``show_all``),
    and the summary."""
    markdown = tablefmt == "github"
    esc = md if markdown else shown

    def cell(text: Any, width: int) -> str:
        return esc(cut(text, width))

    rows = []
    for r in reports:
        if r.status in ("ok", "partial"):
            for p in r.ports:
                who, pids = _who(p)
                urls = ", ".join(reg.url for reg in p.registrations)
                rows.append([cell(r.host, 16), esc(r.status), p.port, esc(p.holder),
                             _bindable(p.bindable, "yes", "no", "?"), cell(who, 26), cell(pids, 10), cell(urls, 18)])
        else:
            for p in r.ports:
                rows.append([cell(r.host, 16), esc(r.status), p.port, "unknown", "?", esc("(not scanned, see below)"),
                             "", ""])
    table = tabulate(rows, headers=["HOST", "STATUS", "PORT", "HOLDER", "BINDABLE", "WHO", "PIDS", "URLS"],
                     tablefmt=tablefmt, disable_numparse=True)
    s = summarize(reports)
    lines = [table, ""]
    status = ", ".join(f"{esc(k)} {v}" for k, v in s["by_status"].items())
    failed = [r for r in reports if r.status not in ("ok",) and r.error]
    if failed and show_all:
        lines.append("Hosts not fully scanned:")
        for r in failed:
            lines.extend(textwrap.wrap(esc(f"{shown(r.host)}: {shown(r.status)}: {shown(r.error)}"), width=120,
                                       initial_indent="  ", subsequent_indent="    ", break_long_words=False))
        lines.append("")
    elif failed:
        lines.append(f"Hosts not fully scanned: {len(failed)} (by class and message; --show-all lists each host, "
                     "the CSV/JSON/HTML reports have them all):")
        for cls, msg, hosts in failure_groups(reports):
            names = ", ".join(shown(h) for h in hosts[:FIRST_HOSTS]) + (
                f", … (+{len(hosts) - FIRST_HOSTS} more)" if len(hosts) > FIRST_HOSTS else "")
            lines.append(esc(cut(f"  {shown(cls)} ×{len(hosts)}: {shown(msg)}", 120)))
            lines.append(esc(cut(f"    {names}", 120)))
        lines.append("")
    lines.append(f"{s['hosts']} hosts ({status}); {s['hosts_with_a_port_held']} with a requested port held.")
    for port, counts in s["by_holder"].items():
        lines.append(f"port {port}: " + ", ".join(f"{esc(k)} {v}" for k, v in counts.items()))
    if s["by_product"]:
        items = list(s["by_product"].items())
        text = "by product: " + "; ".join(f"{esc(k)} {v}" for k, v in items[:TOP_PRODUCTS])
        if len(items) > TOP_PRODUCTS:
            text += f"; … {len(items) - TOP_PRODUCTS} more"
        lines.extend(textwrap.wrap(text, width=120, subsequent_indent="  ", break_long_words=False))
    return "\n".join(lines) + "\n"


# One renderer per format: (reports, ports, show_all) -> text. A new format is a row here and its name in
# remote/report/formats.py (which the CLI reads before loading this module); a test keeps the two equal.
RENDERERS: dict[str, Callable[[list[HostReport], Optional[list[int]], bool], str]] = {
    "table": lambda reports, ports, show_all: render_table(reports, "simple", show_all),
    "csv": lambda reports, ports, show_all: render_csv(reports),
    "json": lambda reports, ports, show_all: render_json(reports, ports),
    "jsonl": _jsonl,
    "markdown": lambda reports, ports, show_all: render_table(reports, "github", show_all),
    "html": _html,
}
