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
    for bad in ("0", "99999"):  # not a TCP port: the one --port error, not "free, bindable"
        r = CliRunner().invoke(app, ["explain", "nginx", str(demo_fleet_dir()), "--port", bad])
        assert r.exit_code == 2 and r.stderr.strip() == f"port80: error: --port {bad}: not a TCP port (1-65535)"


def test_issue13_demo_hosts_match_their_expectations():
    import json

    expected = {e["host"]: e for e in json.loads((demo_fleet_dir() / "EXPECTED.json").read_text())}
    for name in ("hyperv-winnat", "ssrs-tls", "iis-hostheaders", "shadowed-wildcard"):
        exp = expected[name]
        r = analyze_bundle(read_bundle(demo_fleet_dir() / name), [80, 443])
        p80, p443 = r.ports
        assert p80.holder == (exp["holder"] if isinstance(exp["holder"], str) else "+".join(exp["holder"]))
        assert sorted(x.url for x in p80.registrations) == sorted(exp["urls"])
        if "bindable" in exp:
            assert p80.bindable is exp["bindable"]
            assert [b["kind"] for b in p80.blockers] == exp["blockers"]
            assert [{k: e[k] for k in ("protocol", "start", "end", "administered")} for e in p80.excluded_ranges
                    if e["ip"] == "ipv4"] == exp["excluded_ranges"]
        if "iis" in exp:
            assert [x.iis for x in p80.registrations if x.iis] == exp["iis"]
        for url, by in exp.get("shadowed", {}).items():
            assert next(x for x in p80.registrations if x.url == url).shadowed_by == by
        if "port443" in exp:
            assert p443.holder == exp["port443"]["holder"]
            assert [{k: t[k] for k in ("binding", "cert_hash", "cert_store", "app_id", "product")} for t in p443.tls] \
                == exp["port443"]["tls"]
            assert {x.product for x in p443.registrations} == {exp["port443"]["product"]}


def test_cli_explain_accepts_a_folder_holding_a_scan_folder(tmp_path):
    import shutil

    shutil.copytree(demo_fleet_dir() / "hyperv-winnat", tmp_path / "evidence" / "hyperv-winnat")
    r = CliRunner().invoke(app, ["explain", "hyperv-winnat", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "(holder: free)" in r.output and "bindable: false" in r.output
    assert "command: net stop winnat; net start winnat" in r.output
