"""Scan history in SQLite: runs recorded by scan/analyze, schema migrations, concurrent writers,
a scan killed mid-run, `port80 history`. Every database here lives in tmp_path (conftest also points
XDG_DATA_HOME at a temporary folder, so nothing reaches the real home)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.analysis.verdicts import HostReport, PortVerdict, Registration, failed_host
from remote.audit.history import SCHEMA_VERSION, History, HistoryError, default_db_path
from remote.cli.app import app
from remote.lab.fixture import lab_fleet

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "seed-branchcache"


def bundles(tmp_path: Path, names=("seed-a", "seed-b")) -> Path:
    d = tmp_path / "bundles"
    for name in names:
        shutil.copytree(SEED, d / name)
        meta = json.loads((d / name / "host.json").read_text())
        meta["host"] = name
        (d / name / "host.json").write_text(json.dumps(meta))
    return d


def reports() -> list[HostReport]:
    held = HostReport(host="web01", groups=["web"], ports=[PortVerdict(
        port=80, holder="http.sys", holders=["http.sys"], registrations=[Registration(
            url="HTTP://+:80/X/", queue="q", pids=[12], services=["W3SVC"], product="IIS (W3SVC/WAS)",
            product_key="iis", evidence="servicestate.txt:9")])])
    return [held, failed_host("db01", "auth", "authentication failed", [80])]


def test_default_path_honours_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "port80" / "history.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_db_path() == Path.home() / ".local" / "share" / "port80" / "history.sqlite"


def test_round_trip_wal_and_version(tmp_path):
    db = tmp_path / "h.sqlite"
    with History(db) as h:
        rid = h.start_run("scan", "inventory:/x", "/x", {"ports": [80]}, "/ev")
        h.finish_run(rid, reports())
        assert h.version() == SCHEMA_VERSION
        assert h.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        run = h.run(rid)
        assert (run.status, run.host_count, run.options) == ("complete", 2, {"ports": [80]})
        back = h.reports(rid)
        assert [r.host for r in back] == ["web01", "db01"]
        assert back[0].groups == ["web"] and back[0].ports[0].registrations[0].product_key == "iis"
        regs = h.db.execute("SELECT host, port, url, product_key, evidence FROM registrations").fetchall()
        assert regs == [("web01", 80, "HTTP://+:80/X/", "iis", "servicestate.txt:9")]
        tl = h.timeline(["web01"])
        assert tl[0]["holder"] == "http.sys" and tl[0]["products"] == ["IIS (W3SVC/WAS)"]


def test_migrates_an_older_database_and_refuses_a_newer_one(tmp_path):
    db = tmp_path / "old.sqlite"
    sqlite3.connect(db).close()  # version 0: empty
    with History(db) as h:
        assert h.version() == SCHEMA_VERSION
        assert {r[0] for r in h.db.execute("SELECT name FROM sqlite_master WHERE type='table'")} >= {
            "runs", "hosts", "ports", "registrations"}
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(HistoryError, match="newer port80"):
        History(db)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="bad.sqlite"):
        History(bad)


def test_analyze_records_runs_and_history_lists_them(tmp_path):
    db = tmp_path / "h.sqlite"
    b = bundles(tmp_path)
    r = CliRunner()
    for _ in range(2):
        res = r.invoke(app, ["analyze", str(b), "--db", str(db), "-f", "json"])
        assert res.exit_code == 0, res.output
    res = r.invoke(app, ["analyze", str(b), "--db", str(db), "--no-history"])
    assert res.exit_code == 0
    with History(db) as h:
        runs = h.runs()
    assert [x.id for x in runs] == [2, 1] and {x.status for x in runs} == {"complete"}
    out = r.invoke(app, ["history", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert "analyze" in out.output and "complete" in out.output
    tl = r.invoke(app, ["history", "--db", str(db), "--host", "seed-a", "-f", "json"])
    rows = json.loads(tl.stdout)
    assert [(x["host"], x["run"], x["holder"]) for x in rows] == [("seed-a", 2, "http.sys"), ("seed-a", 1, "http.sys")]
    assert r.invoke(app, ["history", "--db", str(db), "--host", "nope*"]).exit_code == 1


def test_default_database_is_under_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    res = CliRunner().invoke(app, ["analyze", str(bundles(tmp_path))])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "data" / "port80" / "history.sqlite").is_file()


def test_twenty_concurrent_analyze_runs_all_land(tmp_path):
    """The bar: 20 `port80 analyze` processes writing history at once -> 20 runs, integrity ok."""
    db = tmp_path / "h.sqlite"
    b = bundles(tmp_path)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "remote", "analyze", str(b), "--db", str(db), "-f", "json"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(20)]
    errors = [p.communicate(timeout=240)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, errors
    with History(db) as h:
        runs = h.runs()
        assert len(runs) == 20 and {r.status for r in runs} == {"complete"}
        assert all(r.host_count == 2 for r in runs)
        assert h.integrity() == "ok"
        assert h.db.execute("SELECT COUNT(*) FROM hosts").fetchone()[0] == 40


def test_a_scan_killed_mid_run_leaves_a_valid_database_and_an_incomplete_run(tmp_path):
    db = tmp_path / "h.sqlite"
    prof = bundles(tmp_path)
    inv = tmp_path / "inv.ini"
    with lab_fleet(prof, faults={"seed-b": {"kind": "hang_receive"}}, inventory=inv) as fleet:
        env = {**os.environ, "PORT80_PASSWORD": fleet.password}
        proc = subprocess.Popen([sys.executable, "-m", "remote", "scan", "-i", str(inv), "--db", str(db),
                                 "--evidence-dir", str(tmp_path / "ev"), "--timeout", "60"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # seed-a done (results.jsonl), seed-b hangs
                res = tmp_path / "ev" / "results.jsonl"
                if res.is_file() and res.read_text().strip():
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the scan did not finish its first host")
            assert proc.poll() is None
            with History(db) as h:
                assert h.runs()[0].status == "running"  # the live process keeps its run running
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    with History(db) as h:
        assert h.integrity() == "ok"
        (run,) = h.runs()
        assert run.status == "incomplete" and run.finished_at is None
    out = CliRunner().invoke(app, ["history", "--db", str(db)])
    assert "incomplete" in out.output


def test_an_unusable_database_warns_and_the_report_still_comes(tmp_path):
    b = bundles(tmp_path)
    res = CliRunner().invoke(app, ["analyze", str(b), "--db", str(tmp_path), "-f", "json"])  # a folder, not a file
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["summary"]["hosts"] == 2
    assert "port80: warning:" in res.stderr and "not recorded" in res.stderr and len(res.stderr.splitlines()) == 1
    drift = CliRunner().invoke(app, ["analyze", str(b), "--db", str(tmp_path), "--fail-on-drift"])
    assert drift.exit_code == 2 and "needed by --fail-on-drift" in drift.stderr
