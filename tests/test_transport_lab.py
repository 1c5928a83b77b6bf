"""remote/transport.py's short Negotiate/NTLM handshake, over real sockets against the lab with the
real pypsrp client: 6 HTTP requests for a scan of one host instead of pypsrp's 8, the same evidence,
the same errors for a wrong password, and pypsrp's own handshake when a host will not take it."""

from __future__ import annotations

import pytest
from pypsrp.exceptions import AuthenticationError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from remote.collect import ConnectionSpec, collect
from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir
from remote.transport import tune_wsman


@pytest.fixture(scope="module")
def ntlm_lab(tmp_path_factory):
    src = demo_fleet_dir()
    with lab_fleet(src, auth="ntlm", base_address="127.0.0.1", port=0,
                   workdir=tmp_path_factory.mktemp("lab")) as fleet:
        yield fleet


def _host(fleet, name="branchcache"):
    return next(h for h in fleet.hosts if h.name == name)


def _spec(fleet, h, auth="ntlm") -> ConnectionSpec:
    return ConnectionSpec(name=h.name, address=h.address, port=h.port, scheme="http", auth=auth, user=fleet.user,
                          encryption="auto")


def _netstat(kw: dict, tuned: bool) -> str:
    wsman = WSMan(**kw)
    if tuned:
        tune_wsman(wsman)
    with wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("netstat.exe").add_argument("-ano").add_cmdlet("Out-String")
        return "".join(ps.invoke())


@pytest.mark.parametrize("auth", ["ntlm", "negotiate"])
def test_scan_of_one_host_is_6_requests_with_the_same_evidence(ntlm_lab, auth):
    h = _host(ntlm_lab)
    ntlm_lab.reset_stats()
    got = collect(_spec(ntlm_lab, h, auth), ntlm_lab.password)
    st = h.stats()
    assert st["requests"] == 6, st
    assert st["actions"].get("Create") == 1 and st["actions"].get("Delete") == 1
    assert st["status"] == {"200": 5, "401": 1}
    assert not got.command_errors
    assert got.texts["netstat"] == (demo_fleet_dir() / "branchcache" / "netstat.txt").read_bytes().decode("utf-8")


def test_same_output_as_pypsrps_own_handshake(ntlm_lab):
    h = _host(ntlm_lab, "ssrs")
    kw = ntlm_lab.client_kwargs(h)
    ntlm_lab.reset_stats()
    plain = _netstat(kw, tuned=False)
    classic = h.stats()["requests"]
    ntlm_lab.reset_stats()
    assert _netstat(kw, tuned=True) == plain
    assert h.stats()["requests"] == classic - 2


def test_wrong_password_is_still_an_authentication_error(ntlm_lab):
    h = _host(ntlm_lab)
    with pytest.raises(AuthenticationError):
        collect(_spec(ntlm_lab, h), "not-the-password")


def test_a_host_that_refuses_the_combined_leg_gets_pypsrps_handshake(ntlm_lab, monkeypatch):
    from remote.lab import server as lab_server

    real = lab_server.LabHTTPServer.handle_post

    def picky(self, h):  # an older server: 401 to an AUTHENTICATE token that comes with a body
        if (h.headers.get("Authorization") or "").startswith("Negotiate") and int(h.headers.get("Content-Length") or 0) \
                and h.negotiate.ctx is not None and h.negotiate.user is None:
            h.rfile.read(int(h.headers["Content-Length"]))
            h.negotiate.reset()
            self.stats.add(requests=1)
            self._challenge(h, bare=True)
            return
        return real(self, h)

    monkeypatch.setattr(lab_server.LabHTTPServer, "handle_post", picky)
    h = _host(ntlm_lab, "iis-idle")
    ntlm_lab.reset_stats()
    got = collect(_spec(ntlm_lab, h), ntlm_lab.password)
    assert not got.command_errors and got.texts["netstat"]
    assert h.stats()["requests"] == 2 + 8  # the refused short handshake, then pypsrp's


@pytest.mark.parametrize("form", ["{u}", "LAB\\{u}", ".\\{u}", "{u}@LAB"])
def test_every_user_name_form_windows_accepts_authenticates(ntlm_lab, form):
    from dataclasses import replace

    h = _host(ntlm_lab, "free")
    spec = replace(_spec(ntlm_lab, h), user=form.format(u=ntlm_lab.user))
    assert collect(spec, ntlm_lab.password).texts["netstat"]
    with pytest.raises(AuthenticationError):
        collect(spec, ntlm_lab.password + "x")
