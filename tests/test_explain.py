"""port80 explain on every demo host: the same holder and names as the report, evidence lines, and at
least one way to free a held port with its command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.analysis.verdicts import analyze_bundle
from remote.cli.app import app
from remote.evidence.bundle import find_bundles, read_bundle
from remote.lab.fleet import demo_fleet_dir
from remote.report.explain import explain
from remote.report.render import _who

BUNDLES = find_bundles([demo_fleet_dir()])


@pytest.mark.parametrize("folder", BUNDLES, ids=lambda p: p.name)
def test_explain_names_the_reports_holder_and_a_way_to_free_it(folder: Path):
    b = read_bundle(folder)
    report = analyze_bundle(b, [80])
    v = report.ports[0]
    text = explain(report, 80, b.texts)
    first = text.splitlines()[0]
    assert f"(holder: {v.holder}" in first
    who, _ = _who(v)
    if v.holder not in ("free", "unknown"):
        assert who and who in first
        assert re.search(r"^  1\. .*\n     command: \S", text, re.M), text
    for l in v.listeners:
        assert l.evidence in text
    for r in v.registrations:
        assert r.evidence in text and r.url in text


def test_cli_explain_finds_the_host_by_hostname_or_folder(tmp_path):
    r = CliRunner().invoke(app, ["explain", "WEB-PRD-01", str(demo_fleet_dir())])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("WEB-PRD-01, port 80: held by HTTP.sys")
    assert "Stop-Service -Name W3SVC; Set-Service -Name W3SVC -StartupType Disabled" in r.output
    assert "--strategy disable-services" in r.output and "netsh.exe http add iplisten ipaddress=" in r.output
    r = CliRunner().invoke(app, ["explain", "nginx", str(demo_fleet_dir()), "--port", "80"])
    assert r.exit_code == 0 and "Stop-Process -Id" in r.output
    r = CliRunner().invoke(app, ["explain", "NO-SUCH-HOST", str(demo_fleet_dir())])
    assert r.exit_code == 2 and "NO-SUCH-HOST: no evidence bundle" in r.output
