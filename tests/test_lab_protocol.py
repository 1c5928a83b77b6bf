"""The lab's WinRM/PSRP server against a plain, unmodified pypsrp client over real loopback sockets."""

from __future__ import annotations

import codecs
import json
import shutil
import threading
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from pypsrp.client import Client
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan

from remote.lab import api
from remote.lab.protocol import wsman
from remote.lab.fixture import ScriptedHost, lab_fleet
from remote.evidence.textio import decode_text

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "examples" / "seed-branchcache"

NETSTAT = (
    "\r\nActive Connections\r\n\r\n"
    "  Proto  Local Address          Foreign Address        State           PID\r\n"
    "  TCP    0.0.0.0:80             0.0.0.0:0              LISTENING       4\r\n"
    "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       912\r\n"
    "  TCP    [::]:80                [::]:0                 LISTENING       4\r\n"
    "  UDP    0.0.0.0:500            *:*                                    3100\r\n"
    "  TCP    192.168.1.20:50123     20.42.65.85:443        ESTABLISHED     7788\u00a0caf\u00e9 \t_x000D_ <&>\r\n"
)


def bundle_host_factory():
    """The engine's LabHost when it is there, else the protocol tests' stand-in (same bundle files)."""
    try:
        from remote.lab.engine.host import LabHost
    except ImportError:
        return ScriptedHost.from_bundle
    return LabHost.from_bundle


@pytest.fixture
def bundles(tmp_path) -> Path:
    root = tmp_path / "bundles"
    b = root / "web-01"
    b.mkdir(parents=True)
    # as Windows PowerShell 5.1's `>` writes it: UTF-16 LE with BOM, CRLF
    (b / "netstat.txt").write_bytes(codecs.BOM_UTF16_LE + NETSTAT.encode("utf-16-le"))
    (b / "host.json").write_text(json.dumps({"host": "web-01"}), encoding="utf-8")
    if SEED.is_dir():
        shutil.copytree(SEED, root / SEED.name)
    return root


def expected_netstat(bundles: Path, name: str = "web-01") -> str:
    return decode_text((bundles / name / "netstat.txt").read_bytes())


def wsman_for(fleet, host, **kw) -> WSMan:
    args = fleet.client_kwargs(host)
    args.update(dict(read_timeout=10, operation_timeout=5, reconnection_retries=0))
    args.update(kw)
    return WSMan(**args)


MODES = [
    pytest.param(dict(auth="basic", tls=True), id="basic-https"),
    pytest.param(dict(auth="ntlm", tls=False), id="ntlm-http-encrypted"),
]


@pytest.mark.parametrize("mode", MODES)
def test_netstat_byte_identical_cmdlet_and_script_forms(bundles, mode):
    with lab_fleet(bundles, host_factory=bundle_host_factory(), **mode) as fleet:
        host = fleet.host("web-01")
        with RunspacePool(wsman_for(fleet, host)) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("netstat.exe").add_argument("-ano").add_cmdlet("Out-String")
            out = ps.invoke()
            assert not ps.had_errors, [str(e) for e in ps.streams.error]
            assert out == [expected_netstat(bundles)]
            assert ps.state == PSInvocationState.COMPLETED
            ps.close()  # Signal Terminate

            ps = PowerShell(pool)
            ps.add_script("netstat.exe -ano | Out-String")
            assert ps.invoke() == [expected_netstat(bundles)]
        keys = [e["key"] for e in host.command_log]
        assert keys == ["netstat.exe -ano | Out-String"] * 2


@pytest.mark.parametrize("mode", MODES)
def test_client_execute_ps(bundles, mode):
    with lab_fleet(bundles, host_factory=bundle_host_factory(), **mode) as fleet:
        kw = fleet.client_kwargs("web-01")
        server = kw.pop("server")
        client = Client(server, read_timeout=10, operation_timeout=5, **kw)
        output, streams, had_errors = client.execute_ps("netstat.exe -ano")
        assert not had_errors, [str(e) for e in streams.error]
        assert output == "\n".join(expected_netstat(bundles).splitlines())
        assert fleet.host("web-01").command_log[-1]["key"] == \
            "Invoke-Expression -Command netstat.exe -ano | Out-String -Stream"


def test_multi_statement_pipeline(bundles):
    with lab_fleet(bundles, host_factory=bundle_host_factory()) as fleet:
        host = fleet.host("web-01")
        with RunspacePool(wsman_for(fleet, host)) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Write-Output").add_parameter("InputObject", "port80:evidence:netstat").add_statement()
            ps.add_cmdlet("netstat.exe").add_argument("-ano").add_cmdlet("Out-String").add_statement()
            ps.add_cmdlet("Write-Output").add_parameter("InputObject", "port80:evidence:again").add_statement()
            ps.add_script("netstat.exe -ano | Out-String")
            out = ps.invoke()
        assert out == ["port80:evidence:netstat", expected_netstat(bundles), "port80:evidence:again",
                       expected_netstat(bundles)]
        assert host.command_log[-1]["key"] == (
            "Write-Output -InputObject port80:evidence:netstat; netstat.exe -ano | Out-String; "
            "Write-Output -InputObject port80:evidence:again; netstat.exe -ano | Out-String")


def test_statements_decoded_into_api(tmp_path):
    """What the engine gets: api.Statement lists with named/positional/list/switch parameters."""
    seen: list[list[api.Statement]] = []

    def record(statements):
        seen.append(statements)
        return api.Execution(output=["ok"])

    root = _one_bundle(tmp_path)
    with lab_fleet(root, host_factory=lambda p, n: ScriptedHost(n or "h", {
        "Get-CimInstance -ClassName Win32_Service | Select-Object -Property Name,State,ProcessId": record,
        "Get-Service -Name w3svc,http; Out-String -Stream": record})) as fleet:
        with RunspacePool(wsman_for(fleet, fleet.hosts[0])) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-CimInstance").add_parameter("ClassName", "Win32_Service")
            ps.add_cmdlet("Select-Object").add_parameter("Property", ["Name", "State", "ProcessId"])
            assert ps.invoke() == ["ok"]
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Service").add_parameter("Name", ["w3svc", "http"]).add_statement()
            ps.add_cmdlet("Out-String").add_parameter("Stream")
            assert ps.invoke() == ["ok"]
    first, second = seen
    assert first == [[api.Command("Get-CimInstance", False, [("ClassName", "Win32_Service")]),
                      api.Command("Select-Object", False, [("Property", ["Name", "State", "ProcessId"])])]]
    assert second == [[api.Command("Get-Service", False, [("Name", ["w3svc", "http"])])],
                      [api.Command("Out-String", False, [("Stream", True)])]]
    assert all(type(v) in (str, bool, list) for st in first + second for c in st for _, v in c.parameters)


def _one_bundle(tmp_path: Path, name: str = "h") -> Path:
    root = tmp_path / "one"
    (root / name).mkdir(parents=True)
    (root / name / "host.json").write_text(json.dumps({"host": name}), encoding="utf-8")
    return root


def test_request_counts_per_session(bundles):
    """One session = Create, Receive ×2 (the pool open, as recorded: real-message-flow-summary.txt), Command,
    Receive (all output at once), Delete."""
    for mode, extra in ((dict(auth="basic", tls=True), 0), (dict(auth="ntlm", tls=False), 3)):
        with lab_fleet(bundles, host_factory=bundle_host_factory(), **mode) as fleet:
            host = fleet.host("web-01")
            with RunspacePool(wsman_for(fleet, host, max_envelope_size=512000)) as pool:
                ps = PowerShell(pool)
                ps.add_cmdlet("netstat.exe").add_argument("-ano").add_cmdlet("Out-String")
                ps.invoke()
            st = host.stats()
            assert st["requests"] == 6 + extra, st
            assert st["actions"]["Receive"] == 3
            # keep-alive; pypsrp's blank NTLM probe gets a bare 401, after which HTTP.sys closes the connection
            assert st["connections"] == (2 if extra else 1), st
            if extra:
                assert st["actions"]["auth"] == 3 and st["status"].get("401") == 2


def test_errors_and_failed_pipeline(tmp_path):
    root = _one_bundle(tmp_path)
    answers = {"Get-Thing": api.Execution(output=["partial"], errors=[api.ErrorSpec(
        message="Access is denied.", fully_qualified_error_id="AccessDenied", category=18, target="x",
        command_name="Get-Thing", exception_type="System.UnauthorizedAccessException")])}
    with lab_fleet(root, host_factory=lambda p, n: ScriptedHost(n or "h", answers)) as fleet:
        with RunspacePool(wsman_for(fleet, fleet.hosts[0])) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Thing")
            assert ps.invoke() == ["partial"]
            assert ps.state == PSInvocationState.COMPLETED
            (err,) = ps.streams.error
            assert err.fq_error == "AccessDenied" and str(err) == "Access is denied."
            assert err.exception.adapted_properties["Message"] == "Access is denied."
            assert err.exception.types[0] == "System.UnauthorizedAccessException"
            assert err.category == 18 and err.activity == "Get-Thing"
            assert err.message == "PermissionDenied: (x:String) [Get-Thing], UnauthorizedAccessException"

            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Nothing")
            assert ps.invoke() == []
            assert ps.had_errors and ps.state == PSInvocationState.FAILED
            (err,) = ps.streams.error
            assert err.fq_error == "CommandNotFoundException"
            assert "'Get-Nothing' is not recognized" in str(err) and err.target_name == "Get-Nothing"
            assert err.message == "ObjectNotFound: (Get-Nothing:String) [], CommandNotFoundException"


def test_large_output_respects_max_envelope_size(tmp_path):
    """3 MB in one string and 5,000 objects: split over several ReceiveResponses, each within the
    request's MaxEnvelopeSize (pypsrp raises it from 153600 to 512000 once the pool is open)."""
    big = "".join(f"line {i:07d} \u00e9\u00e8 {'x' * 40}\r\n" for i in range(60000))
    many = [f"item {i}" for i in range(5000)]
    root = _one_bundle(tmp_path)
    seen: list[tuple[str, int, int]] = []
    with lab_fleet(root, host_factory=lambda p, n: ScriptedHost(n or "h", {"big": big, "many": many})) as fleet:
        runtime = fleet.hosts[0].server.runtime
        orig = runtime.handle

        def spy(req, **kw):
            reply = orig(req, **kw)
            seen.append((req.name, req.max_envelope_size, len(reply.body)))
            return reply

        runtime.handle = spy
        for env in (153600, 512000, 100000):
            seen.clear()
            with RunspacePool(wsman_for(fleet, fleet.hosts[0], max_envelope_size=env)) as pool:
                ps = PowerShell(pool)
                ps.add_cmdlet("big")
                assert ps.invoke() == [big]
                ps = PowerShell(pool)
                ps.add_cmdlet("many")
                assert ps.invoke() == many
            receives = [(m, n) for a, m, n in seen if a == "Receive"]
            assert all(n <= m for m, n in receives), receives
            assert {m for m, _ in receives} == ({153600, 512000} if env == 153600 else {env})
            assert len(receives) > 2 + len(big.encode()) * 4 // 3 // max(m for m, _ in receives)
            # and fills them, up to Windows' ~128 KiB of PSRP data per Receive (real-receive-fragment-sizes.txt)
            assert max(n for _, n in receives) > 0.8 * min(min(m for m, _ in receives[1:]), 131072 * 4 // 3)


def test_pipeline_input_stop_is_alive_and_psversion(tmp_path):
    root = _one_bundle(tmp_path)
    psv = {"PSVersion": "5.1.14393.6343", "BuildVersion": "10.0.14393.6343"}
    with lab_fleet(root, host_factory=lambda p, n: ScriptedHost(n or "h", {"Measure-It": ["done"]},
                                                                  psversion=psv)) as fleet:
        with RunspacePool(wsman_for(fleet, fleet.hosts[0])) as pool:
            table = pool._application_private_data.data["PSVersionTable"]
            assert str(table["PSVersion"]) == "5.1.14393.6343" and str(table["BuildVersion"]) == "10.0.14393.6343"
            ps = PowerShell(pool)
            ps.add_cmdlet("Measure-It")
            assert ps.invoke(input=["a", "b", "c"]) == ["done"]  # Send stdin + EndOfPipelineInput
            assert pool.is_alive()  # Get
            ps = PowerShell(pool)
            ps.add_cmdlet("Measure-It")
            ps.begin_invoke()
            ps.stop()  # Signal ctrl_c
            assert ps.state == PSInvocationState.STOPPED
        assert not pool.is_alive()
        assert fleet.hosts[0].server.runtime.shells == {}


def test_wrong_password_is_401(bundles):
    for mode in (dict(auth="basic", tls=True), dict(auth="ntlm", tls=False)):
        with lab_fleet(bundles, host_factory=bundle_host_factory(), **mode) as fleet:
            with pytest.raises(AuthenticationError):
                RunspacePool(wsman_for(fleet, fleet.hosts[0], password="wrong")).open()
            with pytest.raises(AuthenticationError):
                RunspacePool(wsman_for(fleet, fleet.hosts[0], username="someone")).open()
            deadline = time.monotonic() + 3  # the lab counts a reply just after sending it
            while fleet.hosts[0].stats().get("status", {}).get("401", 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            st = fleet.hosts[0].stats()
            assert st.get("status", {}).get("401", 0) >= 2 and "Create" not in st["actions"]


@pytest.mark.parametrize("user", ["auditor", "LAB\\auditor", "AUDITOR", "auditor@LAB"])
@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_user_name_forms(bundles, user, auth):
    with lab_fleet(bundles, auth=auth, tls=True, host_factory=bundle_host_factory()) as fleet:
        with RunspacePool(wsman_for(fleet, fleet.hosts[0], username=user)) as pool:
            ps = PowerShell(pool)
            ps.add_script("netstat.exe -ano | Out-String")
            assert ps.invoke()


def test_password_from_environment(bundles, monkeypatch):
    monkeypatch.setenv("PORT80_LAB_PASSWORD", "Other-Pass-1!")
    with lab_fleet(bundles, host_factory=bundle_host_factory()) as fleet:
        assert fleet.password == "Other-Pass-1!"
        with RunspacePool(wsman_for(fleet, fleet.hosts[0])):
            pass
        with pytest.raises(AuthenticationError):
            RunspacePool(wsman_for(fleet, fleet.hosts[0], password="Lab-Audit-2026!")).open()


def test_unencrypted_http_refused_like_windows(bundles):
    # Basic over plain HTTP: a lab without AllowUnencrypted cannot even be started that way ...
    with pytest.raises(Exception, match="AllowUnencrypted"):
        with lab_fleet(bundles, auth="basic", tls=False, host_factory=bundle_host_factory()):
            pass
    # ... and an NTLM listener (HTTP) answers unencrypted Basic with 401, unencrypted NTLM with 500
    with lab_fleet(bundles, auth="ntlm", tls=False, host_factory=bundle_host_factory()) as fleet:
        kw = fleet.client_kwargs(fleet.hosts[0])
        with pytest.raises(AuthenticationError):
            RunspacePool(WSMan(**{**kw, "auth": "basic", "encryption": "never"})).open()
        with pytest.raises(WinRMTransportError) as ei:
            RunspacePool(WSMan(**{**kw, "encryption": "never"})).open()
        assert ei.value.code == 500
    # with AllowUnencrypted, Basic over HTTP works when the client turns encryption off
    with lab_fleet(bundles, auth="basic", tls=False, allow_unencrypted=True,
                   host_factory=bundle_host_factory()) as fleet:
        assert fleet.client_kwargs("web-01")["encryption"] == "never"
        with RunspacePool(wsman_for(fleet, fleet.host("web-01"))) as pool:
            ps = PowerShell(pool)
            ps.add_script("netstat.exe -ano | Out-String")
            assert ps.invoke() == [expected_netstat(bundles)]


def test_ntlm_over_https_with_and_without_message_encryption(bundles):
    with lab_fleet(bundles, auth="ntlm", tls=True, host_factory=bundle_host_factory()) as fleet:
        for enc in ("auto", "always"):
            with RunspacePool(wsman_for(fleet, fleet.host("web-01"), encryption=enc)) as pool:
                ps = PowerShell(pool)
                ps.add_script("netstat.exe -ano | Out-String")
                assert ps.invoke() == [expected_netstat(bundles)]


def test_many_sessions_one_host_threads(bundles):
    """Concurrent pools on one host: each shell is isolated (one lock per shell)."""
    errors: list[BaseException] = []
    with lab_fleet(bundles, host_factory=bundle_host_factory()) as fleet:
        host = fleet.host("web-01")

        def work():
            try:
                with RunspacePool(wsman_for(fleet, host)) as pool:
                    for _ in range(3):
                        ps = PowerShell(pool)
                        ps.add_script("netstat.exe -ano | Out-String")
                        assert ps.invoke() == [expected_netstat(bundles)]
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert host.stats()["actions"]["Create"] == 12 and host.server.runtime.shells == {}


def test_server_config_get(bundles):
    with lab_fleet(bundles, host_factory=bundle_host_factory()) as fleet:
        w = wsman_for(fleet, fleet.host("web-01"))
        w.update_max_payload_size()  # Get winrm/config -> MaxEnvelopeSizekb
        assert w.max_envelope_size == 500 * 1024


def test_unknown_shell_and_bad_soap_give_wsman_faults(bundles):
    with lab_fleet(bundles, host_factory=bundle_host_factory()) as fleet:
        pool = RunspacePool(wsman_for(fleet, fleet.hosts[0]))
        pool.open()
        pool.shell.wsman.delete(pool.shell.resource_uri, selector_set=pool.shell._selector_set)
        with pytest.raises(WSManFaultError) as ei:
            pool.shell.wsman.delete(pool.shell.resource_uri, selector_set=pool.shell._selector_set)
        assert ei.value.code == wsman.CODE_SHELL_NOT_FOUND
        assert not pool.is_alive()  # Get on a gone shell: 0x8033805B counts as closed
        import requests

        r = requests.post(fleet.hosts[0].url, data=b"<not-soap/>", auth=("auditor", fleet.password),
                          verify=str(fleet.ca_path), headers={"Content-Type": "application/soap+xml"})
        assert r.status_code == 500
        assert ET.fromstring(r.content).find(".//{%s}WSManFault" % wsman.NS["f"]) is not None


# ------------------------------------------------------------------------------- wsman unit tests


def test_parse_duration():
    assert wsman.parse_duration("PT20S") == 20
    assert wsman.parse_duration("PT60.000S") == 60
    assert wsman.parse_duration("PT1M30S") == 90
    assert wsman.parse_duration("P1DT1H") == 90000
    assert wsman.parse_duration("junk", 7) == 7
    assert wsman.parse_duration(None, 3) == 3


def test_fault_envelope_as_pypsrp_reads_it():
    body = wsman.fault("uuid:ABC", 2150858752, "Nope <&>", machine="web-01")
    err = WSMan._parse_wsman_fault(body.decode())
    assert (err.code, err.machine, err.reason) == (2150858752, "web-01", "Nope <&>")
    timeout = WSMan._parse_wsman_fault(wsman.operation_timeout_fault("uuid:X").decode())
    assert timeout.code == 2150858793
    root = ET.fromstring(body)
    assert root.findtext("{%s}Header/{%s}RelatesTo" % (wsman.NS["s"], wsman.NS["a"])) == "uuid:ABC"


def test_parse_request_fields():
    xml = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header>'
        '<wsa:Action s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</wsa:Action>'
        '<wsman:MaxEnvelopeSize s:mustUnderstand="true">512000</wsman:MaxEnvelopeSize>'
        '<wsa:MessageID>uuid:11111111-2222-3333-4444-555555555555</wsa:MessageID>'
        '<wsman:OperationTimeout>PT3S</wsman:OperationTimeout>'
        '<wsman:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/powershell/Microsoft.PowerShell</wsman:ResourceURI>'
        '<wsman:OptionSet><wsman:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">True</wsman:Option></wsman:OptionSet>'
        '<wsman:SelectorSet><wsman:Selector Name="ShellId">ABC</wsman:Selector></wsman:SelectorSet>'
        '</s:Header><s:Body><rsp:Receive><rsp:DesiredStream CommandId="X">stdout</rsp:DesiredStream></rsp:Receive>'
        '</s:Body></s:Envelope>'
    ).encode()
    req = wsman.parse_request(xml)
    assert (req.name, req.max_envelope_size, req.operation_timeout, req.shell_id) == ("Receive", 512000, 3, "ABC")
    assert req.options == {"WSMAN_CMDSHELL_OPTION_KEEPALIVE": "True"}
    assert req.body.tag == "{%s}Receive" % wsman.NS["rsp"]
    with pytest.raises(wsman.WSManParseError):
        wsman.parse_request(b"garbage")
    assert wsman.relates_to_of(xml) == "uuid:11111111-2222-3333-4444-555555555555"
