"""``port80 explain``: one host and one port in plain sentences. Pure: a host report (and its bundle's
texts, for the fix planner's facts) in, text out.

What it says, in order: who holds the port (the same holder and the same names as the fleet report),
whether a new process can bind ``0.0.0.0:PORT`` now, the evidence lines, why (HTTP.sys vs a process,
registration vs reservation, IIS site and app pool, HTTP.sys precedence, excluded ranges, certificate
bindings, the IP listen list), and the ways to free it — each with the exact command and the
``port80 fix`` strategy that would run it (or why port80 will not, and what to run by hand).
"""

from __future__ import annotations

from typing import Optional

from remote.analysis import knowledge
from remote.analysis.verdicts import HostReport, PortVerdict
from remote.parsers.common import is_ip
from remote.runner.failures import FAILED
from remote.report.render import _who

HTTP_SYS_PID = 4


def _yesno(b: Optional[bool]) -> str:
    return {True: "yes", False: "no", None: "cannot tell"}[b]


def headline(report: HostReport, v: PortVerdict) -> str:
    who, pids = _who(v)
    if v.holder == "free":
        return f"{report.host}, port {v.port}: nothing listens on it (holder: free)."
    if v.holder == "unknown":
        why = "; ".join(v.notes) if v.notes else "the evidence needed is missing"
        return f"{report.host}, port {v.port}: cannot tell who holds it (holder: unknown): {why}."
    via = {"http.sys": "HTTP.sys (PID 4, the kernel HTTP listener) on behalf of ",
           "process": "a user-mode process: ",
           "http.sys+process": "HTTP.sys and a user-mode process: "}.get(v.holder, "")
    return f"{report.host}, port {v.port}: held by {via}{who or 'an unidentified registrant'} (holder: {v.holder}" + (
        f"; PIDs {pids})." if pids else ").")


def explain(report: HostReport, port: int, texts: Optional[dict[str, Optional[str]]] = None) -> str:
    lines: list[str] = []
    if report.status in FAILED:
        lines.append(f"{report.host}, port {port}: not scanned ({report.status}): {report.error or 'no evidence'}.")
        lines.append("Nothing can be said about the port without the host's evidence; rerun the scan "
                     f"(port80 scan -i INVENTORY --limit {report.host}).")
        return "\n".join(lines) + "\n"
    v = next((p for p in report.ports if p.port == port), None)
    if v is None:
        return f"{report.host}: no verdict for port {port} in this report.\n"
    lines.append(headline(report, v))
    lines.append(f"Can a new process bind 0.0.0.0:{port} now? {_yesno(v.bindable)} (bindable: "
                 f"{'null' if v.bindable is None else str(v.bindable).lower()})"
                 + (" — the listener table or the excluded port ranges were not collected." if v.bindable is None else "."))
    if report.status == "partial" and report.error:
        lines.append(f"The scan was partial: {report.error.rstrip('.')}.")
    lines.append("")
    lines.append("Evidence:")
    lines.extend(_evidence(v) or ["  (no line of the evidence mentions this port)"])
    lines.append("")
    lines.append("Why:")
    lines.extend(f"  - {s}" for s in _why(v))
    lines.append("")
    lines.append("Ways to free it:")
    ways = _ways(report, v, texts)
    if not ways:
        lines.append("  (nothing to free: nothing stands in the way of a bind)")
    for i, (what, command, consequence) in enumerate(ways, 1):
        lines.append(f"  {i}. {what}")
        lines.append(f"     command: {command}")
        lines.append(f"     consequence: {consequence}")
    return "\n".join(lines) + "\n"


# --- evidence ----------------------------------------------------------------------------------------


def _evidence(v: PortVerdict) -> list[str]:
    out = []
    for l in v.listeners:
        owner = f"{l.process} (PID {l.pid})" if l.process else f"PID {l.pid}"
        out.append(f"  {l.evidence}: TCP {l.address}:{l.port} LISTENING, {owner}")
    for r in v.registrations:
        who = ", ".join(r.processes) or "no process attached"
        svc = f"; services {', '.join(r.services)}" if r.services else ""
        out.append(f"  {r.evidence}: registration {r.url} in request queue {r.queue or '(not linked)'}: {who}{svc}"
                   f" -> {r.product}")
    for x in v.reservations:
        out.append(f"  {x.evidence}: reservation {x.url} for {', '.join(x.users) or 'nobody'}")
    for t in v.tls:
        out.append(f"  {t['evidence']}: certificate binding {t['binding']}: hash {t['cert_hash']}, store "
                   f"{t['cert_store'] or '(null)'}, application ID {t['app_id']} -> {t['product'] or 'product unknown'}")
    for e in v.excluded_ranges:
        out.append(f"  {e['evidence']}: excluded {e['protocol']} range {e['start']}-{e['end']} ({e['ip']})"
                   + (" *administered" if e["administered"] else ""))
    for b in v.blockers:
        if b["kind"] == "iplisten":
            out.append(f"  {b['evidence']}: IP listen list {', '.join(b['addresses'])}")
    return out


# --- why ---------------------------------------------------------------------------------------------


def _why(v: PortVerdict) -> list[str]:
    out: list[str] = []
    kernel = [l for l in v.listeners if l.pid == HTTP_SYS_PID]
    if "http.sys" in v.holders:
        if v.registrations:
            out.append("PID 4 is not the owner: HTTP.sys accepts the connections in the kernel and hands each request "
                       "to the request queue of the registration that matches its URL; the process behind that queue "
                       "(or, for an idle IIS app pool, its controller WAS) is who holds the port.")
        else:
            out.append("PID 4 (HTTP.sys) listens, but no registration on this port is visible, so the registrant "
                       "cannot be named (servicestate missing, not elevated, or truncated).")
    for r in v.registrations:
        if r.iis:
            i = r.iis
            site = f"IIS site \"{i['site']}\"" if i.get("site") else "an IIS site"
            sid = f" ID {i['site_id']} (the W3SVC{i['site_id']} of its URL group's log directory)" \
                if i.get("site_id") is not None else ""
            unnamed = "" if i.get("site") else "; the site's name is not in the evidence (no IIS site listing)"
            out.append(f"{r.url} belongs to {site}{sid}, app pool {i.get('app_pool') or '(unknown)'} "
                       f"(an IIS request queue is named after its app pool){unnamed}.")
        if r.shadowed_by:
            out.append(f"{r.url} never receives a request: HTTP.sys routes to the strong wildcard {r.shadowed_by} "
                       "first (precedence: + before an explicit host before *; within a class the longest path "
                       "wins), yet it still keeps the port registered.")
        if not r.pids and r.controller_pid is not None:
            out.append(f"request queue {r.queue} has no worker process (idle app pool); its controller "
                       f"{r.processes[-1].replace(' controller', '') if r.processes else r.controller_pid} holds it.")
    for x in v.reservations:
        out.append(f"{x.url} is a reservation (netsh http show urlacl): it allows {', '.join(x.users) or 'nobody'} "
                   "to register that URL; a reservation never holds a port by itself, a registration does.")
    for l in v.listeners:
        if l.pid != HTTP_SYS_PID:
            out.append(f"{l.process or 'PID ' + str(l.pid)} (PID {l.pid}) has its own socket on {l.address}:{l.port}.")
    for e in v.excluded_ranges:
        if e["ip"] != "ipv4":
            out.append(f"the IPv6 excluded range {e['start']}-{e['end']} covers [::]:{v.port} (not 0.0.0.0).")
        elif e["administered"]:
            out.append(f"{v.port} is in the administered exclusion {e['start']}-{e['end']} (*): it is kept out of "
                       "dynamic port allocation, but an explicit bind still works.")
        else:
            out.append(f"{v.port} is inside the excluded range {e['start']}-{e['end']}, reserved by the system "
                       "(Hyper-V, WinNAT/HNS, WSL or Docker): a bind fails with \"An attempt was made to access a "
                       "socket in a way forbidden by its access permissions\" (WSAEACCES) although nothing listens.")
    for t in v.tls:
        out.append(f"certificate binding {t['binding']} tells HTTP.sys which certificate to present on this port "
                   f"({t['product'] or 'product unknown'}); it does not hold the port itself — a registration does.")
    for b in v.blockers:
        if b["kind"] == "iplisten":
            out.append(f"the IP listen list ({', '.join(b['addresses'])}) makes HTTP.sys bind only those addresses; "
                       f"a bind of 0.0.0.0:{v.port} still conflicts with them, a bind of another address does not.")
    if v.holder == "free" and not v.blockers:
        out.append("no listener on the port in the listener table and no HTTP.sys registration on it.")
    if not kernel and v.registrations:
        out.append("netstat shows no PID 4 listener on this port although HTTP.sys has a registration on it.")
    return out or ["no reason found in the evidence."]


# --- ways to free it ----------------------------------------------------------------------------------


def _ways(report: HostReport, v: PortVerdict, texts: Optional[dict[str, Optional[str]]]) -> list[tuple[str, str, str]]:
    from remote.remediation.plan import facts_from_texts, plan_host

    ways: list[tuple[str, str, str]] = []
    host, port = report.host, v.port
    if "http.sys" in v.holders:
        facts = facts_from_texts(texts or {})
        plan = plan_host(report, facts, port=port, strategy="disable-services")
        fix = f"port80 fix -i INVENTORY --limit {host} --port {port} --strategy disable-services"
        if plan.status == "planned":
            cmds = "; ".join(a.command for a in plan.actions)
            names = ", ".join(dict.fromkeys(a.target for a in plan.actions))
            also = "; ".join(f"stopping {s} also stops {', '.join(d)} (they need it; restarted by undo)"
                             for s, d in plan.stops_with.items() if d)
            ways.append((f"stop and disable the service(s) behind the registration ({fix} --apply; undo with "
                         "port80 fix --undo JOURNAL)", cmds,
                         f"{names} stop now and stay stopped after a reboot; whatever they serve is down "
                         "(on every port they registered)." + (f" {also}." if also else "")))
        elif plan.manual:
            ways.append((f"by hand ({fix} refuses: {plan.reason.rstrip(':')})", plan.manual,
                         "the listener on this port goes away; the service itself keeps running."))
        else:
            ways.append((f"stop the registrant by hand ({fix} plans nothing: {plan.reason})",
                         _manual_commands(v), "the registration goes away with its process."))
        addr = report.address if report.address and is_ip(report.address) else "ADDRESS"
        ways.append((f"narrow HTTP.sys to chosen addresses (port80 fix -i INVENTORY --limit {host} --strategy iplisten "
                     f"--iplisten {host}={addr} --apply)",
                     f"netsh.exe http add iplisten ipaddress={addr}",
                     "HTTP.sys reads the list when the HTTP service starts: restart it (this restarts WinRM too) "
                     "or reboot; afterwards every HTTP.sys service (WinRM included) answers only on the listed "
                     f"addresses, and a process can bind {port} on another address (not 0.0.0.0)."))
        for key, label, advice in _product_advice(v):  # noqa: B007
            ways.append((f"the product's own way ({label}; no port80 fix strategy)", advice,
                         "the product keeps running, without this port (as its documentation describes)."))
    for l in {l.pid: l for l in reversed(v.listeners)}.values():
        if l.pid != HTTP_SYS_PID and l.pid is not None:
            ways.append((f"stop {l.process or 'the process'} (PID {l.pid}) or move it to another port "
                         "(by hand: port80 fix does not kill processes)",
                         f"Stop-Process -Id {l.pid}", f"{l.process or 'the process'} stops serving; if a service "
                         "or scheduled task starts it, it comes back unless that is disabled too."))
    for e in v.excluded_ranges:
        if e["ip"] != "ipv4":
            continue
        if e["administered"]:
            ways.append(("remove the administered exclusion (by hand; no port80 fix strategy)",
                         f"netsh int ipv4 delete excludedportrange protocol=tcp startport={e['start']} "
                         f"numberofports={e['end'] - e['start'] + 1}",
                         "the ports return to the dynamic pool; nothing else changes."))
        else:
            ways.append(("make the system release the range: restart WinNAT, which reserves such blocks again when it "
                         "starts, usually elsewhere (by hand; no port80 fix strategy)",
                         "net stop winnat; net start winnat",
                         "NAT for Hyper-V/WSL/Docker containers stops for a moment; if the range comes back, reserve "
                         f"{port} first (below) or disable the owner (Hyper-V, WSL, Docker)."))
            ways.append(("reserve the port for yourself before WinNAT starts (an administered exclusion can still be "
                         "bound explicitly)",
                         f"net stop winnat; netsh int ipv4 add excludedportrange protocol=tcp startport={port} "
                         "numberofports=1 store=persistent; net start winnat",
                         "the system never hands out this port again; your process binds it explicitly."))
    for t in v.tls:
        key = {"ipport": "ipport", "hostnameport": "hostnameport", "ccs": "ccs"}.get(t.get("kind") or "", "ipport")
        ways.append((f"change or remove the certificate binding {t['binding']} (by hand; no port80 fix strategy)",
                     f"netsh http delete sslcert {key}={t['binding']}   (or netsh http update sslcert {key}="
                     f"{t['binding']} certhash=NEWHASH appid={t['app_id'] or '{APPID}'})",
                     f"HTTPS clients of {t['product'] or 'the product'} on {t['binding']} fail until a binding is "
                     "added back; the port stays held while a registration remains."))
    return ways


def _product_advice(v: PortVerdict) -> list[tuple[str, str, str]]:
    seen, out = set(), []
    for r in v.registrations:
        prod = knowledge.product(r.product_key)
        if prod.key in seen or prod.key in ("self-hosted", "unknown") or not prod.advice:
            continue
        seen.add(prod.key)
        out.append((prod.key, prod.label, prod.advice))
    return out


def _manual_commands(v: PortVerdict) -> str:
    svcs = list(dict.fromkeys(s for r in v.registrations for s in r.services))
    if svcs:
        return "; ".join(f"Stop-Service -Name {s}" for s in svcs)
    pids = list(dict.fromkeys(p for r in v.registrations for p in r.pids))
    if pids:
        return "; ".join(f"Stop-Process -Id {p}" for p in pids)
    return "netsh http show servicestate verbose=yes   (find the registrant first)"


