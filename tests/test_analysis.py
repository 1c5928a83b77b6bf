"""The "who holds the port" analysis, on real outputs (corpus samples) combined into bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.analysis import knowledge
from remote.analysis.verdicts import analyze_bundle, analyze_evidence, parse_evidence
from remote.evidence.bundle import read_bundle
from remote.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "seed-branchcache"
FIX = Path(__file__).resolve().parent / "fixtures"


def fixture(kind: str, name: str) -> str:
    return (FIX / kind / name).read_text(encoding="utf-8")


def verdict(texts: dict, port: int = 80):
    return analyze_evidence("h", parse_evidence(texts), [port]).ports[0]


def test_seed_case_exactly():
    report = analyze_bundle(read_bundle(SEED), [80])
    p = report.ports[0]
    assert p.holder == "http.sys"
    assert [r.url for r in p.registrations] == ["HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/"]
    reg = p.registrations[0]
    assert reg.pids == [2668]
    assert reg.product == knowledge.product("branchcache").label
    assert "BranchCache" in reg.product
    assert "netsh branchcache set service mode=disabled" in reg.advice
    assert [(r.url, r.users) for r in p.reservations] == [
        ("http://+:80/116B50EB-ECE2-41ac-8429-9F9E963361B7/", ["NT AUTHORITY\\NETWORK SERVICE"])]
    assert {l.pid for l in p.listeners} == {4}
    assert reg.evidence.startswith("servicestate.txt:")


def test_seed_case_cli_json():
    res = CliRunner().invoke(app, ["analyze", str(SEED), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    port = doc["hosts"][0]["ports"][0]
    assert port["holder"] == "http.sys"
    reg = port["registrations"][0]
    assert reg["url"] == "HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/"
    assert reg["pids"] == [2668]
    assert "BranchCache" in reg["product"]
    assert port["reservations"][0]["users"] == ["NT AUTHORITY\\NETWORK SERVICE"]
    for key in ("host", "status", "error", "ports"):
        assert key in doc["hosts"][0]
    for key in ("url", "queue", "pids", "controller_pid", "processes", "services", "product", "advice"):
        assert key in reg
    assert doc["summary"]["hosts"] == 1


def test_iis_idle_app_pool_is_held_by_its_controller():
    texts = {"servicestate": fixture("servicestate", "htb-flight-iis-winrm.txt"),
             "netstat": fixture("netstat", "htb-flight-findstr-listening.txt")}
    p = verdict(texts, 8000)
    assert p.holder == "http.sys"
    reg = p.registrations[0]
    assert reg.url == "HTTP://127.0.0.1:8000:127.0.0.1/"
    assert reg.queue == "DefaultAppPool"
    assert reg.pids == [] and reg.controller_pid == 3408
    assert "IIS" in reg.product
    assert any("controller" in n for n in p.notes)


def test_winrm_ports_are_http_sys_and_critical():
    texts = {"servicestate": fixture("servicestate", "htb-flight-iis-winrm.txt"),
             "netstat": fixture("netstat", "htb-flight-findstr-listening.txt")}
    p = verdict(texts, 5985)
    assert p.holder == "http.sys"
    assert p.registrations[0].pids == [3416]
    assert p.registrations[0].product_key == "winrm" and p.registrations[0].critical


def test_user_mode_process_on_80():
    # htb-flight: port 80 is held by PID 5284 (a user-mode web server), not HTTP.sys
    texts = {"servicestate": fixture("servicestate", "htb-flight-iis-winrm.txt"),
             "netstat": fixture("netstat", "htb-flight-findstr-listening.txt")}
    p = verdict(texts, 80)
    assert p.holder == "process"
    assert [l.pid for l in p.listeners] == [5284]
    assert p.registrations == []


def test_free_port_and_reservation_only():
    texts = {"netstat": fixture("netstat", "htb-overwatch-findstr-tcp.txt"),
             "urlacl": fixture("urlacl", "gh-aspnetcore-19969-win10-1909-excerpt.txt"),
             "servicestate": fixture("servicestate", "htb-overwatch-a-processes-image.txt")}
    p = verdict(texts, 80)
    assert p.holder == "free"
    assert [r.url for r in p.reservations] == ["http://+:80/Temporary_Listen_Addresses/"]
    assert p.reservations[0].users == ["\\Everyone"]
    assert any("reservation only" in n for n in p.notes)


def test_newer_processes_form_links_urls():
    texts = {"netstat": fixture("netstat", "htb-overwatch-findstr-tcp.txt"),
             "servicestate": fixture("servicestate", "htb-overwatch-a-processes-image.txt")}
    p = verdict(texts, 8000)
    assert p.holder == "http.sys"
    assert p.registrations[0].pids == [4796]
    assert p.registrations[0].url == "HTTP://+:8000/MONITORSERVICE/"


def test_both_http_sys_and_process():
    netstat = ("  Proto  Local Address          Foreign Address        State           PID\n"
               "  TCP    10.0.5.21:80           0.0.0.0:0              LISTENING       4\n"
               "  TCP    10.0.5.22:80           0.0.0.0:0              LISTENING       2210\n")
    iplisten = ("\nIP addresses present in the IP listen list:\n-------------------------------------------\n\n"
                "    10.0.5.21\n\n")
    p = verdict({"netstat": netstat, "iplisten": iplisten}, 80)
    assert p.holder == "http.sys+process"
    assert p.holders == ["http.sys", "process"]
    assert p.iplisten == ["10.0.5.21"]


def test_missing_evidence_is_unknown_not_free():
    p = verdict({}, 80)
    assert p.holder == "unknown"
    r = analyze_evidence("h", parse_evidence({}), [80])
    assert r.status == "partial" and "netstat.txt missing" in r.error


def test_error_text_instead_of_output():
    texts = {"netstat": fixture("netstat", "gh-runner-images-9915-ws2022-excerpt.txt"),
             "servicestate": "The requested operation requires elevation (Run as administrator).\r\n"}
    r = analyze_evidence("h", parse_evidence(texts), [80])
    assert r.ports[0].holder == "http.sys"
    assert "elevation" in r.error
    assert any("servicestate output missing" in n for n in r.ports[0].notes)


def test_svchost_pid_lists_all_services():
    services = json.dumps([
        {"Name": "W3SVC", "DisplayName": "World Wide Web Publishing Service", "State": "Running", "StartMode": "Auto", "ProcessId": 3408},
        {"Name": "WAS", "DisplayName": "Windows Process Activation Service", "State": "Running", "StartMode": "Manual", "ProcessId": 3408},
        {"Name": "WinRM", "DisplayName": "Windows Remote Management (WS-Management)", "State": "Running", "StartMode": "Auto", "ProcessId": 3416},  # noqa: E501
    ])
    texts = {"servicestate": fixture("servicestate", "htb-flight-iis-winrm.txt"), "services": services,
             "netstat": fixture("netstat", "htb-flight-findstr-listening.txt")}
    p = verdict(texts, 8000)
    assert p.registrations[0].services == ["W3SVC", "WAS"]
    assert verdict(texts, 5985).registrations[0].services == ["WinRM"]


def test_knowledge_base_entries_come_from_the_tsv():
    tsv = (ROOT / "remote" / "analysis" / "knowledge" / "KNOWN_URLS.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t")[0] for line in tsv.splitlines()[1:]]
    extra = (ROOT / "remote" / "analysis" / "knowledge" / "LONG_TAIL.tsv").read_text(encoding="utf-8")
    rows += [line.split("\t")[0] for line in extra.splitlines()[1:]]  # issue 13: rows the corpus file lacks
    assert all(len(line.split("\t")) == 7 and line.split("\t")[6].strip() for line in extra.splitlines())
    for p in knowledge.PRODUCTS:
        assert any(r.startswith(p.tsv) for r in rows), p.key
    corpus = ROOT.parent / "shared" / "corpus" / "KNOWN_URLS.tsv"
    if corpus.exists():  # the shipped copy is the corpus file, unchanged
        assert tsv == corpus.read_text(encoding="utf-8")


@pytest.mark.parametrize("path,port,services,queue,key", [
    ("/116B50EB-ECE2-41AC-8429-9F9E963361B7/", 80, [], None, "branchcache"),
    ("/WSMAN/", 80, [], None, "winrm-compat"),
    ("/WSMAN/", 5985, [], None, "winrm"),
    ("/ReportServer/", 80, [], None, "ssrs"),
    ("/Reports_SQL2019/", 80, [], None, "ssrs"),
    ("/MSDEPLOYAGENTSERVICE/", 80, [], None, "webdeploy"),
    ("/", 80, ["W3SVC", "WAS"], "DefaultAppPool", "iis"),
    ("/", 80, [], "SharePoint - 80", "iis"),
    ("/4C2CDC17-BEFE-4441-899A-CC530F03F2DF/", 5357, [], None, "wsd"),
    ("/api/", 80, ["MyApp"], None, "self-hosted"),
])
def test_identify(path, port, services, queue, key):
    assert knowledge.identify(path, port, services, queue).key == key
