"""Get-Service evidence: the parser on every real shape (tests/fixtures/getservice/README.md) and on the JSON
port80's pipeline gives, and the dependency graph built from it (remote/analysis/servicegraph.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remote.analysis.servicegraph import build_graph, chain, dependents_of, graph_from_text, remoting_needs, \
    requirements_of, stop_order
from remote.parsers import PARSERS, parse_getservice

FIX = Path(__file__).parent / "fixtures"


def read(rel: str) -> str:
    return (FIX / rel).read_bytes().decode("utf-8")


def test_registered_as_a_parser():
    assert PARSERS["getservice"] is parse_getservice


def test_real_format_list_dependent_services_and_cut_list():
    res = parse_getservice(read("getservice/intelligent-silicon-win-get-service-dependentservices-format-list.txt"))
    by = {s.name: s for s in res.services}
    assert list(by) == ["AppIDSvc", "AudioEndpointBuilder", "Audiosrv", "BFE"]
    assert by["AppIDSvc"].dependents == ["applockerfltr"] and by["AppIDSvc"].line == 3
    assert by["AudioEndpointBuilder"].dependents == ["AarSvc_471cf", "RtkAudioUniversalService", "AarSvc", "Audiosrv"]
    assert by["BFE"].dependents is None  # {ZTDNS, XboxNetApiSvc, webthreatdefsvc, wtd...}: cut, 12 in all
    assert any("BFE" in w and "cut" in w for w in res.warnings)
    assert not res.has_graph


def test_real_required_services_table():
    res = parse_getservice(read("getservice/intelligent-silicon-win-get-service-winrm-requiredservices.txt"))
    assert [(s.name, s.status, s.line) for s in res.services] == [
        ("NSI", "Running", 4), ("HTTP", "Running", 5), ("RPCSS", "Running", 6)]
    assert res.services[1].display_name == "HTTP Service" and res.services[1].dependents is None


@pytest.mark.parametrize("rel,cut", [
    ("getservice/intelligent-silicon-win-get-service-wmi-star-ellipsis.txt", "WMIRegistration..."),
    ("services/msdocs-ps51-get-service-win-ascii-ellipsis.txt", "WinHttpAutoProx..."),
    ("services/ps76-win11-get-service-unicode-ellipsis-excerpt.txt", "AMD Crash Defende\u2026"),
])
def test_real_default_tables_flag_cut_names(rel, cut):
    res = parse_getservice(read(rel))
    assert res.error is None and res.services
    assert [s.name for s in res.services if s.name_cut][0] == cut
    assert all(s.status in ("Running", "Stopped") for s in res.services)
    assert build_graph(res) is None  # a table has no dependency lists


PS51 = '''[
    {
        "Name":  "W3SVC",
        "DisplayName":  "World Wide Web Publishing Service",
        "Status":  "Running",
        "StartType":  "Automatic",
        "DependentServices":  null,
        "ServicesDependedOn":  [
                                   "WAS",
                                   "HTTP"
                               ]
    },
    {
        "Name":  "WAS",
        "DisplayName":  "Windows Process Activation Service",
        "Status":  "Running",
        "StartType":  "Manual",
        "DependentServices":  [
                                  "NetPipeActivator",
                                  "W3SVC"
                              ],
        "ServicesDependedOn":  [
                                   "RPCSS"
                               ]
    },
    {
        "Name":  "NetPipeActivator",
        "DisplayName":  "Net.Pipe Listener Adapter",
        "Status":  "Stopped",
        "StartType":  "",
        "DependentServices":  null,
        "ServicesDependedOn":  "WAS"
    }
]'''


def test_pipeline_json_ps51_shape():
    # built from Windows PowerShell 5.1's ConvertTo-Json layout (no real capture of this pipeline exists)
    res = parse_getservice("\ufeff" + PS51.replace("\n", "\r\n"))
    assert res.warnings == [] and res.has_graph
    w3, was, pipe = res.services
    assert (w3.status, w3.start_type, w3.dependents, w3.depends_on, w3.line) == (
        "Running", "Auto", [], ["WAS", "HTTP"], 3)
    assert was.dependents == ["NetPipeActivator", "W3SVC"] and was.line == 14
    assert pipe.start_type is None and pipe.depends_on == ["WAS"] and pipe.status == "Stopped"


def test_pipeline_json_variants_enums_wrapper_objects_single():
    one = {"Name": "WAS", "Status": 4, "StartType": 3,
           "DependentServices": {"value": ["W3SVC"], "Count": 1},
           "ServicesDependedOn": [{"Name": "RPCSS", "Status": 4}]}
    res = parse_getservice(json.dumps(one))
    (s,) = res.services
    assert (s.status, s.start_type, s.dependents, s.depends_on) == ("Running", "Manual", ["W3SVC"], ["RPCSS"])
    res = parse_getservice(json.dumps([{"Name": "X", "DependentServices": 5}]))
    assert res.services[0].dependents is None and "not a list of names" in res.warnings[0]


def test_errors_and_garbage_never_raise():
    assert parse_getservice("Get-Service : Access is denied").error
    assert parse_getservice(None).services == []
    assert parse_getservice("[{").services == []
    assert graph_from_text(None) is None and graph_from_text("junk") is None


def graph():
    return graph_from_text(PS51)


def test_graph_dependents_requirements_and_order():
    g = graph()
    assert dependents_of(g, "was") == ["NetPipeActivator", "W3SVC"]
    assert dependents_of(g, "WAS", running_only=True) == ["W3SVC"]
    assert requirements_of(g, "W3SVC") == ["HTTP", "WAS", "RPCSS"]
    assert stop_order(g, ["WAS", "NetPipeActivator", "W3SVC"]) == ["NetPipeActivator", "W3SVC", "WAS"]
    assert chain(g, "W3SVC", "rpcss") == ["W3SVC", "WAS", "RPCSS"]
    assert g.running("HTTP")  # a driver Get-Service does not list counts as running


def test_remoting_needs_from_winrm():
    g = graph_from_text(json.dumps([
        {"Name": "WinRM", "Status": "Running", "DependentServices": None, "ServicesDependedOn": ["NSI", "HTTP", "RPCSS"]},
        {"Name": "RpcSs", "Status": "Running", "DependentServices": ["WinRM"], "ServicesDependedOn": ["RpcEptMapper"]},
    ]))
    needs = remoting_needs(g)
    assert needs["rpcss"] == ["WinRM", "RpcSs"] and needs["rpceptmapper"] == ["WinRM", "RpcSs", "RpcEptMapper"]
    assert set(needs) == {"winrm", "nsi", "http", "rpcss", "rpceptmapper"}


# --- the graph in the analysis and in port80 explain --------------------------------------------------------


def demo_bundle(name: str):
    from remote.evidence.bundle import read_bundle
    from remote.lab.fleet import demo_fleet_dir

    return read_bundle(Path(demo_fleet_dir()) / name)


def test_unreadable_getservice_makes_the_host_partial_but_analysis_works():
    from remote.analysis.verdicts import analyze_evidence, parse_evidence

    b = demo_bundle("iis-worker")
    ok = analyze_evidence("h", parse_evidence(b.texts), [80])
    assert ok.status == "ok" and ok.ports[0].holder == "http.sys"
    texts = dict(b.texts, getservice="Get-Service : Access is denied")
    bad = analyze_evidence("h", parse_evidence(texts), [80])
    assert bad.status == "partial" and "getservice.json" in bad.error
    assert bad.ports[0].holder == "http.sys" and bad.ports[0].registrations  # the verdict still stands
    table = analyze_evidence("h", parse_evidence(dict(b.texts, getservice=read(
        "services/msdocs-ps51-get-service-win-ascii-ellipsis.txt"))), [80])
    assert table.status == "ok" and any("dependency lists" in w for w in table.warnings)


def test_explain_says_what_stops_with_each_service():
    from remote.analysis.verdicts import analyze_bundle
    from remote.report.explain import explain

    b = demo_bundle("iis-worker")
    text = explain(analyze_bundle(b, [80]), 80, b.texts)
    line = next(ln for ln in text.splitlines() if "stopping WAS also stops" in ln)
    for s in ("W3SVC", "NetMsmqActivator", "NetPipeActivator", "NetTcpActivator"):
        assert s in line
    g = graph_from_text(b.texts["getservice"])
    assert set(dependents_of(g, "WAS", running_only=True)) == {
        "W3SVC", "NetMsmqActivator", "NetPipeActivator", "NetTcpActivator"}
