"""The lab against PowerShell-remoting clients written by others, as their users call them (issue 11's bar):
pypsrp's ``Client.execute_ps`` (PSRP: ``Invoke-Expression <script> | Out-String -Stream``) and
``Client.execute_cmd`` (WinRS: the cmd shell resource), and pywinrm's ``run_cmd``/``run_ps`` when installed."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from pypsrp.client import Client
from pypsrp.powershell import PowerShell, RunspacePool

from remote.lab.engine.host import LabHost
from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir
from remote.evidence.textio import decode_text

FLEET = Path(demo_fleet_dir())
BUNDLES = ["branchcache", "iis-worker", "free"]


def netstat_text(name: str) -> str:
    return decode_text((FLEET / name / "netstat.txt").read_bytes())


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    for name in BUNDLES:
        shutil.copytree(FLEET / name, root / name)
    with lab_fleet(root, host_factory=LabHost.from_bundle, auth="basic", tls=True) as f:
        yield f


def client(fleet, name: str) -> Client:
    kw = fleet.client_kwargs(fleet.host(name))
    server = kw.pop("server")
    kw.update(read_timeout=20, operation_timeout=10, reconnection_retries=0)
    return Client(server, **kw)


def lines(text: str) -> list[str]:
    return [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]


@pytest.mark.parametrize("name", BUNDLES)
def test_execute_ps_netstat_then_exit_lastexitcode(fleet, name):
    out, streams, had_errors = client(fleet, name).execute_ps("netstat.exe -ano; exit $LASTEXITCODE")
    assert not had_errors and not streams.error
    assert lines(out) == lines(netstat_text(name))


def test_execute_ps_script_with_variable_and_if(fleet):
    name = BUNDLES[0]
    script = "$n = (netstat.exe -ano | Select-String ':80 ').Count\nif ($n -gt 0) { 'held' } else { 'free' }"
    out, streams, had_errors = client(fleet, name).execute_ps(script)
    held = any(":80 " in ln for ln in netstat_text(name).splitlines())
    assert not had_errors and out.strip() == ("held" if held else "free")


def test_execute_ps_unknown_command_is_commandnotfound_never_silence(fleet):
    """As recorded (pypsrp's test_client_execute_ps_failure.yml, real Windows): the pipeline fails with
    the CommandNotFoundException in its PipelineState, output empty, had_errors True."""
    out, streams, had_errors = client(fleet, BUNDLES[0]).execute_ps("Get-Frobnicator -Port 80")
    assert had_errors and out == ""
    err = streams.error[0]
    assert err.fq_error == "CommandNotFoundException"
    assert str(err).startswith("The term 'Get-Frobnicator' is not recognized")


def test_execute_ps_syntax_error_is_parseexception(fleet):
    out, streams, had_errors = client(fleet, BUNDLES[0]).execute_ps("if (1 {")
    assert had_errors
    err = streams.error[0]
    assert err.fq_error.startswith("MissingEndParenthesisAfterStatement")
    assert "Missing closing ')' after expression in 'if' statement." in str(err)


def test_exit_sends_setshouldexit_and_completes(fleet):
    """``exit 3``: the pipeline completes and the host receives SetShouldExit(3) (PowerShell's
    LocalPipeline; no recording: the recordings carry no `exit`)."""
    from pypsrp.host import PSHost
    seen = []

    class MyHost(PSHost):
        def SetShouldExit(self, runspace, pipeline, exit_code):  # noqa: N802 - pypsrp's name
            seen.append(exit_code)

    wsman = client(fleet, BUNDLES[0]).wsman
    with RunspacePool(wsman, host=MyHost(None, None, False, "lab-test", None, None, "1.0")) as pool:
        ps = PowerShell(pool)
        ps.add_script("hostname; exit 3")
        out = ps.invoke()
        assert not ps.had_errors and len(out) == 1
    assert seen == [3]


@pytest.mark.parametrize("name", BUNDLES)
def test_execute_cmd_netstat_over_winrs(fleet, name):
    stdout, stderr, rc = client(fleet, name).execute_cmd("netstat.exe -ano")
    assert rc == 0 and stderr == ""
    assert lines(stdout) == lines(netstat_text(name))


def test_execute_cmd_unknown_program_is_cmd_error_exit_1(fleet):
    stdout, stderr, rc = client(fleet, BUNDLES[0]).execute_cmd("frobnicate.exe /all")
    assert rc == 1 and stdout == ""
    assert stderr == ("'frobnicate.exe' is not recognized as an internal or external command,\r\n"
                      "operable program or batch file.\r\n")


def test_execute_cmd_powershell_encodedcommand(fleet):
    name = BUNDLES[0]
    script = "netstat.exe -ano; exit $LASTEXITCODE"
    enc = base64.b64encode(script.encode("utf-16-le")).decode()
    stdout, stderr, rc = client(fleet, name).execute_cmd(f"powershell.exe -NoProfile -NonInteractive -EncodedCommand {enc}")
    assert rc == 0
    assert lines(stdout) == lines(netstat_text(name))


def test_execute_cmd_powershell_exit_code(fleet):
    stdout, stderr, rc = client(fleet, BUNDLES[0]).execute_cmd('powershell.exe -Command "exit 7"')
    assert rc == 7


def test_pywinrm_run_cmd_and_run_ps(fleet):
    import winrm  # pywinrm: in the test extra
    name = BUNDLES[0]
    kw = fleet.client_kwargs(fleet.host(name))
    url = f"https://{kw['server']}:{kw['port']}/wsman"
    s = winrm.Session(url, auth=(kw["username"], kw["password"]), transport="basic",
                      server_cert_validation="validate", ca_trust_path=kw.get("cert_validation"))
    r = s.run_cmd("netstat.exe", ["-ano"])
    assert r.status_code == 0 and lines(r.std_out.decode("cp437")) == lines(netstat_text(name))
    r = s.run_ps("netstat.exe -ano; exit $LASTEXITCODE")
    assert r.status_code == 0 and lines(r.std_out.decode("cp437")) == lines(netstat_text(name))
