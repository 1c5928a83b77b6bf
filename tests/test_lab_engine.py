"""The lab's Windows emulation (remote/lab/engine/host.py, remote/lab/engine/commands.py) without any network:
statements in, what Windows would answer out; the demo fleet's bundles are complete and consistent."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from psrpcore.types import PSCustomObject, PSUInt

from remote.lab import api
from remote.lab.engine import commands
from remote.lab.fleet import demo_fleet_dir, demo_hosts, expected_verdicts
from remote.lab.engine.host import FILES, LabHost, parse_queues
from remote.evidence.textio import decode_text

C = api.Command
BUNDLES = demo_hosts()
NAMES = [b.name for b in BUNDLES]
EXPECTED = {e["host"]: e for e in expected_verdicts()}


def cmdline(text: str) -> list[api.Statement]:
    return [[C(text, is_script=True)]]


def host(name: str) -> LabHost:
    return LabHost.from_bundle(demo_fleet_dir() / name)


def file_texts(bundle: Path) -> dict[str, str]:
    return {f: decode_text((bundle / f).read_bytes()) for f in FILES.values() if (bundle / f).is_file()}


def netstat_rows(text: str) -> list[commands.NetRow]:
    return [r for r in (commands.parse_netstat_row(ln) for ln in commands.native_lines(text)) if r]


# --- the fleet --------------------------------------------------------------------------------------------

def test_fleet_has_the_required_hosts():
    required = {"branchcache", "iis-worker", "iis-idle", "ssrs", "nginx", "free", "iplisten-split", "winrm-compat",
                "server2022-processes", "not-elevated", "faulty-auth", "faulty-hang", "faulty-wsman"}
    assert required <= set(NAMES)
    assert set(EXPECTED) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_bundle_loads_and_snapshots_its_files(name):
    b = demo_fleet_dir() / name
    h = LabHost.from_bundle(b)
    assert h.name == name and h.bundle_dir == b
    assert h.snapshot() == file_texts(b)
    assert h.psversion["PSVersion"].startswith("5.1.") and h.psversion["PSEdition"] == "Desktop"
    meta = json.loads((b / "host.json").read_text())
    assert meta["hostname"] == h.hostname and re.match(r"^10\.0\.\d+", meta["os_version"])
    assert h.psversion["BuildVersion"].startswith(meta["os_version"].rsplit(".", 1)[0])


@pytest.mark.parametrize("name", NAMES)
def test_bundle_files_are_consistent(name):
    b = demo_fleet_dir() / name
    t = file_texts(b)
    exp = EXPECTED[name]
    services = json.loads(t["services.json"])
    procs = json.loads(t["processes.json"])
    proc_pids = {p["Id"] for p in procs}
    tasks = commands.parse_tasklist_svc(t["tasklist.txt"])
    assert {e["pid"] for e in tasks} == proc_pids  # tasklist and Get-Process agree
    assert 40 <= len(services) <= 120
    running = {s["Name"]: s["ProcessId"] for s in services if s["State"] == "Running"}
    assert all(s["ProcessId"] == 0 for s in services if s["State"] != "Running")
    assert set(running.values()) <= proc_pids
    by_pid: dict[int, set[str]] = {}
    for n, pid in running.items():
        by_pid.setdefault(pid, set()).add(n)
    for e in tasks:
        assert set(e["services"]) == by_pid.get(e["pid"], set()), e
    # netstat: realistic, every PID a process
    rows = netstat_rows(t["netstat.txt"])
    assert 15 <= len(rows) <= 45
    ports = {(r.local_port, r.pid) for r in rows if r.state == "LISTENING"}
    for port in (135, 445):
        assert any(p == port for p, _ in ports)
    assert {r.pid for r in rows} <= proc_pids | {0}
    assert t["netstat.txt"].startswith("\r\nActive Connections\r\n\r\n" + commands.NETSTAT_HEADER + "\r\n")
    # HTTP.sys: every queue PID is a service process or a process; WinRM's queue holds 5985/47001
    if "requires elevation" not in t["servicestate.txt"]:
        queues = parse_queues(t["servicestate.txt"])
        assert queues
        for q in queues:
            for pid in q.pids + ([q.controller] if q.controller else []):
                assert pid in proc_pids or pid in running.values(), (q.urls, pid)
        winrm = [q for q in queues if "HTTP://+:5985/WSMAN/" in q.urls]
        assert winrm and "HTTP://+:47001/WSMAN/" in winrm[0].urls and winrm[0].pids == [running["WinRM"]]
        assert any(p == 5985 and pid == 4 for p, pid in ports) and any(p == 47001 and pid == 4 for p, pid in ports)
        urls80 = [u for q in queues if 80 in q.ports() for u in q.urls if re.search(r":80[/:]", u)]
        holder = exp["holder"] if isinstance(exp["holder"], list) else [exp["holder"]]
        assert bool(urls80) == ("http.sys" in holder)
        assert sorted(urls80) == sorted(exp["urls"])
        q80 = [q for q in queues if 80 in q.ports()]
        svcs80: set[str] = set()  # the services behind every port-80 queue (one queue per IIS app pool)
        for q in q80:
            assert set(q.pids) <= set(exp["pids"])
            if exp.get("controller_pid") and q.controller is not None:
                assert q.controller == exp["controller_pid"]
            svcs80 |= {n for n, pid in running.items() if pid in q.pids + ([q.controller] if q.controller else [])}
        if q80:
            assert svcs80 == set(exp["services"]) - {"Apache2.4"}
    # netstat PID-4 port-80 listeners exactly where EXPECTED says http.sys; user-mode ones where "process"
    holder = exp["holder"] if isinstance(exp["holder"], list) else [exp["holder"]]
    kernel80 = [r for r in rows if r.local_port == 80 and r.state == "LISTENING" and r.pid == 4]
    user80 = [r for r in rows if r.local_port == 80 and r.state == "LISTENING" and r.pid != 4]
    assert bool(kernel80) == ("http.sys" in holder)
    assert bool(user80) == ("process" in holder)
    if user80:
        assert {r.pid for r in user80} <= set(exp["pids"])
    if holder == ["free"]:
        assert not kernel80 and not user80
    # iplisten: the real layout; a non-empty list binds HTTP.sys's listeners to its addresses only
    il = t["iplisten.txt"]
    if "requires elevation" not in il:
        lines = il.split("\r\n")
        assert lines[:4] == ["", commands.IPLISTEN_TITLE, "-" * 43, ""]
        addrs = [ln.strip() for ln in lines[4:] if ln.strip()]
        assert addrs == exp.get("iplisten", [])
        for r in kernel80:
            assert r.local_addr in (addrs or ["0.0.0.0", "[::]"])
    # host.json fault = EXPECTED fault
    lab = json.loads((b / "host.json").read_text()).get("lab", {})
    assert ((lab.get("fault") or {}).get("kind")) == exp["fault"]
    # urlacl: the default set, reservations on 80 never missing Temporary_Listen_Addresses
    if "requires elevation" not in t["urlacl.txt"]:
        assert "    Reserved URL            : http://+:80/Temporary_Listen_Addresses/\r\n" in t["urlacl.txt"]
        assert t["urlacl.txt"].startswith("\r\nURL Reservations:\r\n-----------------\r\n\r\n")


def test_branchcache_reservation_keeps_its_mixed_case():
    t = file_texts(demo_fleet_dir() / "branchcache")
    assert "http://+:80/116B50EB-ECE2-41ac-8429-9F9E963361B7/\r\n        User: NT AUTHORITY\\NETWORK SERVICE" \
        in t["urlacl.txt"]
    assert "HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/" in t["servicestate.txt"]


def test_server2022_uses_the_processes_shape():
    t = file_texts(demo_fleet_dir() / "server2022-processes")
    assert re.search(r"\n        Processes:\r\n            ID: \d+, image: C:\\", t["servicestate_session.txt"])
    assert "Snapshot of HTTP service state (Server Session View): \r\n" + "-" * 53 + " \r\n" \
        in t["servicestate_session.txt"]


# --- reading: what a scan sends gets the bundle back byte for byte -----------------------------------------

SCAN = {
    "netstat.txt": [[C("netstat.exe", parameters=[(None, "-ano")]), C("Out-String")]],
    "servicestate.txt": [[C("netsh.exe", parameters=[(None, "http"), (None, "show"), (None, "servicestate"),
                                                   (None, "view=requestq")]), C("Out-String")]],
    "urlacl.txt": cmdline("netsh.exe http show urlacl | Out-String"),
    "iplisten.txt": cmdline("netsh.exe http show iplisten | Out-String"),
    "tasklist.txt": cmdline("tasklist.exe /svc | Out-String"),
    "services.json": [[C("Get-CimInstance", parameters=[("ClassName", "Win32_Service")]),
                       C("Select-Object", parameters=[("Property", ["Name", "DisplayName", "State", "StartMode",
                                                                    "ProcessId"])]),
                       C("ConvertTo-Json")]],
    "processes.json": cmdline("Get-Process | Select-Object Id,ProcessName,Path | ConvertTo-Json"),
}


@pytest.mark.parametrize("name", NAMES)
def test_scan_pipelines_return_the_bundle_exactly(name):
    h = host(name)
    files = file_texts(demo_fleet_dir() / name)
    for fname, statements in SCAN.items():
        ex = h.run(statements)
        assert not ex.failed and not ex.errors, (fname, ex.failure, ex.errors)
        assert ex.output == [files[fname]], fname
        assert not ex.changed_state


def test_cmdlet_and_script_forms_are_the_same_pipeline():
    h = host("iis-worker")
    a = h.run([[C("Get-CimInstance", parameters=[(None, "Win32_Service")]),
                C("Select-Object", parameters=[(None, ["Name", "ProcessId"])])]])
    b = h.run(cmdline("Get-CimInstance -ClassName:Win32_Service | Select-Object -Property Name, ProcessId"))
    assert [o.PSObject.extended_properties[0].name for o in a.output][:1] == ["Name"]
    key = lambda ex: [(o.Name, int(o.ProcessId)) for o in ex.output]  # noqa: E731
    assert key(a) == key(b) and len(a.output) > 40
    assert h.command_log[0]["key"] == "Get-CimInstance Win32_Service | Select-Object Name,ProcessId"
    assert h.command_log[1]["key"].startswith("Get-CimInstance -ClassName:Win32_Service")


def test_execute_ps_form_returns_one_string_per_line():
    h = host("nginx")
    ex = h.run([[C("Invoke-Expression", parameters=[("Command", "netstat.exe -ano")]),
                 C("Out-String", parameters=[("Stream", True)])]])
    text = file_texts(demo_fleet_dir() / "nginx")["netstat.txt"]
    assert "\n".join(ex.output) == "\n".join(text.split("\r\n")[:-1])


def test_native_output_without_out_string_is_lines():
    h = host("free")
    ex = h.run([[C("hostname.exe")], [C("whoami")]])
    assert ex.output == ["APP-BATCH03", "app-batch03\\administrator"]
    assert all(type(x) is str for x in ex.output)


def test_out_string_passes_a_non_crlf_bundle_through_unchanged():
    text = "\nActive Connections\n\n" + commands.NETSTAT_HEADER + "\n" + \
        commands.netstat_row("TCP", "0.0.0.0:80", "0.0.0.0:0", "LISTENING", 4)  # LF, no final newline
    h = LabHost("lf", None, {"netstat": text}, {"hostname": "LF01"})
    assert h.run(cmdline("netstat -ano | Out-String")).output == [text]
    # a partial line set is joined the Windows way
    ex = h.run(cmdline("netstat -an | Out-String"))
    assert ex.output[0].endswith("LISTENING\r\n") and "PID" not in ex.output[0]


def test_netstat_variants():
    h = host("iis-worker")
    tcp = h.run(cmdline("netstat -ano -p tcp"))
    assert all(ln.startswith("  TCP    ") and "[" not in ln for ln in tcp.output if ln.startswith("  ") and
               not ln.startswith("  Proto"))
    noa = h.run(cmdline("netstat -no")).output
    assert not any("LISTENING" in ln for ln in noa) and any("ESTABLISHED" in ln for ln in noa)
    b = h.run(cmdline("netstat -abno")).output
    assert " Can not obtain ownership information" in b and any(x == " [svchost.exe]" for x in b)
    assert host("not-elevated").run(cmdline("netstat -abno")).output == [commands.ELEVATION_NETSTAT, ""]


def test_tasklist_synthesized_when_missing_and_filters():
    b = demo_fleet_dir() / "iis-worker"
    t = {k: (decode_text((b / f).read_bytes()) if (b / f).is_file() else None) for k, f in FILES.items()}
    original = t.pop("tasklist")
    meta = json.loads((b / "host.json").read_text())
    h = LabHost("x", None, {**t, "tasklist": None}, meta)
    out = h.run(cmdline("tasklist /svc | Out-String")).output[0]
    assert out.splitlines()[:3] == ["", *commands.TASKLIST_SVC_HEADER]
    assert sorted(out.splitlines()[3:]) == sorted(original.splitlines()[3:])  # same rows, Get-Process order
    one = host("ssrs")
    pid = EXPECTED["ssrs"]["pids"][0]
    lines = one.run(cmdline(f'tasklist /FI "PID eq {pid}"')).output
    assert lines[1].startswith("Image Name                     PID Session Name") and \
        lines[3].startswith("RSHostingService.exe") and lines[3].split()[1] == str(pid)
    assert one.run(cmdline('tasklist /FI "PID eq 99999"')).output == [
        "INFO: No tasks are running which match the specified criteria."]


# --- objects ------------------------------------------------------------------------------------------------

def test_cim_and_wmi_service_objects():
    h = host("iis-worker")
    ex = h.run(cmdline("Get-CimInstance -ClassName Win32_Service -Filter \"Name='W3SVC'\""))
    (o,) = ex.output
    assert isinstance(o, PSCustomObject)
    assert o.PSObject.type_names[0] == "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Service"
    assert "Microsoft.Management.Infrastructure.CimInstance#Win32_Service" in o.PSObject.type_names
    assert isinstance(o.ProcessId, PSUInt) and int(o.ProcessId) == EXPECTED["iis-worker"]["controller_pid"]
    assert o.State == "Running" and o.StartMode == "Auto" and o.Status == "OK" and o.ServiceType == "Share Process"
    assert o.PathName == "C:\\Windows\\system32\\svchost.exe -k iissvcs -p"
    w = h.run(cmdline("Get-WmiObject -Class Win32_Service -Filter \"Name='W3SVC'\"")).output[0]
    assert w.PSObject.type_names[0] == "System.Management.ManagementObject#root\\cimv2\\Win32_Service"
    assert w.__CLASS == "Win32_Service" and w.PSComputerName == "WEB-PRD-01"
    sel = h.run(cmdline("Get-WmiObject Win32_Service | Select-Object Name,State -First 1")).output[0]
    assert sel.PSObject.type_names == ["Selected.System.Management.ManagementObject",
                                       "System.Management.Automation.PSCustomObject", "System.Object"]
    assert sel.PSObject.to_string.startswith("@{Name=")
    like = h.run(cmdline("Get-CimInstance Win32_Service -Filter \"Name LIKE 'W3%' OR ProcessId = 0\"")).output
    assert like and all(x.Name.startswith("W3") or int(x.ProcessId) == 0 for x in like)
    assert {"W3SVC", "W32Time", "ALG"} <= {x.Name for x in like}
    bad = h.run(cmdline("Get-CimInstance -ClassName Win32_Nope"))
    assert not bad.failed and bad.errors[0].message == "Invalid class " and bad.errors[0].category == 10


def test_operating_system_and_services_and_processes():
    h = host("server2022-processes")
    os_ = h.run(cmdline("Get-CimInstance -ClassName Win32_OperatingSystem")).output[0]
    assert (os_.CSName, os_.Caption, os_.Version, os_.BuildNumber, int(os_.OSLanguage)) == (
        "OPS-API02", "Microsoft Windows Server 2022 Standard", "10.0.20348", "20348", 1033)
    svc = h.run(cmdline("Get-Service -Name WinRM")).output[0]
    assert svc.PSObject.type_names[0] == "System.ServiceProcess.ServiceController"
    assert (svc.Status, svc.StartType, svc.DisplayName) == ("Running", "Automatic",
                                                            "Windows Remote Management (WS-Management)")
    miss = h.run(cmdline("Get-Service -Name NoSuchSvc; Write-Output after"))
    assert not miss.failed and miss.output == ["after"]
    assert miss.errors[0].message == "Cannot find any service with service name 'NoSuchSvc'."
    assert miss.errors[0].fully_qualified_error_id == \
        "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand"
    pid = EXPECTED["server2022-processes"]["pids"][0]
    p = h.run(cmdline(f"Get-Process -Id {pid}")).output[0]
    assert p.ProcessName == "Contoso.Orders.Api" and p.Path.endswith("Contoso.Orders.Api.exe")
    assert p.PSObject.type_names[0] == "System.Diagnostics.Process"
    ids = h.run(cmdline("Get-Process | Select-Object -ExpandProperty Id")).output
    assert pid in ids and 4 in ids
    text = h.run(cmdline("Get-Service WinRM,W32Time | Out-String")).output[0]
    assert text.split("\r\n")[1:3] == ["Status   Name               DisplayName",
                                       "------   ----               -----------"]
    listing = h.run(cmdline("Get-CimInstance Win32_Service -Filter \"Name='WinRM'\" | "
                            "Select-Object Name,DisplayName,State,StartMode,ProcessId | Out-String")).output[0]
    assert "\r\nName        : WinRM\r\nDisplayName : Windows Remote Management (WS-Management)\r\n" in listing
    where = h.run(cmdline("Get-Service | Where-Object { $_.Status -eq 'Running' } | Select-Object -First 3"))
    assert len(where.output) == 3 and all(x.Status == "Running" for x in where.output)


def test_convert_to_json_is_windows_powershell_51():
    h = host("free")
    out = h.run(cmdline("Get-Service -Name WinRM | Select-Object Name,CanStop | ConvertTo-Json")).output
    assert out == ['{\r\n    "Name":  "WinRM",\r\n    "CanStop":  true\r\n}']
    out = h.run(cmdline("Get-Service -Name WinRM,W32Time | Select-Object Name | ConvertTo-Json -Compress")).output
    assert out == ['[{"Name":"WinRM"},{"Name":"W32Time"}]']  # in the order the names were given
    assert commands.json_compact("it's <a&b>") == '"it\\u0027s \\u003ca\\u0026b\\u003e"'
    nested = commands.json_pretty(commands.json_compact({"a": [1, 2], "bb": {"c": None}}))
    assert nested == ('{\r\n    "a":  [\r\n              1,\r\n              2\r\n          ],\r\n'
                      '    "bb":  {\r\n               "c":  null\r\n           }\r\n}')


def test_admin_check():
    check = ("([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent())"
             ".IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)")
    assert host("free").run(cmdline(check)).output == [True]
    assert host("not-elevated").run(cmdline(check)).output == [False]
    ex = host("free").run([[C("Invoke-Expression", parameters=[("Command", check)]), C("Out-String", parameters=[
        ("Stream", True)])]])
    assert ex.output == ["True"]


# --- errors -------------------------------------------------------------------------------------------------

def test_unknown_command_fails_the_pipeline():
    ex = host("free").run([[C("Get-Frobnicator", parameters=[("Name", "x")]), C("Out-String")]])
    assert ex.failed and ex.output == [] and ex.errors == []
    f = ex.failure
    assert f.message == ("The term 'Get-Frobnicator' is not recognized as the name of a cmdlet, function, script "
                         "file, or operable program. Check the spelling of the name, or if a path was included, "
                         "verify that the path is correct and try again.")
    assert (f.fully_qualified_error_id, f.category, f.exception_type, f.target) == (
        "CommandNotFoundException", 13, "System.Management.Automation.CommandNotFoundException", "Get-Frobnicator")


def test_unknown_command_later_in_the_pipe_stops_the_whole_statement():
    h = host("ssrs")
    ex = h.run([[C("Stop-Service", parameters=[("Name", "SQLServerReportingServices")]), C("Nope-Nope")]])
    assert ex.failed and not ex.changed_state
    assert h.snapshot() == file_texts(demo_fleet_dir() / "ssrs")


def test_unknown_command_in_a_script_is_an_error_record_and_the_script_goes_on():
    ex = host("free").run(cmdline("Get-Frobnicator; hostname"))
    assert not ex.failed and ex.output == ["APP-BATCH03"]
    assert ex.errors[0].fully_qualified_error_id == "CommandNotFoundException"
    # variables are PowerShell, not an unknown command (remote/lab/engine/interp.py)
    ex = host("free").run(cmdline("$x = 1; $x"))
    assert not ex.errors and [str(o) for o in ex.output] == ["1"]


def test_multiple_statements_stop_at_the_failing_one_but_later_ones_still_run():
    h = host("ssrs")
    ex = h.run([[C("hostname.exe")], [C("Get-Frobnicator")],
                [C("Stop-Service", parameters=[("Name", "SQLServerReportingServices")])], [C("whoami.exe")]])
    assert ex.failed and ex.failure.target == "Get-Frobnicator"
    assert ex.output == ["BI-REPORT01"]  # nothing after the failure reaches the client
    assert ex.changed_state  # …but the Stop-Service ran on the host
    assert "REPORTSERVER" not in h.snapshot()["servicestate.txt"]


def test_parameter_binding_errors():
    h = host("free")
    ex = h.run([[C("Get-Service", parameters=[("Bogus", "x")])]])
    assert ex.failed and ex.failure.fully_qualified_error_id == \
        "NamedParameterNotFound,Microsoft.PowerShell.Commands.GetServiceCommand"
    ex = h.run(cmdline("Get-Process -Id abc"))
    assert not ex.failed and ex.errors[0].category == 5


def test_tokenizer():
    st = commands.tokenize_script("netsh.exe http show servicestate view=requestq | Out-String; "
                                  "Select-Object -Property:'A b',\"C\" , d -First 2\nStop-Service -Name X -Force")
    assert len(st) == 3 and len(st[0]) == 2
    toks = st[1][0]
    assert toks[1].param == "Property" and toks[1].attached == ["A b", "C", "d"]
    assert (toks[2].param, toks[3].value) == ("First", "2")
    assert [t.param for t in st[2][0][1:]] == ["Name", None, "Force"]
    with pytest.raises(commands.ScriptTooComplex):
        commands.tokenize_script("foreach ($a in $b) { }")


# --- not elevated -------------------------------------------------------------------------------------------

def test_not_elevated_host():
    h = host("not-elevated")
    assert h.elevated is False and h.faults == {} and h.engine_faults == [{"kind": "not_elevated"}]
    for sub in ("servicestate view=requestq", "urlacl", "iplisten"):
        assert h.run(cmdline(f"netsh http show {sub}")).output == [commands.ELEVATION_NETSH, ""]
    assert h.run(cmdline("netsh http show servicestate | Out-String")).output == [
        commands.ELEVATION_NETSH + "\r\n\r\n"]
    assert all(p.Path is None for p in h.run(cmdline("Get-Process")).output)
    ex = h.run(cmdline("Stop-Service -Name MsDepSvc"))
    assert not ex.failed and not ex.changed_state
    assert ex.errors[0].fully_qualified_error_id == "CouldNotStopService,Microsoft.PowerShell.Commands.StopServiceCommand"
    assert "cannot be stopped due to the following error: Cannot open MsDepSvc service on computer '.'." in \
        ex.errors[0].message
    assert h.run(cmdline("whoami")).output == ["contoso\\svc_audit"]


def test_faults_are_kept_for_the_server():
    assert host("faulty-auth").faults == {"kind": "auth"}
    assert host("faulty-hang").faults == {"kind": "hang_receive"}
    f = host("faulty-wsman").faults
    assert f["kind"] == "wsman_fault" and f["action"] == "Command" and f["code"] == 2150858843
    assert host("free").faults == {} and host("free").elevated


# --- state changes and their reversal -----------------------------------------------------------------------

REVERSIBLE = [
    ("iis-worker", "iisreset.exe /stop", "iisreset.exe /start", "HTTP://*:80/"),
    ("iis-idle", "Stop-Service -Name W3SVC", "Start-Service -Name W3SVC", "HTTP://*:80/"),
    ("branchcache", "netsh branchcache set service mode=disabled", "netsh branchcache set service mode=distributed",
     "116B50EB"),
    ("ssrs", "Stop-Service -Name SQLServerReportingServices -Force",
     "Start-Service -Name SQLServerReportingServices", "REPORTS"),
    ("server2022-processes", "Stop-Service ContosoOrdersApi", "Start-Service ContosoOrdersApi", "HTTP://+:80/API/"),
    ("faulty-wsman", "Stop-Service -Name MsDepSvc", "Start-Service -Name MsDepSvc", "MSDEPLOYAGENTSERVICE"),
    ("iplisten-split", "Stop-Service -Name W3SVC; Stop-Service -Name Apache2.4",
     "Start-Service -Name Apache2.4; Start-Service -Name W3SVC", "10.0.5.21:80:10.0.5.21"),
]


@pytest.mark.parametrize("name,do,undo,url", REVERSIBLE, ids=[r[0] for r in REVERSIBLE])
def test_freeing_port_80_and_restoring_it_byte_for_byte(name, do, undo, url):
    h = host(name)
    original = h.snapshot()
    ex = h.run(cmdline(do))
    assert ex.changed_state and not ex.errors, ex.errors
    after = h.snapshot()
    assert url not in after["servicestate.txt"] and url in original["servicestate.txt"]
    rows = netstat_rows(after["netstat.txt"])
    assert not [r for r in rows if r.local_port == 80 and r.state == "LISTENING"]
    assert "HTTP://+:5985/WSMAN/" in after["servicestate.txt"]  # WinRM untouched
    assert after["urlacl.txt"] == original["urlacl.txt"]  # reservations persist
    for fname in ("servicestate.txt", "netstat.txt", "services.json", "tasklist.txt"):
        assert after[fname] != original[fname], fname
    json.loads(after["services.json"]) and json.loads(after["processes.json"])
    assert h.run(SCAN["netstat.txt"]).output == [after["netstat.txt"]]
    assert h.run(SCAN["services.json"]).output == [after["services.json"]]
    ex = h.run(cmdline(undo))
    assert ex.changed_state and not ex.errors, ex.errors
    assert h.snapshot() == original
    assert h.command_log[0]["changed_state"] and h.command_log[-1]["changed_state"]
    assert not h.command_log[1]["changed_state"]


def test_stopped_service_state_everywhere():
    h = host("ssrs")
    pid = EXPECTED["ssrs"]["pids"][0]
    h.run(cmdline("Stop-Service SQLServerReportingServices"))
    svc = h.run(cmdline("Get-CimInstance Win32_Service -Filter \"Name='SQLServerReportingServices'\"")).output[0]
    assert (svc.State, int(svc.ProcessId), svc.Started) == ("Stopped", 0, False)
    assert h.run(cmdline(f"Get-Process -Id {pid}")).errors[0].message == \
        f"Cannot find a process with the process identifier {pid}."
    assert f" {pid} " not in h.snapshot()["tasklist.txt"]


def test_dependent_services_need_force():
    h = host("iis-worker")
    original = h.snapshot()
    ex = h.run(cmdline("Stop-Service -Name WAS"))
    assert not ex.changed_state and ex.errors[0].fully_qualified_error_id == \
        "ServiceHasDependentServices,Microsoft.PowerShell.Commands.StopServiceCommand"
    assert ex.errors[0].message == ("Cannot stop service 'Windows Process Activation Service (WAS)' because it has "
                                    "dependent services. It can only be stopped if the Force flag is set.")
    ex = h.run(cmdline("Stop-Service -Name WAS -Force"))
    assert ex.changed_state and not ex.errors
    state = {s.Name: s.Status for s in h.run(cmdline("Get-Service W3SVC,WAS")).output}
    assert state == {"W3SVC": "Stopped", "WAS": "Stopped"}
    # -Force also stopped WAS's other dependents, the WCF listener adapters (dependencies from the bundle's
    # getservice.json); starting W3SVC starts WAS first but not them (dotnet/AspNetCore.Docs#26342)
    adapters = ["NetMsmqActivator", "NetPipeActivator", "NetTcpActivator"]
    assert {a: h.machine.service(a)["State"] for a in adapters} == dict.fromkeys(adapters, "Stopped")
    h.run(cmdline("Start-Service W3SVC"))  # starts WAS first (it depends on it)
    assert h.machine.service("WAS")["State"] == "Running" and h.snapshot() != original
    h.run(cmdline("Start-Service " + ",".join(adapters)))
    assert h.snapshot() == original


def test_set_service_startup_type_and_disabled_start():
    h = host("ssrs")
    original = h.snapshot()
    ex = h.run(cmdline("Stop-Service -Name SQLServerReportingServices; "
                       "Set-Service -Name SQLServerReportingServices -StartupType Disabled"))
    assert ex.changed_state and not ex.errors
    assert '"StartMode":  "Disabled"' in h.snapshot()["services.json"]
    ex = h.run(cmdline("Start-Service SQLServerReportingServices"))
    assert ex.errors[0].fully_qualified_error_id == \
        "CouldNotStartService,Microsoft.PowerShell.Commands.StartServiceCommand"
    h.run(cmdline("Set-Service -Name SQLServerReportingServices -StartupType Automatic; "
                  "Start-Service SQLServerReportingServices"))
    assert h.snapshot() == original


def test_iplisten_add_and_delete():
    h = host("iis-worker")
    original = h.snapshot()
    assert h.run(cmdline("netsh http add iplisten ipaddress=10.0.12.31")).output == [
        "", "IP address successfully added", ""]
    s = h.snapshot()
    assert s["iplisten.txt"] == ("\r\nIP addresses present in the IP listen list:\r\n" + "-" * 43 +
                                 "\r\n\r\n    10.0.12.31\r\n\r\n\r\n")
    listen = {(r.local, r.pid) for r in netstat_rows(s["netstat.txt"]) if r.state == "LISTENING"}
    assert ("10.0.12.31:80", 4) in listen and ("0.0.0.0:80", 4) not in listen and ("[::]:80", 4) not in listen
    assert ("10.0.12.31:5985", 4) in listen and ("0.0.0.0:445", 4) in listen  # SMB is not HTTP.sys
    assert "  TCP    10.0.12.31:80          0.0.0.0:0              LISTENING       4\r\n" in s["netstat.txt"]
    again = h.run(cmdline("netsh http add iplisten ipaddress=10.0.12.31"))
    assert again.output[1] == "IP address add failed, Error: 183" and not again.changed_state
    assert h.run(cmdline("netsh http delete iplisten ipaddress=10.0.12.31")).output == [
        "", "IP address successfully deleted", ""]
    assert h.snapshot() == original
    gone = h.run(cmdline("netsh http delete iplisten ipaddress=10.9.9.9"))
    assert gone.output[1] == "IP address delete failed, Error: 2"


def test_iplisten_split_delete_rebinds_wildcard():
    h = host("iplisten-split")
    original = h.snapshot()
    h.run(cmdline("netsh http delete iplisten ipaddress=10.0.5.21"))
    s = h.snapshot()
    assert s["iplisten.txt"] == "\r\nIP addresses present in the IP listen list:\r\n" + "-" * 43 + "\r\n\r\n\r\n\r\n"
    listen = {(r.local, r.pid) for r in netstat_rows(s["netstat.txt"]) if r.state == "LISTENING"}
    assert {("0.0.0.0:80", 4), ("[::]:80", 4)} <= listen and ("10.0.5.21:80", 4) not in listen
    h.run(cmdline("netsh http add iplisten ipaddress=10.0.5.21"))
    assert h.snapshot() == original


def test_session_view_follows_the_state():
    h = host("server2022-processes")
    original = h.snapshot()
    h.run(cmdline("Stop-Service ContosoOrdersApi"))
    sess = h.run(cmdline("netsh http show servicestate | Out-String")).output[0]
    assert sess == h.snapshot()["servicestate_session.txt"]
    assert "HTTP://+:80/API/" not in sess and "HTTP://+:5985/WSMAN/" in sess
    assert sess.count("Server session ID:") == 1
    assert len(re.findall(r"(?m)^    Request queue name:", sess)) == 1
    h.run(cmdline("Start-Service ContosoOrdersApi"))
    assert h.snapshot() == original


def test_restart_of_a_never_started_service_gets_a_new_pid():
    h = host("free")
    original = h.snapshot()
    h.run(cmdline("Start-Service -Name Wecsvc"))
    pid = int(h.run(cmdline("Get-CimInstance Win32_Service -Filter \"Name='Wecsvc'\"")).output[0].ProcessId)
    assert pid > 0 and f" {pid} Wecsvc" in h.snapshot()["tasklist.txt"]
    assert pid in h.run(cmdline("Get-Process | Select-Object -ExpandProperty Id")).output
    h.run(cmdline("Stop-Service -Name Wecsvc"))
    assert h.snapshot() == original


def test_deterministic_and_thread_safe():
    a, b = host("iis-worker"), host("iis-worker")
    script = cmdline("Stop-Service W3SVC; netstat -ano | Out-String")
    assert a.run(script).output == b.run(script).output
    h = host("ssrs")
    errors: list = []

    def worker(k: int) -> None:
        try:
            for _ in range(10):
                if k % 2:
                    h.run(cmdline("Stop-Service SQLServerReportingServices; Start-Service SQLServerReportingServices"))
                else:
                    ex = h.run(SCAN["servicestate.txt"])
                    assert not ex.failed
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert h.snapshot() == file_texts(demo_fleet_dir() / "ssrs")
    assert len(h.command_log) == 60


def test_psversion_defaults_per_os():
    assert host("iplisten-split").psversion["PSVersion"] == "5.1.14393.7428"
    assert host("free").psversion["BuildVersion"] == "10.0.20348.2849"
    h = LabHost("x", None, {}, {"hostname": "OLD", "os_version": "6.3.9600",
                                "lab": {"psversion": {"PSVersion": "5.1.14409.1018"}}})
    assert h.psversion["PSVersion"] == "5.1.14409.1018" and h.psversion["PSRemotingProtocolVersion"] == "2.2"


def test_get_service_required_and_dependent_services_from_the_bundle():
    h = host("iis-worker")
    got = [(s.Name, s.Status) for s in h.run(cmdline("Get-Service WinRM -RequiredServices")).output]
    assert got == [("NSI", "Running"), ("HTTP", "Running"), ("RPCSS", "Running")]  # as the real capture shows
    deps = {s.Name for s in h.run(cmdline("Get-Service WAS -DependentServices")).output}
    assert deps == {"W3SVC", "NetMsmqActivator", "NetPipeActivator", "NetTcpActivator"}


def test_start_service_needs_its_requirements_enabled():
    h = host("iis-worker")
    original = h.snapshot()
    h.run(cmdline("Stop-Service WAS -Force"))
    h.run(cmdline("Set-Service WAS -StartupType Disabled"))
    ex = h.run(cmdline("Start-Service W3SVC"))
    assert ex.errors[0].message == ("Service 'World Wide Web Publishing Service (W3SVC)' cannot be started due to "
                                    "the following error: Cannot start service W3SVC on computer '.'.")
    assert h.machine.service("W3SVC")["State"] == "Stopped"
    h.run(cmdline("Set-Service WAS -StartupType Manual"))
    h.run(cmdline("Start-Service W3SVC,NetMsmqActivator,NetPipeActivator,NetTcpActivator"))
    assert h.snapshot() == original


def test_twins_share_the_bundle_and_keep_their_own_state():
    """Hosts made from one bundle (a fleet cycles a dozen bundles over thousands of hosts) share its parsed
    machine; a host that changes state gets its own copy: its twins and a later twin still answer the
    bundle's original texts, and the changed host answers exactly what a host of its own would."""
    a = host("iis-worker")
    b, alone = a.twin("iis-worker-2"), host("iis-worker")
    assert b._shared is a._shared and b.name == "iis-worker-2" and b.hostname == a.hostname
    original = a.snapshot()
    assert a.run(cmdline("netstat.exe -ano")).output == alone.run(cmdline("netstat.exe -ano")).output
    assert a._own is None  # read-only pipelines leave the host on the shared machine
    for h in (b, alone):
        ex = h.run(cmdline("Stop-Service -Name WAS -Force"))
        assert ex.changed_state and not ex.errors
    assert b.snapshot() == alone.snapshot() != original
    assert a.snapshot() == original and a.twin("iis-worker-3").snapshot() == original
    assert a.run(cmdline("Get-Service WAS")).output[0].Status == "Running"
    assert b.run(cmdline("Get-Service WAS")).output[0].Status == "Stopped"
    b.machine.set_service_running("WAS", True)  # .machine is the host's own
    assert a._shared.machine.service("WAS")["State"] == "Running"
    b.run(cmdline("Start-Service W3SVC,NetMsmqActivator,NetPipeActivator,NetTcpActivator"))
    assert b.snapshot() == original


def test_a_fleet_parses_each_bundle_once(tmp_path):
    from remote.lab.fleet.server import LabFleet

    n = 3 * len(BUNDLES)
    with LabFleet(demo_fleet_dir(), hosts=n, base_address=None, tls_enabled=False, auth="ntlm") as fleet:
        shared = {id(ep.host._shared) for ep in fleet.hosts}
        assert len(fleet.hosts) == n and len(shared) == len(BUNDLES)
        assert all(ep.host._own is None for ep in fleet.hosts)
