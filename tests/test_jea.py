"""JEA: `port80 jea` writes a least-privilege endpoint; the lab serves it (NoLanguage, only the role's
commands); port80 scans through it with the same verdicts as through the full endpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.cli.app import app
from remote.lab.fixture import lab_fleet
from remote.remoting import collect, jea


@pytest.fixture(scope="module")
def jea_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("jea") / "d"
    res = CliRunner().invoke(app, ["jea", "--out", str(d), "--group", "CORP\\Port80-Auditors"])
    assert res.exit_code == 0, res.output
    return d


def _verdicts(report: Path) -> dict:
    doc = json.loads(report.read_text(encoding="utf-8"))
    return {h["host"]: (h["status"], json.dumps(h.get("ports"), sort_keys=True)) for h in doc["hosts"]}


def _scan(inv: Path, out: Path, password: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["scan", "-i", str(inv), "--evidence-dir", str(out / "ev"), "--forks", "16",
                                   "--timeout", "20", "-f", "json", "-o", str(out / "report.json")],
                             env={"PORT80_PASSWORD": password})
    return res.exit_code, res.output


def test_files_expose_exactly_the_collector_commands(jea_dir):
    psrc = (jea_dir / "Port80Audit.psrc").read_text(encoding="utf-8-sig")
    pssc = (jea_dir / "Port80Audit.pssc").read_text(encoding="utf-8-sig")
    install = (jea_dir / "INSTALL.txt").read_text(encoding="utf-8-sig")
    # netsh: "http show servicestate|urlacl|iplisten|sslcert" and "int ipv4|ipv6 show excludedportrange
    # protocol=tcp" (issue 13), one pattern per argument position; no position admits add/delete/set
    assert "ValidatePattern('^(http|int)$')" in psrc and "ValidatePattern('^(show|ipv4|ipv6)$')" in psrc
    assert "ValidatePattern('^(servicestate|urlacl|iplisten|sslcert|show)$')" in psrc
    assert "ValidatePattern('^(view=requestq|excludedportrange)$')" in psrc
    assert not re.search(r"ValidatePattern\('[^']*\b(add|delete|set)\b", psrc)
    assert "ValidateSet = 'Win32_Service', 'Win32_OperatingSystem'" in psrc
    for cmdlet in ("Write-Output", "Select-Object", "ConvertTo-Json", "Out-String", "Get-Process"):
        assert f"'{cmdlet}'" in psrc
    assert "Stop-Service" not in psrc and "Set-Service" not in psrc and "Invoke-Expression" not in psrc
    assert "RunAsVirtualAccount = $true" in pssc and "SessionType = 'RestrictedRemoteServer'" in pssc
    assert "'CORP\\Port80-Auditors' = @{ RoleCapabilities = 'Port80Audit' }" in pssc
    assert install.count("Register-PSSessionConfiguration") == 1
    ep = jea.read_endpoint(jea_dir)
    assert set(ep.functions) == {"netsh.exe", "netstat.exe", "tasklist.exe"}
    assert "elevated" in jea.script_kinds()  # scripts: skipped on a NoLanguage endpoint
    assert all(any(c.is_script for c in jea.collector_commands()[k]) for k in jea.script_kinds())


def test_scan_through_jea_equals_full_endpoint(healthy, jea_dir, tmp_path):
    with lab_fleet(healthy, inventory=tmp_path / "full.ini") as fleet:
        code, out = _scan(tmp_path / "full.ini", tmp_path / "full", fleet.password)
        assert code == 0, out
    with lab_fleet(healthy, inventory=tmp_path / "jea.ini", jea=jea_dir) as fleet:
        assert "ansible_psrp_configuration_name=Port80Audit" in (tmp_path / "jea.ini").read_text(encoding="utf-8")
        code, out = _scan(tmp_path / "jea.ini", tmp_path / "jea", fleet.password)
        assert code == 0, out
        logs = [key for h in fleet.hosts for key in h.command_log]
    assert _verdicts(tmp_path / "jea" / "report.json") == _verdicts(tmp_path / "full" / "report.json")
    assert not any("windowsprincipal" in str(k).lower() for k in logs)  # no script reached the host
    host_json = next((tmp_path / "jea" / "ev").rglob("host.json"))
    meta = json.loads(host_json.read_text(encoding="utf-8"))
    assert meta["jea"]["skipped"] == sorted(set(jea.script_kinds()) & set(collect.EVIDENCE))  # fallbacks not asked


def test_jea_session_is_nolanguage_with_only_the_role(healthy, jea_dir, tmp_path):
    from pypsrp.exceptions import WSManFaultError
    from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
    from pypsrp.wsman import WSMan

    with lab_fleet(healthy, hosts=1, jea=jea_dir) as fleet:
        kw = fleet.client_kwargs(fleet.hosts[0])
        with WSMan(**kw) as wsman, RunspacePool(wsman, configuration_name="Port80Audit") as pool:
            ps = PowerShell(pool)
            ps.add_script("Get-Process | Select-Object -First 1")
            ps.invoke()
            assert ps.state == PSInvocationState.FAILED
            assert "no-language mode" in str(ps.streams.error[0]) or "no-language mode" in str(ps._error)

            ps = PowerShell(pool)
            ps.add_cmdlet("Stop-Service").add_parameter("Name", "W3SVC")
            ps.invoke()
            assert ps.state == PSInvocationState.FAILED
            assert "CommandNotFoundException" in repr(ps.streams.error[0].fq_error) or \
                "is not recognized" in str(ps.streams.error[0])

            ps = PowerShell(pool)
            ps.add_cmdlet("netsh.exe").add_argument("http").add_argument("add").add_argument("iplisten")
            ps.add_argument("ipaddress=127.0.0.1")
            ps.invoke()
            assert ps.state == PSInvocationState.FAILED
            assert "does not match" in str(ps.streams.error[0])

            ps = PowerShell(pool)
            ps.add_cmdlet("netsh.exe").add_argument("http").add_argument("show").add_argument("iplisten")
            ps.add_cmdlet("Out-String")
            out = ps.invoke()
            assert ps.state == PSInvocationState.COMPLETED and "IP" in "".join(out)

        with WSMan(**kw) as wsman:
            with pytest.raises(WSManFaultError) as e:
                with RunspacePool(wsman, configuration_name="NoSuch.Endpoint"):
                    pass
    assert e.value.code == 2150858811
    assert ("The resource URI (http://schemas.microsoft.com/powershell/NoSuch.Endpoint) was not found in the "
            "WS-Management catalog") in e.value.reason
