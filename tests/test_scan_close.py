"""Evidence is complete once the pipeline's output is in: the runner records the host while its
session is being closed, waits for that close before it ends, and a failed close does not fail a
host whose evidence is complete (lab over real sockets, real pypsrp)."""

from __future__ import annotations

from pathlib import Path

from remote.evidence.bundle import read_bundle
from remote.remoting.collect import ConnectionSpec, collect
from remote.lab.protocol.faults import parse_fault_option
from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir
from remote.runner.scan import Scan, ScanOptions, safe_dirname


def _spec(fleet, h) -> ConnectionSpec:
    return ConnectionSpec(name=h.name, address=h.address, port=h.port, scheme="https", auth="basic",
                          user=fleet.user, cert_validation=str(fleet.ca_path))


def _faults(*texts):
    out: dict = {}
    for t in texts:
        name, spec = parse_fault_option(t)
        out.setdefault(name, []).append(spec)
    return out


def test_a_failed_close_keeps_a_complete_host(tmp_path: Path):
    faults = _faults("ssrs=wsman_fault:Delete")
    with lab_fleet(demo_fleet_dir(), faults=faults, workdir=tmp_path / "lab") as fleet:
        hosts = [h for h in fleet.hosts if h.name in ("ssrs", "branchcache")]
        # collect() alone: the evidence comes back, the failed close is noted in host.json's meta
        got = collect(_spec(fleet, hosts[0] if hosts[0].name == "ssrs" else hosts[1]), fleet.password)
        assert got.texts["servicestate"] and "close_error" in got.meta
        assert "Delete" in got.meta["close_error"] or "WSMan" in got.meta["close_error"]

        fleet.reset_stats()
        scan = Scan([_spec(fleet, h) for h in hosts], lambda s: fleet.password,
                    ScanOptions(evidence_dir=tmp_path / "scan", forks=4, timeout=30))
        reports = {r.host: r for r in scan.run()}
        assert reports["ssrs"].status == "ok" and reports["branchcache"].status == "ok"
        b = read_bundle(tmp_path / "scan" / safe_dirname("ssrs"))
        assert b.texts.get("servicestate")
        for h in hosts:  # every session was closed (or its close tried) before the scan returned
            assert h.stats()["actions"].get("Delete") == 1


def test_the_runner_waits_for_the_close_before_it_returns(tmp_path: Path):
    with lab_fleet(demo_fleet_dir(), latency_ms=300, workdir=tmp_path / "lab") as fleet:
        hosts = [h for h in fleet.hosts if h.name in ("free", "nginx", "iis-idle")]
        fleet.reset_stats()
        scan = Scan([_spec(fleet, h) for h in hosts], lambda s: fleet.password,
                    ScanOptions(evidence_dir=tmp_path / "scan", forks=8, timeout=30))
        reports = scan.run()
        assert {r.status for r in reports} == {"ok"}
        import time

        time.sleep(0.1)  # the lab counts a reply just after sending it; its Delete replies take 300 ms
        for h in hosts:  # the Delete had finished (it was answered) when run() returned
            # 6: the pool open takes two Receives, as on Windows (real-message-flow-summary.txt)
            assert h.stats()["status"].get("200", 0) == h.stats()["requests"] == 6
