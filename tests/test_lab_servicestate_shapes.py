"""The lab's machine model on every ``netsh http show servicestate`` shape of the corpus (issue 11, bar 2).

For each capture in tests/fixtures/servicestate/ and tests/fixtures/lab-servicestate/ (byte-for-byte copies of the
corpus captures,
see tests/fixtures/SOURCES.md): both views (request queue view, server session view), both process-list
forms (``Process IDs:`` and Server 2022's ``Processes: ID: n, image: …``), controller processes, and a
capture whose indentation grew from queue to queue. A bundle is built around the capture (netstat with the
PID 4 listeners of its ports; a service per attached PID, W3SVC and WAS in an IIS controller process);
then, per port: stopping the services the analysis attributes to its registrations leaves the port free
(or names the holder left), and starting them again restores every text byte for byte. ``port80 fix
--apply --strategy disable-services`` and ``--undo`` do the same over the wire.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.analysis.verdicts import analyze_bundle
from remote.cli.app import app
from remote.evidence.bundle import read_bundle
from remote.evidence.textio import decode_text
from remote.lab import api
from remote.lab.engine.host import LabHost
from remote.lab.fixture import lab_fleet

# the parsers' copies, and the one capture only the lab's tests use (Server 2022 ``Processes:`` form)
CAPTURES = sorted([*(Path(__file__).parent / "fixtures" / "servicestate").glob("*.txt"),
                   *(Path(__file__).parent / "fixtures" / "lab-servicestate").glob("*.txt")], key=lambda p: p.name)


def build_bundle(capture: Path, root: Path) -> Path:
    text = decode_text(capture.read_bytes())
    b = root / capture.stem
    b.mkdir(parents=True)
    (b / "servicestate.txt").write_text(text, encoding="utf-8", newline="")
    controllers = {int(x) for x in re.findall(r"Controller process ID:\s*(\d+)", text)}
    pids = ({int(x) for x in re.findall(r"\bID:\s*(\d+)", text)}
            | {int(x) for x in re.findall(r"^\s+(\d+)\s*$", text, re.M)}) - controllers
    ports = sorted({int(p) for p in re.findall(r"HTTPS?://[^\s/<>]*?:(\d+)", text, re.I)})
    rows = ["", "Active Connections", "", "  Proto  Local Address          Foreign Address        State           PID"]
    rows += [f"  TCP    0.0.0.0:{p:<16}0.0.0.0:0              LISTENING       4" for p in ports]
    (b / "netstat.txt").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8", newline="")
    svcs = [{"Name": f"LabSvc{p}", "DisplayName": f"Lab service {p}", "State": "Running", "StartMode": "Auto",
             "ProcessId": p} for p in sorted(pids)]
    for c in sorted(controllers):  # an IIS application pool's controller: svchost -k iissvcs (W3SVC, WAS)
        svcs += [{"Name": n, "DisplayName": d, "State": "Running", "StartMode": "Auto", "ProcessId": c}
                 for n, d in (("W3SVC", "World Wide Web Publishing Service"), ("WAS", "Windows Process Activation Service"))]
    (b / "services.json").write_text(json.dumps(svcs, indent=2), encoding="utf-8")
    (b / "host.json").write_text(json.dumps({"hostname": re.sub(r"[^A-Za-z0-9-]", "", capture.stem)[:15].upper()}),
                                 encoding="utf-8")
    return b


def verdict(texts: dict[str, str], base: Path, tmp: Path, port: int):
    tmp.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():
        (tmp / f.name).write_bytes(f.read_bytes())
    for name, t in texts.items():
        (tmp / name).write_text(t, encoding="utf-8", newline="")
    return analyze_bundle(read_bundle(tmp), [port]).ports[0]


def freeable_ports(b: Path, tmp: Path) -> list[int]:
    """Ports with a registration port80 may act on (WinRM's own URLs are never stopped)."""
    text = (b / "servicestate.txt").read_text(encoding="utf-8")
    out = []
    for p in sorted({int(x) for x in re.findall(r"HTTPS?://[^\s/<>]*?:(\d+)", text, re.I)}):
        v = verdict({}, b, tmp / f"p{p}", p)
        if v.registrations and not any("/WSMAN" in r.url.upper() for r in v.registrations):
            out.append(p)
    return out


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.stem for c in CAPTURES])
def test_stopping_the_owners_frees_each_port_and_starting_restores_bytes(capture, tmp_path):
    b = build_bundle(capture, tmp_path / "b")
    host = LabHost.from_bundle(b)
    original = host.snapshot()
    ports = freeable_ports(b, tmp_path)
    assert ports or "WSMAN" in original["servicestate.txt"].upper() or "Processes:" in original["servicestate.txt"]
    for port in ports:
        before = verdict(original, b, tmp_path / f"before{port}", port)
        owners = sorted({s for r in before.registrations for s in r.services})
        assert owners, (port, [(r.url, r.pids, r.controller_pid) for r in before.registrations])
        for s in owners:
            ex = host.run([[api.Command("Stop-Service", False, [("Name", s), ("Force", True)])]])
            assert not ex.errors and not ex.failed, [e.message for e in ex.errors]
        after = verdict(host.snapshot(), b, tmp_path / f"after{port}", port)
        # every registration those services held is gone: the port is free, or the holder left is another one
        left = {r.url for r in after.registrations} & {r.url for r in before.registrations}
        assert not left and (after.holder == "free" or after.registrations), \
            (port, after.holder, [(r.url, r.services) for r in after.registrations])
        for s in owners:
            host.run([[api.Command("Start-Service", False, [("Name", s)])]])
        assert host.snapshot() == original  # every text back, byte for byte


@pytest.mark.parametrize("capture", [c for c in CAPTURES if c.stem in (
    "azure-sf-requestq-mangled", "blog-pid4-116B50EB", "htb-flight-iis-winrm", "htb-overwatch-a-processes-image")],
    ids=lambda c: c.stem)
def test_port80_fix_apply_then_undo(capture, tmp_path):
    b = build_bundle(capture, tmp_path / "profiles")
    ports = freeable_ports(b, tmp_path)
    assert ports
    port = 80 if 80 in ports else ports[0]
    inv = tmp_path / "inv.ini"
    with lab_fleet(tmp_path / "profiles", inventory=inv, workdir=tmp_path / "lab") as fleet:
        env = {"PORT80_PASSWORD": fleet.password}
        original = fleet.hosts[0].host.snapshot()
        res = CliRunner().invoke(app, ["fix", "-i", str(inv), "--timeout", "20", "--port", str(port), "--strategy",
                                       "disable-services", "--apply", "--yes", "--evidence-dir",
                                       str(tmp_path / "apply"), "-f", "json"], env=env)
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)["hosts"][0]["outcome"]
        assert out["status"] == "ok" and out["verified"] == "free", out
        res = CliRunner().invoke(app, ["fix", "-i", str(inv), "--timeout", "20", "--undo",
                                       str(tmp_path / "apply" / "journal.jsonl"), "--yes", "--evidence-dir",
                                       str(tmp_path / "undo"), "-f", "json"], env=env)
        assert res.exit_code == 0, res.output
        assert fleet.hosts[0].host.snapshot() == original
