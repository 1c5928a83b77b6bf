"""Drift between runs: the pure diff on hand-made records, and end to end on the lab's demo fleet:
scan, `port80 fix --apply --yes` on one host, scan again -> `port80 diff` lists exactly that host's
change and `scan --fail-on-drift` exits 5."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from remote.analysis.verdicts import HostReport, Listener, PortVerdict, Registration, failed_host
from remote.audit.drift import diff, render
from remote.cli.app import app
from remote.lab.fixture import lab_fleet

TIMEOUT = "30"


def host(name: str, holder: str = "http.sys", urls=(("HTTP://+:80/X/", "IIS (W3SVC/WAS)"),), procs=(),
         status: str = "ok") -> HostReport:
    regs = [Registration(url=u, queue="q", product=p, evidence="servicestate.txt:5") for u, p in urls]
    listeners = [Listener("0.0.0.0", 80, 900 + i, p, evidence=f"netstat.txt:{i + 3}") for i, p in enumerate(procs)]
    return HostReport(host=name, status=status, ports=[PortVerdict(port=80, holder=holder, registrations=regs,
                                                                   listeners=listeners)])


def test_diff_kinds():
    old = [host("a"), host("b"), host("c"), host("gone"), host("d", "process", urls=(), procs=("nginx.exe",))]
    new = [host("a"),
           host("b", "free", urls=()),
           host("c", urls=(("HTTP://+:80/X/", "IIS (W3SVC/WAS)"), ("HTTP://+:80/Y/", "SQL Server Reporting Services"))),
           host("d", "process", urls=(), procs=("httpd.exe",)),
           host("new")]
    got = [(c.host, c.port, c.change, c.before, c.after) for c in diff(old, new)]
    assert got == [
        ("b", 80, "holder", "http.sys", "free"),
        ("b", 80, "registration-removed", "HTTP://+:80/X/ (IIS (W3SVC/WAS))", ""),
        ("b", 80, "product-removed", "IIS (W3SVC/WAS)", ""),
        ("c", 80, "registration-added", "", "HTTP://+:80/Y/ (SQL Server Reporting Services)"),
        ("c", 80, "product-added", "", "SQL Server Reporting Services"),
        ("d", 80, "process-removed", "nginx.exe", ""),
        ("d", 80, "process-added", "", "httpd.exe"),
        ("new", None, "host-added", "", "ok (80: http.sys)"),
        ("gone", None, "host-removed", "ok", ""),
    ]
    assert diff(new, new) == []


def test_a_host_that_was_not_scanned_changes_status_only():
    old = [host("a"), failed_host("b", "auth", "authentication failed", [80])]
    new = [failed_host("a", "timeout", "no answer", [80]), host("b")]
    got = [(c.host, c.change, c.before, c.after) for c in diff(old, new)]
    assert got == [("a", "status", "ok", "timeout"), ("b", "status", "auth", "ok")]


def test_formats_are_safe():
    changes = diff([host("=cmd|calc", urls=())], [host("=cmd|calc")])
    rows = list(csv.reader(io.StringIO(render(changes, "csv"))))
    assert rows[0] == ["host", "port", "change", "before", "after", "evidence"]
    assert all(r[0].startswith("'=") for r in rows[1:])
    md = render(changes, "markdown", "run 1", "run 2")
    assert "\\|" in md and "=cmd|calc" not in md
    doc = json.loads(render(changes, "json", "run 1", "run 2"))
    assert doc["schema_version"] == 1 and doc["summary"]["hosts_changed"] == 1


def scan(inv: Path, env: dict, db: Path, ev: Path, *extra: str):
    return CliRunner().invoke(app, ["scan", "-i", str(inv), "--limit", "!faulty-hang", "--timeout", TIMEOUT,
                                    "--evidence-dir", str(ev), "--db", str(db), *extra], env=env)


def test_fix_one_host_then_diff_lists_exactly_its_change(tmp_path):
    """The bar of issue 14 (the hung demo host is left out: it only costs a deadline per scan)."""
    inv, db = tmp_path / "inv.ini", tmp_path / "history.sqlite"
    with lab_fleet(inventory=inv, workdir=tmp_path / "lab") as fleet:
        env = {"PORT80_PASSWORD": fleet.password}
        first = scan(inv, env, db, tmp_path / "ev1")
        assert first.exit_code == 1, first.output  # the demo's auth and WSMan-fault hosts
        same = scan(inv, env, db, tmp_path / "ev2", "--fail-on-drift")
        assert same.exit_code == 1, same.output  # nothing changed: no drift, the failed hosts' exit 1
        assert "nothing changed since run 1" in same.stderr
        fix = CliRunner().invoke(app, ["fix", "-i", str(inv), "--limit", "branchcache", "--strategy",
                                       "disable-services", "--apply", "--yes", "--timeout", TIMEOUT,
                                       "--evidence-dir", str(tmp_path / "fix")], env=env)
        assert fix.exit_code == 0, fix.output
        after = scan(inv, env, db, tmp_path / "ev3", "--fail-on-drift")
    assert after.exit_code == 5, after.output
    assert "branchcache" in after.stderr
    res = CliRunner().invoke(app, ["diff", "--db", str(db), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["from"].startswith("run 2 ") and doc["to"].startswith("run 3 ")
    got = [(c["host"], c["port"], c["change"], c["before"], c["after"]) for c in doc["changes"]]
    assert got == [
        ("branchcache", 80, "holder", "http.sys", "free"),
        ("branchcache", 80, "registration-removed",
         "HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/ (BranchCache (PeerDistSvc))", ""),
        ("branchcache", 80, "product-removed", "BranchCache (PeerDistSvc)", ""),
    ]
    assert doc["changes"][1]["evidence"].startswith("servicestate.txt:")
    # the same from the two scan folders, and from run ids; table and Markdown name the host
    folders = CliRunner().invoke(app, ["diff", str(tmp_path / "ev1"), str(tmp_path / "ev3"), "-f", "json"])
    assert [c["change"] for c in json.loads(folders.stdout)["changes"]] == [c[2] for c in got]
    table = CliRunner().invoke(app, ["diff", "1", "3", "--db", str(db), "--fail-on-drift"])
    assert table.exit_code == 5 and "branchcache" in table.stdout and "3 changes on 1 hosts" in table.stdout
    # the HTML report with a drift section
    page = tmp_path / "r.html"
    html = CliRunner().invoke(app, ["report", "3", "--db", str(db), "--previous", "2", "--html", "-o", str(page)])
    assert html.exit_code == 0, html.output
    assert 'id="drift"' in page.read_text() and "product-removed" in page.read_text()
    hist = CliRunner().invoke(app, ["history", "--db", str(db), "--host", "branchcache"])
    assert hist.exit_code == 0 and "free" in hist.stdout and "http.sys" in hist.stdout
