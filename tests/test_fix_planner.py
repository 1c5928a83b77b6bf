"""The remediation planner (remote/remediation/plan.py): pure, every skip reason, undo, journal reading."""

from __future__ import annotations

import json

import pytest

from remote.remediation import journal as rj
from remote.remediation import plan as rm
from remote.remediation import render as rr
from remote.analysis.verdicts import HostReport, Listener, PortVerdict, Registration, analyze_evidence, parse_evidence
from remote.remediation.plan import Action, HostFacts, ServiceState

BC_URL = "HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/"


def svc(*items, graph=None) -> HostFacts:
    return HostFacts(services={n.lower(): ServiceState(n, st, mode) for n, st, mode in items}, iplisten=[],
                     graph=graph)


def gs_json(rows) -> str:
    """getservice.json as port80's pipeline gives it (Get-Service | Select-Object … | ConvertTo-Json; a JSON
    shape built from PowerShell's documented behaviour: no real capture of it exists). Rows: (name, status,
    start type, DependentServices, ServicesDependedOn); empty lists are null, as [string[]]$null gives."""
    return json.dumps([{"Name": n, "DisplayName": n, "Status": st, "StartType": mode,
                        "DependentServices": deps or None, "ServicesDependedOn": req or None}
                       for n, st, mode, deps, req in rows], indent=4)


# An IIS host with WCF non-HTTP activation: WAS's dependents are W3SVC and the three listener adapters
# (windows-security.org "Windows Process Activation Service"; dotnet/AspNetCore.Docs#26342: `net stop was
# /y` also stops NetPipeActivator, NetTcpActivator, NetMsmqActivator); NetTcpActivator also needs
# NetTcpPortSharing (W4RH4WK/Debloat-Windows-10#49); WinRM needs NSI, HTTP, RPCSS (a real
# `Get-Service WinRM -RequiredServices`, tests/fixtures/getservice/). W3SVC -> HTTP, WAS -> RPCSS,
# NetMsmqActivator -> MSMQ and RPCSS -> RpcEptMapper, DcomLaunch are the usual `sc qc` lists (no capture).
IIS_WCF = [
    ("DcomLaunch", "Running", "Automatic", ["WinRM", "W3SVC", "WAS", "RpcSs"], []),
    ("MSMQ", "Running", "Automatic", ["NetMsmqActivator"], ["RPCSS"]),
    ("NetMsmqActivator", "Running", "Automatic", [], ["WAS", "MSMQ"]),
    ("NetPipeActivator", "Running", "Automatic", [], ["WAS"]),
    ("NetTcpActivator", "Running", "Automatic", [], ["NetTcpPortSharing", "WAS"]),
    ("NetTcpPortSharing", "Running", "Manual", ["NetTcpActivator"], []),
    ("nsi", "Running", "Automatic", ["WinRM"], []),
    ("RpcEptMapper", "Running", "Automatic", ["WinRM", "W3SVC", "WAS", "RpcSs"], []),
    ("RpcSs", "Running", "Automatic", ["WinRM", "W3SVC", "NetMsmqActivator", "MSMQ", "WAS"],
     ["RpcEptMapper", "DcomLaunch"]),
    ("W3SVC", "Running", "Automatic", [], ["WAS", "HTTP"]),
    ("WAS", "Running", "Manual", ["NetMsmqActivator", "NetPipeActivator", "NetTcpActivator", "W3SVC"], ["RPCSS"]),
    ("WinRM", "Running", "Automatic", [], ["NSI", "HTTP", "RPCSS"]),
]


def iis_wcf_facts(rows=IIS_WCF) -> HostFacts:
    return rm.facts_from_texts({"getservice": gs_json(rows)})


def reg(url=BC_URL, services=("PeerDistSvc",), product_key="branchcache", pids=(2668,), controller=None,
        processes=None, product=None):
    from remote.analysis import knowledge

    prod = knowledge.product(product_key)
    return Registration(url=url, queue="(unnamed)", pids=list(pids), controller_pid=controller,
                        processes=processes if processes is not None else [f"svchost.exe ({p})" for p in pids],
                        services=list(services), product=product or prod.label, product_key=product_key,
                        advice=prod.advice, critical=prod.critical)


def report(*regs, holder=None, listeners=None, status="ok", port=80, address="10.0.0.5", iplisten=()):
    listeners = listeners if listeners is not None else [Listener("0.0.0.0", port, 4, "System")]
    holders = []
    if regs or any(l.pid == 4 for l in listeners):
        holders.append("http.sys")
    if any(l.pid != 4 for l in listeners):
        holders.append("process")
    v = PortVerdict(port=port, holder=holder or ("+".join(holders) or "free"), holders=holders,
                    listeners=listeners, registrations=list(regs), iplisten=list(iplisten))
    return HostReport(host="h1", status=status, address=address, ports=[v])


BC_FACTS = svc(("PeerDistSvc", "Running", "Manual"))


def test_branchcache_plan_exact_commands_and_before():
    plan = rm.plan_host(report(reg()), BC_FACTS)
    assert plan.status == "planned", plan.reason
    assert [a.command for a in plan.actions] == [
        "Stop-Service -Name PeerDistSvc",
        "Set-Service -Name PeerDistSvc -StartupType Disabled",
    ]
    assert plan.actions[0].before == {"state": "Running", "start_mode": "Manual"}
    assert plan.actions[1].before == {"start_mode": "Manual"}
    assert "BranchCache" in plan.actions[0].why and BC_URL in plan.actions[0].why
    assert plan.holder == "http.sys" and "BranchCache" in plan.who


def test_shared_svchost_only_the_products_service():
    r = reg(services=("CryptSvc", "PeerDistSvc", "Dnscache"))
    facts = svc(("PeerDistSvc", "Running", "Auto"), ("CryptSvc", "Running", "Auto"), ("Dnscache", "Running", "Auto"))
    plan = rm.plan_host(report(r), facts)
    assert {a.target for a in plan.actions} == {"PeerDistSvc"}


def test_iis_targets_behind_the_controller_dependents_first():
    r = reg(url="HTTP://*:80/", services=("WAS", "W3SVC"), product_key="iis", pids=(), controller=1864,
            processes=["svchost.exe (1864) controller"])
    plan = rm.plan_host(report(r), iis_wcf_facts())
    assert plan.status == "planned", plan.reason
    assert [a.command for a in plan.actions] == [
        "Stop-Service -Name W3SVC", "Set-Service -Name W3SVC -StartupType Disabled",
        "Stop-Service -Name NetMsmqActivator", "Stop-Service -Name NetPipeActivator",
        "Stop-Service -Name NetTcpActivator",
        "Stop-Service -Name WAS", "Set-Service -Name WAS -StartupType Disabled",
    ]
    adapter = plan.actions[2]
    assert "running dependent of WAS" in adapter.why and "-Force" in adapter.why
    assert adapter.before == {"state": "Running", "start_mode": "Auto"}
    assert plan.stops_with == {"WAS": ["NetMsmqActivator", "NetPipeActivator", "NetTcpActivator", "W3SVC"],
                               "W3SVC": []}
    assert "WAS stops with: NetMsmqActivator, NetPipeActivator, NetTcpActivator, W3SVC" in plan.notes
    assert not any("STOP" in n for n in plan.notes)
    assert not hasattr(rm, "STOP_ORDER")


def test_iis_without_dependency_graph_cannot_be_ordered():
    r = reg(url="HTTP://*:80/", services=("WAS", "W3SVC"), product_key="iis", pids=(), controller=1864)
    plan = rm.plan_host(report(r), svc(("W3SVC", "Running", "Auto"), ("WAS", "Running", "Manual")))
    assert plan.status == "skipped" and "dependency graph is unknown" in plan.reason and not plan.actions
    assert "W3SVC" in plan.reason and "WAS" in plan.reason


def test_one_service_without_graph_planned_with_a_note():
    plan = rm.plan_host(report(reg()), BC_FACTS)
    assert plan.status == "planned"
    assert any("graph is unknown" in n and "-Force" in n for n in plan.notes)


def test_stopped_dependents_stay_out_and_order_follows_the_graph():
    rows = [r if r[0] not in ("NetMsmqActivator", "NetPipeActivator") else (r[0], "Stopped", *r[2:]) for r in IIS_WCF]
    r = reg(url="HTTP://*:80/", services=("W3SVC", "WAS"), product_key="iis", pids=(), controller=1864)
    plan = rm.plan_host(report(r), iis_wcf_facts(rows))
    assert [a.command for a in plan.actions if a.kind == "stop-service"] == [
        "Stop-Service -Name W3SVC", "Stop-Service -Name NetTcpActivator", "Stop-Service -Name WAS"]


def test_refused_when_winrm_needs_a_target_found_through_the_graph():
    # nsi is not in the hand-kept REMOTING_SERVICES: only the graph (WinRM -> NSI) knows the session needs it
    assert "nsi" not in rm.REMOTING_SERVICES
    r = reg(url="HTTP://+:80/x/", services=("nsi",), product_key="self-hosted", pids=(700,))
    plan = rm.plan_host(report(r), iis_wcf_facts(), force_services=["nsi"])
    assert plan.status == "skipped" and not plan.actions
    assert "remoting session" in plan.reason and "(WinRM -> nsi)" in plan.reason and "never" in plan.reason


def test_refused_when_a_dependent_that_would_stop_is_winrm():
    rows = IIS_WCF + [("HttpAgent", "Running", "Automatic", ["WinRM"], [])]
    rows = [r if r[0] != "WinRM" else ("WinRM", "Running", "Automatic", [], ["NSI", "HTTP", "RPCSS", "HttpAgent"])
            for r in rows]
    r = reg(url="HTTP://+:80/agent/", services=("HttpAgent",), product_key="self-hosted", pids=(700,))
    plan = rm.plan_host(report(r), iis_wcf_facts(rows))
    assert plan.status == "skipped" and "(WinRM -> HttpAgent)" in plan.reason


def test_critical_dependent_blocks_unless_forced():
    rows = IIS_WCF + [("LanmanServer", "Running", "Automatic", [], ["WAS"])]
    rows = [r if r[0] != "WAS" else (*r[:3], r[3] + ["LanmanServer"], r[4]) for r in rows]
    r = reg(url="HTTP://*:80/", services=("W3SVC", "WAS"), product_key="iis", pids=(), controller=1864)
    plan = rm.plan_host(report(r), iis_wcf_facts(rows))
    assert plan.status == "skipped" and "LanmanServer would have to stop too" in plan.reason
    assert "--force-service LanmanServer" in plan.reason
    plan = rm.plan_host(report(r), iis_wcf_facts(rows), force_services=["LanmanServer"])
    assert plan.status == "planned" and "Stop-Service -Name LanmanServer" in [a.command for a in plan.actions]


def test_already_stopped_service_only_disabled():
    plan = rm.plan_host(report(reg()), svc(("PeerDistSvc", "Stopped", "Manual")))
    assert [a.kind for a in plan.actions] == ["set-start-mode"]


def test_service_names_case_insensitive():
    plan = rm.plan_host(report(reg(services=("peerdistsvc",))), BC_FACTS)
    assert plan.status == "planned" and plan.actions[0].target == "PeerDistSvc"


# --- every skip reason ------------------------------------------------------------------------------

def test_skip_not_scanned():
    r = HostReport(host="h1", status="timeout", error="no result within the 5 s per-host deadline",
                   ports=[PortVerdict(port=80, holder="unknown")])
    plan = rm.plan_host(r, HostFacts())
    assert plan.status == "skipped" and plan.reason.startswith("not scanned: timeout") and "deadline" in plan.reason


def test_skip_no_verdict_for_port():
    plan = rm.plan_host(report(reg()), BC_FACTS, port=8080)
    assert plan.status == "skipped" and "no verdict for port 8080" in plan.reason


def test_free_port_nothing_to_do():
    plan = rm.plan_host(report(listeners=[]), BC_FACTS)
    assert plan.status == "nothing" and "free" in plan.reason and not plan.actions


def test_skip_unknown_holder():
    r = report(holder="unknown", listeners=[])
    r.ports[0].notes = ["netstat output missing or unreadable: cannot tell whether anything listens"]
    plan = rm.plan_host(r, BC_FACTS)
    assert plan.status == "skipped" and "cannot tell who holds port 80" in plan.reason and "netstat" in plan.reason


def test_skip_user_mode_process():
    r = report(listeners=[Listener("0.0.0.0", 80, 3120, "nginx.exe")])
    plan = rm.plan_host(r, BC_FACTS)
    assert plan.status == "skipped"
    assert "user-mode process" in plan.reason and "nginx.exe" in plan.reason and "does not kill" in plan.reason


def test_skip_both_holders_in_disable_services():
    r = report(reg(), listeners=[Listener("10.0.0.5", 80, 4, "System"), Listener("10.0.0.6", 80, 3120, "httpd.exe")])
    plan = rm.plan_host(r, BC_FACTS)
    assert plan.status == "skipped" and "httpd.exe" in plan.reason


def test_skip_kernel_listener_without_registration():
    plan = rm.plan_host(report(), BC_FACTS)
    assert plan.status == "skipped" and "no registration" in plan.reason


def test_skip_winrm_compat_listener_with_manual_command():
    r = reg(url="HTTP://+:80/WSMAN/", services=("WinRM",), product_key="winrm-compat", pids=(1016,))
    plan = rm.plan_host(report(r), svc(("WinRM", "Running", "Auto")))
    assert plan.status == "skipped" and not plan.actions
    assert "WinRM compatibility listener" in plan.reason and "remoting session" in plan.reason
    assert plan.manual == 'winrm set winrm/config/service @{EnableCompatibilityHttpListener="false"}'
    # not even --force-service gets past it
    plan = rm.plan_host(report(r), svc(("WinRM", "Running", "Auto")), force_services=["WinRM"])
    assert plan.status == "skipped" and not plan.actions


def test_winrm_compat_443_manual_command():
    r = reg(url="HTTPS://+:443/WSMAN/", services=("WinRM",), product_key="winrm-compat", pids=(1016,))
    plan = rm.plan_host(report(r, port=443, listeners=[Listener("0.0.0.0", 443, 4, "System")]),
                        svc(("WinRM", "Running", "Auto")), port=443)
    assert plan.manual == 'winrm set winrm/config/service @{EnableCompatibilityHttpsListener="false"}'


def test_skip_registered_by_a_process_without_service():
    r = reg(url="HTTP://+:80/app/", services=(), product_key="self-hosted", pids=(5120,),
            processes=["MyApp.exe (5120)"])
    plan = rm.plan_host(report(r), BC_FACTS)
    assert plan.status == "skipped" and "MyApp.exe (5120)" in plan.reason and "does not kill" in plan.reason


def test_skip_no_process_attached():
    r = reg(url="HTTP://+:80/x/", services=(), product_key="unknown", pids=(), processes=[])
    plan = rm.plan_host(report(r), BC_FACTS)
    assert plan.status == "skipped" and "no process is attached" in plan.reason


def test_skip_several_services_ambiguous_then_chosen_with_force_service():
    r = reg(url="HTTP://+:80/x/", services=("SvcA", "SvcB"), product_key="self-hosted", pids=(700,))
    facts = svc(("SvcA", "Running", "Auto"), ("SvcB", "Running", "Auto"))
    plan = rm.plan_host(report(r), facts)
    assert plan.status == "skipped" and "several services" in plan.reason and "--force-service" in plan.reason
    plan = rm.plan_host(report(r), facts, force_services=["svcb"])
    assert plan.status == "planned" and {a.target for a in plan.actions} == {"SvcB"}


def test_single_service_of_generic_product():
    r = reg(url="HTTP://+:80/x/", services=("MyHttpSvc",), product_key="self-hosted", pids=(700,))
    plan = rm.plan_host(report(r), svc(("MyHttpSvc", "Running", "Auto")))
    assert plan.status == "planned" and plan.actions[0].target == "MyHttpSvc"


@pytest.mark.parametrize("name", ["HTTP", "Wecsvc", "RpcSs", "WinRM"])
def test_never_remoting_services_even_forced(name):
    r = reg(url="HTTP://+:80/x/", services=(name,), product_key="self-hosted", pids=(700,))
    plan = rm.plan_host(report(r), svc((name, "Running", "Auto")), force_services=[name])
    assert plan.status == "skipped" and "remoting session" in plan.reason and "never" in plan.reason


def test_critical_service_refused_unless_forced():
    r = reg(url="HTTP://+:80/x/", services=("LanmanServer",), product_key="self-hosted", pids=(700,))
    facts = svc(("LanmanServer", "Running", "Auto"))
    plan = rm.plan_host(report(r), facts)
    assert plan.status == "skipped" and "critical" in plan.reason and "--force-service LanmanServer" in plan.reason
    plan = rm.plan_host(report(r), facts, force_services=["LanmanServer", "Other"])
    assert plan.status == "planned"
    assert any("--force-service Other" in n and "ignored" in n for n in plan.notes)


def test_skip_service_states_unknown():
    plan = rm.plan_host(report(reg()), HostFacts(services=None))
    assert plan.status == "skipped" and "service states unknown" in plan.reason


def test_skip_service_not_in_list():
    plan = rm.plan_host(report(reg()), svc(("Other", "Running", "Auto")))
    assert plan.status == "skipped" and "PeerDistSvc is not in the host's service list" in plan.reason


def test_skip_start_mode_unknown_from_tasklist():
    facts = rm.facts_from_texts({"tasklist": "\nImage Name                     PID Services\n"
                                             "========================= ======== ============================================\n"
                                             "svchost.exe                   2668 PeerDistSvc\n"})
    assert facts.service("PeerDistSvc").state == "Running"
    plan = rm.plan_host(report(reg()), facts)
    assert plan.status == "skipped" and "start mode unknown" in plan.reason


def test_skip_start_mode_not_settable():
    plan = rm.plan_host(report(reg()), svc(("PeerDistSvc", "Running", "Boot")))
    assert plan.status == "skipped" and "Boot" in plan.reason


def test_skip_already_stopped_and_disabled():
    plan = rm.plan_host(report(reg()), svc(("PeerDistSvc", "Stopped", "Disabled")))
    assert plan.status == "skipped" and "already stopped and disabled" in plan.reason


# --- iplisten ---------------------------------------------------------------------------------------

def test_iplisten_plan_and_note():
    facts = HostFacts(services={}, iplisten=[])
    plan = rm.plan_host(report(reg()), facts, strategy="iplisten", iplisten=["10.0.0.5"])
    assert plan.status == "planned"
    assert [a.command for a in plan.actions] == ["netsh.exe http add iplisten ipaddress=10.0.0.5"]
    assert plan.actions[0].before == {"iplisten": []}
    assert rm.IPLISTEN_NOTE in plan.notes and "restart" in rm.IPLISTEN_NOTE and "WinRM" in rm.IPLISTEN_NOTE


def test_iplisten_two_addresses_before_state_grows():
    facts = HostFacts(services={}, iplisten=["10.0.0.9"])
    plan = rm.plan_host(report(reg()), facts, strategy="iplisten", iplisten=["10.0.0.5", "10.0.0.9", "10.0.0.7"])
    assert [a.target for a in plan.actions] == ["10.0.0.5", "10.0.0.7"]
    assert plan.actions[0].before == {"iplisten": ["10.0.0.9"]}
    assert plan.actions[1].before == {"iplisten": ["10.0.0.9", "10.0.0.5"]}


def test_iplisten_critical_registration_is_fine():
    # the list restricts addresses, it does not stop WinRM; the connect address is kept
    r = reg(url="HTTP://+:80/WSMAN/", services=("WinRM",), product_key="winrm-compat", pids=(1016,))
    plan = rm.plan_host(report(r), HostFacts(iplisten=[]), strategy="iplisten", iplisten=["10.0.0.5"])
    assert plan.status == "planned"


def test_iplisten_skip_process_only():
    r = report(listeners=[Listener("0.0.0.0", 80, 3120, "nginx.exe")])
    plan = rm.plan_host(r, HostFacts(iplisten=[]), strategy="iplisten", iplisten=["10.0.0.5"])
    assert plan.status == "skipped" and "not HTTP.sys" in plan.reason


def test_iplisten_skip_no_address():
    plan = rm.plan_host(report(reg()), HostFacts(iplisten=[]), strategy="iplisten")
    assert plan.status == "skipped" and "no --iplisten" in plan.reason


def test_iplisten_skip_list_unknown():
    plan = rm.plan_host(report(reg()), HostFacts(iplisten=None), strategy="iplisten", iplisten=["10.0.0.5"])
    assert plan.status == "skipped" and "IP listen list is unknown" in plan.reason


def test_iplisten_skip_when_connect_address_left_out():
    plan = rm.plan_host(report(reg(), address="10.0.0.5"), HostFacts(iplisten=[]), strategy="iplisten",
                        iplisten=["10.0.0.6"])
    assert plan.status == "skipped" and "10.0.0.5" in plan.reason and "WinRM" in plan.reason
    assert "--iplisten h1=10.0.0.5" in plan.reason


def test_iplisten_named_address_only_a_note():
    plan = rm.plan_host(report(reg(), address="web01.corp"), HostFacts(iplisten=[]), strategy="iplisten",
                        iplisten=["10.0.0.6"])
    assert plan.status == "planned" and any("web01.corp" in n for n in plan.notes)


def test_iplisten_already_listed_nothing():
    plan = rm.plan_host(report(reg(), iplisten=["10.0.0.5"]), HostFacts(iplisten=["10.0.0.5"]),
                        strategy="iplisten", iplisten=["10.0.0.5"])
    assert plan.status == "nothing" and "already holds" in plan.reason


def test_parse_iplisten_args():
    common, per = rm.parse_iplisten_args(["10.0.0.5", "h1=10.0.0.6", "h2=::1"], ["h1", "h2"])
    assert common == ["10.0.0.5"] and per == {"h1": ["10.0.0.6"], "h2": ["::1"]}
    assert rm.iplisten_for("h1", common, per) == ["10.0.0.5", "10.0.0.6"]
    assert rm.iplisten_for("h3", common, per) == ["10.0.0.5"]
    with pytest.raises(ValueError, match="not an IP address"):
        rm.parse_iplisten_args(["web01"])
    with pytest.raises(ValueError, match="not among the hosts"):
        rm.parse_iplisten_args(["h9=10.0.0.1"], ["h1"])


# --- with the real analysis --------------------------------------------------------------------------

NETSTAT = """
Active Connections

  Proto  Local Address          Foreign Address        State           PID
  TCP    0.0.0.0:80             0.0.0.0:0              LISTENING       4
  TCP    0.0.0.0:5985           0.0.0.0:0              LISTENING       4
"""
SERVICESTATE = """
Snapshot of HTTP service state (Request Queue View):
-----------------------------------------------------

Request queue name: Request queue is unnamed.
    Version: 2.0
    State: Active
    Request queue 503 verbosity level: Basic
    Max requests: 1000
    Number of active processes attached: 1
    Process IDs:
        2668
    URL groups:
    URL group ID: FE00000340000001
        State: Active
        Request queue name: Request queue is unnamed.
        Number of registered URLs: 1
        Registered URLs:
            HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/
"""
SERVICES = json.dumps([
    {"Name": "PeerDistSvc", "DisplayName": "BranchCache", "State": "Running", "StartMode": "Manual", "ProcessId": 2668},
    {"Name": "WinRM", "DisplayName": "Windows Remote Management", "State": "Running", "StartMode": "Auto", "ProcessId": 1016},
], indent=4)


def test_plan_from_real_analysis_of_texts():
    texts = {"netstat": NETSTAT, "servicestate": SERVICESTATE, "services": SERVICES,
             "iplisten": "\nIP addresses present in the IP listen list:\n-------------------------------------------\n\n"}
    r = analyze_evidence("bc", parse_evidence(texts), [80])
    facts = rm.facts_from_texts(texts)
    assert facts.iplisten == []
    plan = rm.plan_host(r, facts)
    assert plan.status == "planned", plan.reason
    assert [a.command for a in plan.actions] == ["Stop-Service -Name PeerDistSvc",
                                                "Set-Service -Name PeerDistSvc -StartupType Disabled"]


# --- actions, checks, undo --------------------------------------------------------------------------

def test_invocation_matches_command_text():
    for a in [Action("stop-service", "X"), Action("start-service", "X"), Action("set-start-mode", "X", value="Auto"),
              Action("iplisten-add", "10.0.0.5"), Action("iplisten-delete", "10.0.0.5")]:
        cmd, params, native = a.invocation()
        assert a.command.startswith(cmd)
        assert native == a.kind.startswith("iplisten")
    assert Action("set-start-mode", "X", value="Auto").command == "Set-Service -Name X -StartupType Automatic"
    assert Action("iplisten-delete", "10.0.0.5").command == "netsh.exe http delete iplisten ipaddress=10.0.0.5"


def test_check():
    stop = Action("stop-service", "X")
    assert rm.check(stop, {"state": "Stopped"}) is None
    assert "Running" in rm.check(stop, {"state": "Running"})
    assert "not found" in rm.check(stop, None)
    assert rm.check(Action("set-start-mode", "X", value="Auto"), {"start_mode": "Automatic"}) is None
    assert rm.check(Action("set-start-mode", "X", value="Disabled"), {"start_mode": "Manual"})
    assert rm.check(Action("iplisten-add", "10.0.0.5"), ["10.0.0.5"]) is None
    assert rm.check(Action("iplisten-add", "10.0.0.5"), [])
    assert rm.check(Action("iplisten-delete", "10.0.0.5"), []) is None
    assert rm.check(Action("iplisten-delete", "::1"), ["[::1]"])


def test_inverse_roundtrip():
    plan = rm.plan_host(report(reg()), BC_FACTS)
    stop, disable = plan.actions
    assert rm.inverse(stop).command == "Start-Service -Name PeerDistSvc"
    assert rm.inverse(disable).command == "Set-Service -Name PeerDistSvc -StartupType Manual"
    assert rm.inverse(rm.inverse(disable)).command == disable.command
    assert rm.inverse(rm.inverse(stop)).command == stop.command
    add = Action("iplisten-add", "10.0.0.5", before={"iplisten": ["10.0.0.9"]})
    d = rm.inverse(add)
    assert d.command == "netsh.exe http delete iplisten ipaddress=10.0.0.5"
    assert d.before == {"iplisten": ["10.0.0.9", "10.0.0.5"]}
    assert rm.inverse(d).command == add.command
    # nothing to restore when the before-state already was the after-state
    assert rm.inverse(Action("stop-service", "X", before={"state": "Stopped"})) is None


def journal_lines(plan, outcomes, run="r1"):
    lines = [json.dumps({"event": "run", "run": run, "mode": "apply", "port": 80}),
             json.dumps({"event": "host", "run": run, "host": plan.host, "holder": plan.holder, "who": plan.who})]
    for seq, (a, outcome) in enumerate(zip(plan.actions, outcomes), 1):
        if outcome == "-":  # never reached
            continue
        lines.append(json.dumps({"event": "intent", "run": run, "host": plan.host, "seq": seq,
                                 "action": a.to_dict(), "command": a.command}))
        if outcome:
            lines.append(json.dumps({"event": outcome, "run": run, "host": plan.host, "seq": seq,
                                     "error": "boom" if outcome == "failed" else None}))
    return lines


def iis_plan():
    r = reg(url="HTTP://*:80/", services=("W3SVC", "WAS"), product_key="iis", pids=(), controller=1864)
    rows = [r for r in IIS_WCF if not r[0].startswith("Net")]
    rows = [r if r[0] != "WAS" else (*r[:3], ["W3SVC"], r[4]) for r in rows]
    return rm.plan_host(report(r), iis_wcf_facts(rows))


def test_undo_restarts_the_dependents_after_what_they_need():
    r = reg(url="HTTP://*:80/", services=("W3SVC", "WAS"), product_key="iis", pids=(), controller=1864)
    plan = rm.plan_host(report(r), iis_wcf_facts())
    (u,) = rj.undo_plans(rj.read_journal(journal_lines(plan, ["applied"] * len(plan.actions))))
    assert [a.command for a in u.actions] == [
        "Set-Service -Name WAS -StartupType Manual", "Start-Service -Name WAS",
        "Start-Service -Name NetTcpActivator", "Start-Service -Name NetPipeActivator",
        "Start-Service -Name NetMsmqActivator",
        "Set-Service -Name W3SVC -StartupType Automatic", "Start-Service -Name W3SVC",
    ]


def test_undo_of_a_partial_apply_reverse_order():
    plan = iis_plan()
    # W3SVC stopped + disabled, WAS stop failed, WAS disable never ran
    j = rj.read_journal(journal_lines(plan, ["applied", "applied", "failed", "-"]))
    assert len(j.entries) == 3 and j.entries[2].outcome == "failed"
    (u,) = rj.undo_plans(j)
    assert u.status == "planned" and u.holder == "http.sys"
    assert [a.command for a in u.actions] == ["Set-Service -Name W3SVC -StartupType Automatic",
                                              "Start-Service -Name W3SVC"]
    assert any("not undone" in n and "Stop-Service -Name WAS" in n for n in u.notes)


def test_undo_restores_intent_without_result():
    plan = iis_plan()
    j = rj.read_journal(journal_lines(plan, ["applied", None]))
    (u,) = rj.undo_plans(j)
    assert [a.command for a in u.actions] == ["Set-Service -Name W3SVC -StartupType Automatic",
                                              "Start-Service -Name W3SVC"]
    assert "outcome unknown" in u.actions[0].why


def test_read_journal_torn_line_and_orphans():
    plan = rm.plan_host(report(reg()), BC_FACTS)
    lines = journal_lines(plan, ["applied", "applied"])
    lines.append('{"event": "intent", "run": "r1", "host": "h1", "se')
    lines.append(json.dumps({"event": "applied", "run": "r1", "host": "h1", "seq": 9}))
    j = rj.read_journal(lines)
    assert len(j.entries) == 2 and len(j.warnings) == 2
    (u,) = rj.undo_plans(j)
    assert [a.kind for a in u.actions] == ["set-start-mode", "start-service"]


def test_undo_nothing_when_everything_failed():
    plan = rm.plan_host(report(reg()), BC_FACTS)
    (u,) = rj.undo_plans(rj.read_journal(journal_lines(plan, ["failed"])))
    assert u.status == "nothing" and not u.actions


def test_verify_words():
    plan = rm.plan_host(report(reg()), BC_FACTS)
    assert rm.verify(plan, report(listeners=[])) == "free"
    assert rm.verify(plan, report(reg())).startswith("still held by BranchCache")
    assert rm.verify(plan, HostReport(host="h1", status="timeout", error="x")).startswith("unknown (timeout")
    assert rm.verify(plan, None).startswith("unknown")
    ip = rm.plan_host(report(reg()), HostFacts(iplisten=[]), strategy="iplisten", iplisten=["10.0.0.5"])
    assert rm.verify(ip, report(reg(), listeners=[Listener("10.0.0.5", 80, 4, "System")])).startswith("restricted")
    assert rm.verify(ip, report(reg())).startswith("not restricted")


def test_render_plans_formats():
    plans = [rm.plan_host(report(reg()), BC_FACTS),
             rm.plan_host(report(reg(url="HTTP://+:80/WSMAN/", services=("WinRM",), product_key="winrm-compat")),
                          svc(("WinRM", "Running", "Auto")))]
    plans[1].host = "h2"
    text = rr.render_plans(plans, "table")
    assert "Stop-Service -Name PeerDistSvc" in text and "EnableCompatibilityHttpListener" in text
    md = rr.render_plans(plans, "markdown")
    assert md.splitlines()[1].startswith("|--")
    doc = json.loads(rr.render_plans(plans, "json"))
    assert doc["hosts"][0]["actions"][0]["command"] == "Stop-Service -Name PeerDistSvc"
    assert doc["hosts"][1]["status"] == "skipped" and doc["hosts"][1]["manual"]
