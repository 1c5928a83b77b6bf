"""End to end: `port80 scan` against the lab over real sockets, with every fault kind in one fleet.

The lab serves the shipped demo fleet cycled to 56 hosts; some hosts get a fault (on top of the demo
fleet's own faulty hosts). Checks: every host exactly once in CSV and JSON with the right class,
healthy verdicts equal to `port80 analyze` over the same bundles, the scan is read-only, and Ctrl-C
mid-scan leaves a valid partial result.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.analysis.verdicts import analyze_bundle
from remote.evidence.bundle import find_bundles, read_bundle
from remote.evidence.kinds import READ_ONLY_STATEMENTS
from remote.cli.app import app
from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir
from remote.lab.engine.host import LabHost

N_HOSTS = 56
INJECTED = {  # fault kind -> the class a real host in that state gets
    "refuse": ({"kind": "refuse"}, "unreachable"),
    "auth": ({"kind": "auth"}, "auth"),
    "hang": ({"kind": "hang"}, "timeout"),
    "hang_receive": ({"kind": "hang_receive"}, "timeout"),
    "slow": ({"kind": "slow", "seconds": 2}, "ok"),
    "latency": ({"kind": "latency", "ms": 40}, "ok"),
    "wsman_fault": ({"kind": "wsman_fault", "action": "Command", "code": 2150858843,
                     "message": "The request for the Windows Remote Shell with ShellId failed."}, "winrm"),
    "garbage": ({"kind": "garbage"}, "error"),
    "reset": ({"kind": "reset"}, "error"),
    "http500": ({"kind": "http500"}, "winrm"),
}
# the statements a scan may send (canonical keys, lower case): the evidence-kind registry's read-only ones
ALLOWED = {s.lower() for s in READ_ONLY_STATEMENTS}


def expected_by_bundle() -> dict[str, dict]:
    data = json.loads((demo_fleet_dir() / "EXPECTED.json").read_text(encoding="utf-8"))
    items = data if isinstance(data, list) else data.get("hosts", data)
    if isinstance(items, dict):
        items = [dict(v, bundle=k) for k, v in items.items()]
    return {str(x.get("bundle") or x.get("host")): x for x in items}


def bundle_faults() -> dict[Path, dict]:
    return {b: LabHost.from_bundle(b).faults for b in find_bundles([demo_fleet_dir()])}


@pytest.fixture(scope="module")
def fleet_scan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    bundles = find_bundles([demo_fleet_dir()])
    names = [LabHost.from_bundle(b).name for b in bundles]
    healthy = [n for b, n in zip(bundles, names) if not LabHost.from_bundle(b).faults]
    # inject one fault per kind on second-round copies of healthy hosts
    faults, expect_class = {}, {}
    for (kind, (spec, cls)), base in zip(INJECTED.items(), healthy * 3):
        name = f"{base}-{2 + list(INJECTED).index(kind) // len(healthy)}"
        faults[name] = spec
        expect_class[name] = cls
    inv = tmp / "inv.ini"
    with lab_fleet(demo_fleet_dir(), hosts=N_HOSTS, faults=faults, inventory=inv) as fleet:
        env = {"PORT80_PASSWORD": fleet.password}
        res = CliRunner().invoke(app, ["scan", "-i", str(inv), "--evidence-dir", str(tmp / "ev"), "--forks", "64",
                                       "--timeout", "8", "-f", "json", "-o", str(tmp / "report.json")], env=env)
        logs = {h.name: h.command_log for h in fleet.hosts}
        endpoints = {h.name: h for h in fleet.hosts}
    return {"tmp": tmp, "res": res, "faults": faults, "expect_class": expect_class, "logs": logs,
            "endpoints": endpoints, "fleet_password": fleet.password}


def test_every_host_once_with_the_right_class(fleet_scan):
    res = fleet_scan["res"]
    assert res.exit_code == 1, res.output  # some hosts failed, by design
    doc = json.loads((fleet_scan["tmp"] / "report.json").read_text())
    hosts = [h["host"] for h in doc["hosts"]]
    assert len(hosts) == N_HOSTS and len(set(hosts)) == N_HOSTS
    rows = list(csv.DictReader(io.StringIO((fleet_scan["tmp"] / "ev" / "report.csv").read_text())))
    assert {r["host"] for r in rows} == set(hosts)
    by_host = {h["host"]: h for h in doc["hosts"]}
    for name, cls in fleet_scan["expect_class"].items():
        assert by_host[name]["status"] == cls, (name, by_host[name]["status"], by_host[name]["error"])
    # the demo fleet's own faulty hosts keep their class in every round
    for name, h in by_host.items():
        ep = fleet_scan["endpoints"][name]
        kind = (LabHost.from_bundle(ep.bundle_dir).faults or {}).get("kind")
        if name in fleet_scan["faults"] or not kind:
            continue
        want = {"auth": "auth", "hang": "timeout", "hang_receive": "timeout", "wsman_fault": "winrm",
                "not_elevated": "partial", "refuse": "unreachable"}.get(kind)
        if want:
            assert h["status"] == want, (name, kind, h["status"], h["error"])
    for h in doc["hosts"]:
        if h["status"] not in ("ok",):
            assert h["error"] and "\n" not in h["error"]
        assert fleet_scan["fleet_password"] not in json.dumps(h)


def test_healthy_verdicts_equal_analyze(fleet_scan):
    doc = json.loads((fleet_scan["tmp"] / "report.json").read_text())
    expected = expected_by_bundle()
    checked = 0
    for h in doc["hosts"]:
        if h["status"] != "ok":
            continue
        ep = fleet_scan["endpoints"][h["host"]]
        offline = analyze_bundle(read_bundle(Path(h["evidence_dir"])), [80])
        source = analyze_bundle(read_bundle(ep.bundle_dir), [80])
        got = [(p["port"], p["holder"], sorted(r["url"] for r in p["registrations"]),
                sorted(l["pid"] for l in p["listeners"])) for p in h["ports"]]
        for rep in (offline, source):
            assert got == [(p.port, p.holder, sorted(r.url for r in p.registrations),
                            sorted(l.pid for l in p.listeners)) for p in rep.ports], h["host"]
        exp = expected.get(ep.bundle_dir.name)
        if exp and exp.get("holder"):
            want = exp["holder"] if isinstance(exp["holder"], str) else "+".join(exp["holder"])
            assert h["ports"][0]["holder"] == want, (h["host"], exp)
        checked += 1
    assert checked >= 30


def test_analyze_reproduces_the_scan_report(fleet_scan):
    res = CliRunner().invoke(app, ["analyze", str(fleet_scan["tmp"] / "ev"), "-f", "json"])
    assert res.exit_code == 1  # failed hosts are kept in the evidence folder with their class
    offline = {h["host"]: h for h in json.loads(res.stdout)["hosts"]}
    scanned = {h["host"]: h for h in json.loads((fleet_scan["tmp"] / "report.json").read_text())["hosts"]}
    assert set(offline) == set(scanned)
    for name, h in scanned.items():
        assert offline[name]["status"] == h["status"], name
        assert [p["holder"] for p in offline[name]["ports"]] == [p["holder"] for p in h["ports"]], name


def test_scan_is_read_only(fleet_scan):
    for name, log in fleet_scan["logs"].items():
        for entry in log:
            assert not entry.get("changed_state"), (name, entry)
            for stmt in entry["key"].lower().split("; "):
                assert stmt in ALLOWED, (name, stmt)


def test_ctrl_c_leaves_a_valid_partial_result(tmp_path):
    inv = tmp_path / "inv.ini"
    with lab_fleet(demo_fleet_dir(), hosts=40, latency_ms=150, inventory=inv) as fleet:
        env = dict(os.environ, PORT80_PASSWORD=fleet.password)
        ev = tmp_path / "ev"
        proc = subprocess.Popen([sys.executable, "-m", "remote", "scan", "-i", str(inv), "--evidence-dir", str(ev),
                                 "--forks", "4", "--timeout", "20", "-f", "json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        results = ev / "results.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if results.exists() and len(results.read_text().splitlines()) >= 3:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    lines = results.read_text().splitlines()
    assert 3 <= len(lines) < 40
    finished = [json.loads(l)["host"] for l in lines]
    report = json.loads((ev / "report.json").read_text())
    assert sorted(h["host"] for h in report["hosts"]) == sorted(finished)
    assert b"Traceback" not in err
    assert b"--resume" in err
