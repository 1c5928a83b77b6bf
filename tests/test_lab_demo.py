"""The shipped demo fleet through the `lab` fixture (engine + protocol server), with a plain pypsrp client."""

from __future__ import annotations

import pytest
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from remote.evidence.textio import decode_text


def _netstat(fleet, host, **kw) -> list:
    with RunspacePool(WSMan(**fleet.client_kwargs(host), read_timeout=10, operation_timeout=5,
                            reconnection_retries=0, **kw)) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("netstat.exe").add_argument("-ano").add_cmdlet("Out-String")
        out = ps.invoke()
        assert not ps.had_errors, [str(e) for e in ps.streams.error]
        return out


def _healthy(fleet):
    return [h for h in fleet.hosts if not h.faults and (h.bundle_dir / "netstat.txt").is_file()]


def test_demo_fleet_netstat_byte_identical_basic_https(lab):
    hosts = _healthy(lab)
    assert len(hosts) >= 5
    for h in hosts:
        assert _netstat(lab, h) == [decode_text((h.bundle_dir / "netstat.txt").read_bytes())], h.name
        assert h.stats()["requests"] == 6  # Create, Receive ×2 (pool open, as recorded), Command, Receive, Delete


@pytest.mark.lab(auth="ntlm")
def test_demo_fleet_netstat_byte_identical_ntlm_http(lab):
    assert not lab.tls
    for h in _healthy(lab):
        assert _netstat(lab, h) == [decode_text((h.bundle_dir / "netstat.txt").read_bytes())], h.name
        assert h.stats()["requests"] == 9  # + pypsrp's blank POST and 2 NTLM legs


def test_demo_fleet_faults(lab):
    kinds = {h.name: h.faults.kinds for h in lab.hosts if h.faults}
    assert ["auth"] in kinds.values() and ["wsman_fault"] in kinds.values()
    for h in lab.hosts:
        if h.faults.kinds == ["auth"]:
            with pytest.raises(AuthenticationError):
                _netstat(lab, h)
        elif h.faults.kinds == ["wsman_fault"]:
            with pytest.raises(WSManFaultError) as ei:
                _netstat(lab, h)
            assert ei.value.code == next(iter(h.faults.wsman_faults.values()))[0]
