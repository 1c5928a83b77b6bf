"""Inventory settings that must reach the host (issue 10): port80_ports, ansible_psrp_path, and the
user names the log filter needs to hide a Basic token at -vv. Each fails without its fix."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

from typer.testing import CliRunner

from remote.cli.app import app
from remote.inventory.ansible_ini import load_inventory
from remote.inventory.targets import to_spec
from remote.lab.fixture import lab_fleet

SECRET = "Pa55-for-the-house!"


def _scan(inv: Path, ev: Path, password: str, *extra: str):
    return CliRunner().invoke(app, ["scan", "-i", str(inv), "--evidence-dir", str(ev), "-f", "json", "--no-history",
                                    "--timeout", "20", *extra], env={"PORT80_PASSWORD": password})


def _add_vars(inv: Path, *lines: str) -> None:
    inv.write_text(inv.read_text(encoding="utf-8") + "".join(f"{x}\n" for x in lines), encoding="utf-8")


def test_port80_ports_in_the_inventory_are_the_ports_audited(tmp_path: Path, profiles: Path):
    inv = tmp_path / "inv.ini"
    with lab_fleet(profiles, inventory=inv) as fleet:
        _add_vars(inv, "[web8080]", "seed-a port80_ports=8080,80")  # seed-a in one more group, with its ports
        res = _scan(inv, tmp_path / "ev", fleet.password)
        cli = _scan(inv, tmp_path / "ev2", fleet.password, "--port", "443")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout[res.stdout.index("{"):])
    ports = {h["host"]: [p["port"] for p in h["ports"]] for h in doc["hosts"]}
    assert ports == {"seed-a": [8080, 80], "seed-b": [80]}
    on = {h["host"]: {p["port"]: p["holder"] for p in h["ports"]} for h in doc["hosts"]}
    assert on["seed-a"][80] == "http.sys" and on["seed-a"][8080] == "free"
    saved = json.loads((tmp_path / "ev" / "report.json").read_text())  # the scan folder's report too
    assert {h["host"]: [p["port"] for p in h["ports"]] for h in saved["hosts"]} == ports
    # --port on the command line wins, as Ansible's extra vars do
    doc = json.loads(cli.stdout[cli.stdout.index("{"):])
    assert {h["host"]: [p["port"] for p in h["ports"]] for h in doc["hosts"]} == {"seed-a": [443], "seed-b": [443]}


def test_ansible_psrp_path_reaches_the_host(tmp_path: Path, profiles: Path):
    inv = tmp_path / "inv.ini"
    with lab_fleet(profiles, inventory=inv) as fleet:
        for h in fleet.hosts:
            h.server.path = "psrp-house"  # the WinRM listener is not at /wsman on these hosts
        wrong = _scan(inv, tmp_path / "ev1", fleet.password)
        _add_vars(inv, "[all:vars]", "ansible_psrp_path=psrp-house")
        assert to_spec(load_inventory(inv).hosts()[0]).path == "psrp-house"
        right = _scan(inv, tmp_path / "ev2", fleet.password)
    assert wrong.exit_code == 1  # the default path answers 404 there
    doc = json.loads(wrong.stdout[wrong.stdout.index("{"):])
    assert {h["status"] for h in doc["hosts"]} == {"winrm"}
    assert right.exit_code == 0, right.output
    doc = json.loads(right.stdout[right.stdout.index("{"):])
    assert {h["status"] for h in doc["hosts"]} == {"ok"}


def test_a_basic_token_is_redacted_anywhere_at_vv(tmp_path: Path, profiles: Path, capsys):
    from remote.cli.app import start_logging
    from remote.inventory.credentials import resolve_credentials
    from remote.inventory.targets import FleetCredentials

    inv = tmp_path / "inv.ini"
    with lab_fleet(profiles, password=SECRET, auth="basic", tls=True, inventory=inv):
        hosts = load_inventory(inv).hosts()
        specs = [to_spec(h) for h in hosts]
        creds = FleetCredentials(resolve_credentials(None, None, interactive=False, hosts=hosts,
                                                     env={"PORT80_PASSWORD": SECRET}), hosts)
        start_logging(2, creds.secrets(), creds.users(specs))  # what scan, check and fix do
        token = base64.b64encode(f"auditor:{SECRET}".encode()).decode()
        # a library that logs the token outside an "Authorization: Basic" header (a dumped dict, bytes…)
        logging.getLogger("urllib3.connectionpool").debug("headers=%r", {"auth": token.encode()})
        logging.getLogger("port80.test").debug("token %s", token.rstrip("="))
        res = _scan(inv, tmp_path / "ev", SECRET, "-vv")
    err = capsys.readouterr().err
    assert "DEBUG" in err and "headers=" in err
    for text in (err, res.output):
        assert SECRET not in text and token not in text and token.rstrip("=") not in text
