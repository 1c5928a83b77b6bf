"""The fleet report as one self-contained HTML page. Pure: host records in, text out.

Nothing is fetched: CSS, JavaScript and the SVG charts are inline, and a Content-Security-Policy
forbids any network access. Every string that comes from a host (names, URLs, services, errors,
evidence) goes through ``html.escape``; the script never builds markup from data (it only sorts
and hides rows and reads ``textContent``).

Sections: a summary with charts (hosts by holder per port, by product, failures by class, per
inventory group), drift and policy sections when given, a sortable and filterable host table (one
row per host), and per host a detail block with every listener, registration and reservation and
their evidence lines.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime, timezone
from html import escape
from typing import TYPE_CHECKING, Any, Optional

from remote.runner.failures import FAILED
from remote.report.render import failure_groups, summarize
from remote.report.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from remote.analysis.verdicts import HostReport, PortVerdict
    from remote.audit.drift import Change
    from remote.audit.policy import Violation

PALETTE = ("#2f6db5", "#d9822b", "#3c9d5d", "#b8433d", "#7b5ea7", "#8c6d46", "#c9559b", "#6b7b8c", "#a3a13a",
           "#3aa3a1")


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dde5; --bg:#f6f7f9; --ok:#3c9d5d; --bad:#b8433d; --warn:#d9822b; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0;
       background: var(--bg); }
header { background: #1d2330; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 4px 0 0; color: #c5cad6; }
main { padding: 16px 24px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin: 0 0 16px; }
h2 { font-size: 16px; margin: 0 0 10px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.card b { display: block; font-size: 22px; } .card span { color: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
.chart h3 { font-size: 13px; margin: 0 0 4px; color: var(--muted); font-weight: 600; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2330; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef0f4; position: sticky; top: 0; }
th.sortable { cursor: pointer; user-select: none; } th.sortable::after { content: " \\2195"; color: #99a; }
th[aria-sort="ascending"]::after { content: " \\2191"; } th[aria-sort="descending"]::after { content: " \\2193"; }
td.wrap { overflow-wrap: break-word; } td.url { overflow-wrap: anywhere; min-width: 12em; }
.status-ok { color: var(--ok); font-weight: 600; } .status-partial { color: var(--warn); font-weight: 600; }
.status-failed { color: var(--bad); font-weight: 600; }
.tools { display: flex; gap: 10px; align-items: center; margin-bottom: 8px; flex-wrap: wrap; }
.tools input { padding: 5px 8px; min-width: 280px; border: 1px solid #aab; border-radius: 4px; }
.tools select { padding: 4px; }
.muted { color: var(--muted); }
details.host { border-top: 1px solid var(--line); padding: 6px 0; }
details.host summary { cursor: pointer; font-weight: 600; }
details.host table { margin: 6px 0 10px; font-size: 13px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f1f3f6; padding: 0 3px; }
.none { color: var(--muted); font-style: italic; }
"""

JS = """
(function () {
  var table = document.getElementById('hosts-table');
  var body = table.tBodies[0];
  var filter = document.getElementById('filter');
  var status = document.getElementById('status-filter');
  var shown = document.getElementById('shown-count');
  function apply() {
    var q = filter.value.trim().toLowerCase();
    var st = status.value;
    var n = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var ok = (!q || row.textContent.toLowerCase().indexOf(q) !== -1) &&
               (!st || row.getAttribute('data-status') === st);
      row.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
  }
  filter.addEventListener('input', apply);
  status.addEventListener('change', apply);
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.classList.add('sortable');
    th.addEventListener('click', function () {
      var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
        var nx = parseFloat(x), ny = parseFloat(y);
        if (!isNaN(nx) && !isNaN(ny) && String(nx) === x && String(ny) === y) { return (nx - ny) * dir; }
        return x.localeCompare(y, undefined, {numeric: true, sensitivity: 'base'}) * dir;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.addEventListener('click', function (ev) {
    var a = ev.target.closest ? ev.target.closest('a[href^="#host-"]') : null;
    if (a) { var d = document.getElementById(a.getAttribute('href').slice(1)); if (d) { d.open = true; } }
  });
  apply();
})();
"""


def bar_chart(title: str, counts: list[tuple[str, int]], chart_id: str, width: int = 420) -> str:
    """A horizontal bar chart as inline SVG (labels escaped)."""
    if not counts:
        return (f'<div class="chart" id="{e(chart_id)}"><h3>{e(title)}</h3><p class="none">nothing to show</p>'
                '</div>')
    counts = counts[:12]
    top = max(v for _, v in counts) or 1
    row, label_w, bar_w = 22, 200, width - 200 - 40
    height = row * len(counts) + 4
    parts = [f'<div class="chart" id="{e(chart_id)}"><h3>{e(title)}</h3>'
             f'<svg role="img" aria-label="{e(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value) in enumerate(counts):
        y = i * row + 2
        w = max(2, round(bar_w * value / top))
        short = label if len(label) <= 27 else label[:26] + "…"
        parts.append(f'<g><title>{e(label)}: {value}</title>'
                     f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{e(short)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row - 6}" rx="2" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"></rect>'
                     f'<text x="{label_w + w + 4}" y="{y + 15}">{value}</text></g>')
    parts.append("</svg></div>")
    return "".join(parts)


def _status_class(status: str) -> str:
    return "status-ok" if status == "ok" else "status-partial" if status == "partial" else "status-failed"


def _products(p: "PortVerdict") -> list[str]:
    out = [g.product for g in p.registrations if g.product]
    out += [ls.process or f"PID {ls.pid}" for ls in p.listeners if ls.pid != 4]
    return list(dict.fromkeys(out))


def _charts(reports: list["HostReport"]) -> str:
    s = summarize(reports)
    charts = []
    for port, counts in s["by_holder"].items():
        charts.append(bar_chart(f"Hosts by holder, port {port}", sorted(counts.items(), key=lambda kv: -kv[1]),
                                f"chart-holder-{port}"))
    charts.append(bar_chart("Hosts by product", list(s["by_product"].items()), "chart-product"))
    failures = Counter(str(r.status) for r in reports if r.status != "ok")
    charts.append(bar_chart("Hosts not fully scanned, by class", failures.most_common(), "chart-failures"))
    groups: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for r in reports:
        for g in r.groups or ["(no group)"]:
            groups[g] += 1
            if any(p.holder not in ("free", "unknown") for p in r.ports):
                held[g] += 1
    charts.append(bar_chart("Hosts with a port held, per inventory group",
                            sorted(((g, held[g]) for g in groups), key=lambda kv: (-kv[1], kv[0])), "chart-groups"))
    return '<div class="charts">' + "".join(charts) + "</div>"


def _kv_table(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="wrap">{e(c)}</td>' for c in r) + "</tr>" for r in rows)
    return f'<table class="{e(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _host_detail(i: int, r: "HostReport", violations: list["Violation"], changes: list["Change"]) -> str:
    out = [f'<details class="host" id="host-{i}"><summary>{e(r.host)} '
           f'<span class="{_status_class(r.status)}">{e(r.status)}</span></summary>']
    facts = [("address", r.address), ("groups", ", ".join(r.groups)), ("OS", r.os_version),
             ("collected", r.collected_at), ("evidence", r.evidence_dir), ("error", r.error)]
    out.append("<p>" + " · ".join(f'<span class="muted">{e(k)}:</span> {e(v)}' for k, v in facts if v) + "</p>")
    for p in r.ports:
        out.append(f"<h4>Port {e(p.port)}: {e(p.holder)}</h4>")
        out.append(_kv_table(["listener", "PID", "process", "evidence"],
                             [[f"{ls.address}:{ls.port}", ls.pid, ls.process, ls.evidence] for ls in p.listeners]))
        out.append(_kv_table(["registration", "queue", "PIDs", "processes", "services", "product", "advice",
                              "evidence"],
                             [[g.url, g.queue, ", ".join(map(str, g.pids)), ", ".join(g.processes),
                               ", ".join(g.services), g.product, g.advice, g.evidence] for g in p.registrations]))
        out.append(_kv_table(["reservation", "users", "product", "evidence"],
                             [[x.url, ", ".join(x.users), x.product, x.evidence] for x in p.reservations]))
        if p.iplisten:
            out.append(f"<p>IP listen list: {e(', '.join(p.iplisten))}</p>")
        if p.notes:
            out.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in p.notes) + "</ul>")
    mine = [v for v in violations if v.host == r.host]
    if mine:
        out.append("<h4>Policy violations</h4>" + _kv_table(
            ["port", "rule", "violation", "evidence"], [[v.port, v.rule, v.message, v.evidence] for v in mine]))
    mine_c = [c for c in changes if c.host == r.host]
    if mine_c:
        out.append("<h4>Changes</h4>" + _kv_table(
            ["port", "change", "before", "after"],
            [["" if c.port is None else c.port, c.change, c.before, c.after] for c in mine_c]))
    if r.warnings:
        out.append("<p class=\"muted\">warnings:</p><ul>" + "".join(f"<li>{e(w)}</li>" for w in r.warnings) + "</ul>")
    out.append("</details>")
    return "".join(out)


def render_html(reports: list["HostReport"], ports: Optional[list[int]] = None, *, title: str = "port80 fleet report",
                changes: Optional[list["Change"]] = None, diff_from: str = "", violations: Optional[list["Violation"]] = None,
                policy: Optional[str] = None, generated_at: Optional[str] = None) -> str:
    ports = ports or sorted({p.port for r in reports for p in r.ports})
    if generated_at is None:  # SOURCE_DATE_EPOCH (reproducible-builds.org) pins it, e.g. for a stable screenshot
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch.isdigit() else datetime.now(timezone.utc)
        generated_at = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    s = summarize(reports)
    violations = violations or []
    change_list = changes or []
    failed = sum(1 for r in reports if r.status in FAILED)
    partial = sum(1 for r in reports if r.status == "partial")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        "script-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="port80-schema-version" content="{SCHEMA_VERSION}">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{e(title)}</h1><p>ports {e(', '.join(map(str, ports)))} · {len(reports)} hosts · "
        f"generated {e(generated_at)} by port80</p></header><main>",
        '<section id="summary"><h2>Fleet summary</h2><div class="cards">',
        f'<div class="card"><b id="host-total">{len(reports)}</b><span>hosts</span></div>',
        f'<div class="card"><b>{s["hosts_with_a_port_held"]}</b><span>with a requested port held</span></div>',
        f'<div class="card"><b>{s["by_status"].get("ok", 0)}</b><span>fully scanned</span></div>',
        f'<div class="card"><b>{partial}</b><span>partial</span></div>',
        f'<div class="card"><b>{failed}</b><span>not scanned</span></div>',
    ]
    if violations or policy:
        out.append(f'<div class="card"><b>{len(violations)}</b><span>policy violations</span></div>')
    if changes is not None:
        out.append(f'<div class="card"><b>{len(change_list)}</b><span>changes since the previous run</span></div>')
    out.append("</div>" + _charts(reports))
    groups = failure_groups(reports)
    if groups:
        out.append("<h3>Hosts not fully scanned, by class and message</h3>" + _kv_table(
            ["class", "hosts", "message", "first hosts"],
            [[cls, len(hosts), msg, ", ".join(hosts[:5]) + (" …" if len(hosts) > 5 else "")]
             for cls, msg, hosts in groups]))
    out.append("</section>")
    if changes is not None:
        out.append(f'<section id="drift"><h2>Drift since {e(diff_from or "the previous run")}</h2>')
        out.append(_kv_table(["host", "port", "change", "before", "after", "evidence"],
                             [[c.host, "" if c.port is None else c.port, c.change, c.before, c.after, c.evidence]
                              for c in change_list]) or '<p class="none">nothing changed</p>')
        out.append("</section>")
    if policy is not None or violations:
        out.append(f'<section id="policy"><h2>Policy {e(policy or "")}</h2>')
        out.append(_kv_table(["host", "port", "rule", "violation", "evidence"],
                             [[v.host, v.port, v.rule, v.message, v.evidence] for v in violations])
                   or '<p class="none">no violation</p>')
        out.append("</section>")
    statuses = sorted({r.status for r in reports})
    out.append('<section id="hosts"><h2>Hosts</h2><div class="tools">'
               '<input id="filter" type="search" placeholder="filter: host, group, holder, product, URL…" '
               'aria-label="filter hosts">'
               '<select id="status-filter" aria-label="status"><option value="">any status</option>'
               + "".join(f'<option value="{e(x)}">{e(x)}</option>' for x in statuses)
               + f'</select><span class="muted">showing <b id="shown-count">{len(reports)}</b> of '
               f"{len(reports)} hosts · click a column to sort</span></div>")
    head = ["host", "groups", "status", "holder", "products", "URLs"]
    if policy is not None or violations:
        head.append("violations")
    if changes is not None:
        head.append("changes")
    head.append("error")
    out.append('<table id="hosts-table"><thead><tr>' + "".join(f"<th>{e(h)}</th>" for h in head)
               + "</tr></thead><tbody>")
    nviol = Counter(v.host for v in violations)
    nchg = Counter(c.host for c in change_list)
    for i, r in enumerate(reports):
        holder = "; ".join(f"{p.port}: {p.holder}" for p in r.ports)
        prods = "; ".join(x for p in r.ports for x in _products(p))
        urls = " ".join(g.url for p in r.ports for g in p.registrations)
        cells = [f'<td><a href="#host-{i}">{e(r.host)}</a></td>', f"<td>{e(', '.join(r.groups))}</td>",
                 f'<td class="{_status_class(r.status)}">{e(r.status)}</td>', f"<td>{e(holder)}</td>",
                 f"<td>{e(prods)}</td>", f'<td class="url">{e(urls)}</td>']
        if policy is not None or violations:
            cells.append(f"<td>{nviol.get(r.host, 0)}</td>")
        if changes is not None:
            cells.append(f"<td>{nchg.get(r.host, 0)}</td>")
        cells.append(f'<td class="wrap">{e(r.error or "")}</td>')
        out.append(f'<tr class="host-row" data-status="{e(r.status)}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></section>")
    out.append('<section id="details"><h2>Per host: listeners, registrations, reservations, evidence</h2>')
    out.extend(_host_detail(i, r, violations, change_list) for i, r in enumerate(reports))
    out.append("</section></main>")
    out.append(f"<script>{JS}</script></body></html>")
    return "\n".join(out) + "\n"
