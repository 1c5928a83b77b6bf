"""CLI fleet commands against the lab: secrets never leak (even at -vv), check, inventory, exit codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.cli.app import app
from remote.lab.fixture import lab_fleet

SECRET = "S3cr3t-Pa55!word"


def run(args, env=None):
    return CliRunner().invoke(app, args, env=env or {})


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_no_secret_anywhere_at_max_verbosity(tmp_path: Path, profiles: Path, auth: str):
    inv = tmp_path / "inv.ini"
    with lab_fleet(profiles, password=SECRET, auth=auth, tls=(auth == "basic"), inventory=inv):
        ev = tmp_path / "ev"
        res = run(["scan", "-i", str(inv), "--evidence-dir", str(ev), "-vv", "-f", "json"],
                  env={"PORT80_PASSWORD": SECRET})
        bad = run(["scan", "-i", str(inv), "--evidence-dir", str(tmp_path / "ev2"), "-vv"],
                  env={"PORT80_PASSWORD": SECRET + "x"})
    assert res.exit_code == 0, res.output
    assert bad.exit_code == 1
    assert "auth" in bad.output
    basic = base64.b64encode(f"auditor:{SECRET}".encode()).decode()
    texts = [res.output, bad.output]
    texts += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert "DEBUG" in res.output  # the most verbose logging really was on
    for t in texts:
        assert SECRET not in t
        assert basic not in t
    doc = json.loads(res.stdout[res.stdout.index("{"):])
    assert [h["ports"][0]["holder"] for h in doc["hosts"]] == ["http.sys", "http.sys"]


def test_check_reports_reachability_and_elevation(tmp_path: Path, profiles: Path):
    inv = tmp_path / "inv.ini"
    with lab_fleet(profiles, faults={"seed-b": {"kind": "auth"}}, inventory=inv) as fleet:
        res = run(["check", "-i", str(inv), "-f", "json"], env={"PORT80_PASSWORD": fleet.password})
    doc = json.loads(res.stdout)
    status = {h["host"]: h["status"] for h in doc["hosts"]}
    assert status == {"seed-a": "ok", "seed-b": "auth"}
    assert res.exit_code == 1


def test_fail_if_held_exit_code(tmp_path: Path, profiles: Path):
    inv = tmp_path / "inv.ini"
    with lab_fleet(profiles, inventory=inv) as fleet:
        res = run(["scan", "-i", str(inv), "--evidence-dir", str(tmp_path / "ev"), "--fail-if-held"],
                  env={"PORT80_PASSWORD": fleet.password})
    assert res.exit_code == 3, res.output


def test_inventory_listing_never_shows_secrets(tmp_path: Path):
    inv = tmp_path / "inv.ini"
    inv.write_text("[web]\nweb[01:03].corp.example.com ansible_password=" + SECRET + "\n\n[web:vars]\nansible_user=audit\n")
    res = run(["inventory", "-i", str(inv)])
    assert res.exit_code == 0, res.output
    assert "web02.corp.example.com" in res.output and "https://web01.corp.example.com:5986" in res.output
    assert SECRET not in res.output
    res = run(["inventory", "-i", str(inv), "-f", "json"])
    assert SECRET not in res.output


def test_bad_inventory_line_is_one_line_with_file_and_line(tmp_path: Path):
    inv = tmp_path / "bad.ini"
    inv.write_text("[web]\nok.example.com\n[broken\n")
    res = run(["scan", "-i", str(inv)], env={"PORT80_PASSWORD": "x"})
    assert res.exit_code == 2
    assert f"{inv}:3:" in res.output
    assert "Traceback" not in res.output


def test_basic_over_plain_http_is_refused_unless_encryption_off(tmp_path: Path):
    inv = tmp_path / "inv.ini"
    inv.write_text("[w]\nh1 ansible_host=127.0.0.1 ansible_port=5985 ansible_psrp_protocol=http ansible_psrp_auth=basic\n")
    res = run(["scan", "-i", str(inv)], env={"PORT80_PASSWORD": "x"})
    assert res.exit_code == 2
    assert "h1" in res.output or str(inv) in res.output


def test_missing_password_is_a_clear_error(tmp_path: Path):
    inv = tmp_path / "inv.ini"
    inv.write_text("[w]\nh1 ansible_host=127.0.0.1\n")
    res = run(["scan", "-i", str(inv)], env={})
    assert res.exit_code == 2
    assert "PORT80_PASSWORD" in res.output


def test_inventory_password_is_used_per_host_with_a_warning(tmp_path: Path, profiles: Path):
    inv = tmp_path / "inv.ini"
    with lab_fleet(profiles, password=SECRET, inventory=inv):
        text = inv.read_text().replace("ansible_user=auditor", f"ansible_user=auditor\nansible_password={SECRET}")
        inv.write_text(text)
        res = run(["scan", "-i", str(inv), "--evidence-dir", str(tmp_path / "ev"), "-vv"], env={})
    assert res.exit_code == 0, res.output
    assert "ansible_password" in res.output  # the warning
    assert SECRET not in res.output
    assert all(SECRET not in p.read_text(errors="replace") for p in (tmp_path / "ev").rglob("*") if p.is_file())
