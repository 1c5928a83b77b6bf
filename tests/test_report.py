"""Report renderings: every host in every format, formula-safe CSV, readable table."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from remote.analysis.verdicts import HostReport, Listener, PortVerdict, Registration, failed_host
from remote.report.sanitize import shown
from remote.report.render import csv_safe, host_from_dict, host_to_dict, render, summarize


def sample_reports() -> list[HostReport]:
    held = HostReport(host="web01", address="192.0.2.10", ports=[
        PortVerdict(port=80, holder="http.sys", holders=["http.sys"],
                    listeners=[Listener("0.0.0.0", 80, 4, "System", evidence="netstat.txt:5")],
                    registrations=[
                        Registration(url="HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/", queue="(unnamed)",
                                     pids=[2668], processes=["svchost.exe (2668)"], services=["PeerDistSvc"],
                                     product="BranchCache (PeerDistSvc)", advice="netsh branchcache set service mode=disabled",
                                     evidence="servicestate.txt:38"),
                        Registration(url="HTTP://+:80/ReportServer/", queue="(unnamed)", pids=[3000],
                                     product="SQL Server Reporting Services", advice="=cmd|' /C calc'!A0"),
                    ])])
    free = HostReport(host="=HYPERLINK(\"http://x\")", ports=[PortVerdict(port=80, holder="free")])
    dead = failed_host("db01", "unreachable", "connection refused (nothing listens on the WinRM port)", [80, 443])
    return [held, free, dead]


def test_csv_has_every_host_and_a_row_per_registration():
    text = render(sample_reports(), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    hosts = [r["host"] for r in rows]
    assert hosts.count("web01") == 2  # two registrations on port 80
    assert hosts.count("db01") == 2  # one row per requested port, even when failed
    assert any(h.startswith("'=HYPERLINK") for h in hosts)
    assert rows[0]["status"] == "ok"
    assert [r["status"] for r in rows if r["host"] == "db01"] == ["unreachable", "unreachable"]


def test_csv_cells_never_start_a_formula():
    text = render(sample_reports(), "csv")
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell


@given(st.text(max_size=40))
@settings(max_examples=200, deadline=None)
def test_csv_safe_property(s):
    out = csv_safe(s)
    assert not out.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert out.endswith(shown(s)) or s == ""
    assert not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f for c in out)


def test_json_round_trip_and_summary():
    reports = sample_reports()
    doc = json.loads(render(reports, "json", [80]))
    assert [h["host"] for h in doc["hosts"]] == [r.host for r in reports]
    assert doc["hosts"][2]["status"] == "unreachable"
    assert doc["hosts"][2]["ports"][0]["holder"] == "unknown"
    assert doc["summary"]["by_status"] == {"ok": 2, "unreachable": 1}
    assert doc["summary"]["by_holder"]["80"] == {"free": 1, "http.sys": 1, "unknown": 1}
    back = [host_from_dict(h) for h in doc["hosts"]]
    assert [host_to_dict(b) for b in back] == doc["hosts"]


def test_jsonl_one_host_per_line():
    lines = render(sample_reports(), "jsonl").splitlines()
    assert len(lines) == 3
    assert json.loads(lines[0])["host"] == "web01"


def test_table_fits_120_columns_and_lists_everyone():
    text = render(sample_reports(), "table")
    assert max(len(line) for line in text.splitlines()) <= 120
    for host in ("web01", "db01"):
        assert host in text
    assert "3 hosts" in text
    md = render(sample_reports(), "markdown")
    assert md.startswith("| HOST")


def test_summary_counts_products():
    s = summarize(sample_reports())
    assert s["by_product"]["BranchCache (PeerDistSvc) (port 80)"] == 1
    assert s["hosts_with_a_port_held"] == 1
