"""remote/remoting/transport.py's short Negotiate/NTLM handshake, over real sockets against the lab with the
real pypsrp client: 6 HTTP requests for a scan of one host instead of pypsrp's 8, the same evidence,
the same errors for a wrong password, and pypsrp's own handshake when a host will not take it."""

from __future__ import annotations

import pytest
from pypsrp.exceptions import AuthenticationError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from remote.remoting.collect import ConnectionSpec, collect
from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir
from remote.remoting.transport import tune_wsman


@pytest.fixture(scope="module")
def ntlm_lab(tmp_path_factory):
    src = demo_fleet_dir()
    with lab_fleet(src, auth="ntlm", base_address="127.0.0.1", port=0,
                   workdir=tmp_path_factory.mktemp("lab")) as fleet:
        yield fleet


def _host(fleet, name="branchcache"):
    return next(h for h in fleet.hosts if h.name == name)


def _settled_stats(h) -> dict:
    """The host's counters once its last reply is counted (the lab counts a reply after sending it,
    so the client can be done a moment before)."""
    import time

    deadline = time.monotonic() + 2.0
    while True:
        st = h.stats()
        if sum(st["status"].values()) >= st["requests"] or time.monotonic() > deadline:
            return st
        time.sleep(0.01)


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
def test_scan_of_one_host_is_7_requests_with_the_same_evidence(ntlm_lab, auth):
    """6 requests before the lab opened pools in two Receives as Windows does (real-message-flow-summary.txt)."""
    h = _host(ntlm_lab)
    ntlm_lab.reset_stats()
    got = collect(_spec(ntlm_lab, h, auth), ntlm_lab.password)
    st = _settled_stats(h)
    assert st["requests"] == 7, st
    assert st["actions"].get("Create") == 1 and st["actions"].get("Delete") == 1
    assert st["status"] == {"200": 6, "401": 1}
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
    from remote.lab.protocol import server as lab_server

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
    assert h.stats()["requests"] == 2 + 9  # the refused short handshake, then pypsrp's (pool open: 2 Receives)


@pytest.mark.parametrize("form", ["{u}", "LAB\\{u}", ".\\{u}", "{u}@LAB"])
def test_every_user_name_form_windows_accepts_authenticates(ntlm_lab, form):
    from dataclasses import replace

    h = _host(ntlm_lab, "free")
    spec = replace(_spec(ntlm_lab, h), user=form.format(u=ntlm_lab.user))
    assert collect(spec, ntlm_lab.password).texts["netstat"]
    with pytest.raises(AuthenticationError):
        collect(spec, ntlm_lab.password + "x")


# ---------------------------------------------------------------------------------- port80's own HTTP sending

from remote.runner.failures import classify  # noqa: E402


@pytest.fixture(scope="module")
def https_lab(tmp_path_factory):
    with lab_fleet(demo_fleet_dir(), auth="basic", tls=True, base_address="127.0.0.1", port=0,
                   workdir=tmp_path_factory.mktemp("lab-tls")) as fleet:
        yield fleet


def _https_spec(fleet, h, **kw) -> ConnectionSpec:
    base = dict(name=h.name, address=h.address, port=h.port, scheme="https", auth="basic", user=fleet.user,
                cert_validation=str(fleet.ca_path))
    base.update(kw)
    return ConnectionSpec(**base)


def _status(spec, password):
    try:
        collect(spec, password)
        return "ok"
    except Exception as e:  # noqa: BLE001
        return classify(e, [password])[0]


def test_certificates_are_validated_unless_the_user_opts_out(https_lab):
    h = _host(https_lab, "free")
    pw = https_lab.password
    assert _status(_https_spec(https_lab, h), pw) == "ok"  # the lab's CA
    assert _status(_https_spec(https_lab, h, cert_validation=True), pw) == "tls"  # public CAs: not the lab's
    assert _status(_https_spec(https_lab, h, cert_validation=False), pw) == "ok"  # ansible ..._cert_validation=ignore


def test_basic_over_https_is_6_requests_on_one_connection(https_lab):
    h = _host(https_lab, "nginx")
    https_lab.reset_stats()
    got = collect(_https_spec(https_lab, h), https_lab.password)
    st = _settled_stats(h)
    # pool open in two Receives (real-message-flow-summary.txt)
    assert got.texts["netstat"] and st["requests"] == 6 and st["connections"] == 1 and st["status"] == {"200": 6}


def test_wrong_basic_password_is_an_auth_failure(https_lab):
    assert _status(_https_spec(https_lab, _host(https_lab, "free")), "wrong") == "auth"


class _OneShotServer:
    """Answers each request with 200 "ok" and then closes the connection without saying so."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            c.close()


def test_a_dropped_keep_alive_connection_is_reopened_for_basic_only():
    import time

    import requests

    from remote.remoting.transport import _Connection

    srv = _OneShotServer()
    basic = _Connection("127.0.0.1", srv.port, None, 5.0, reconnect=True)
    assert basic.post("/wsman", b"", {}, 5.0).content == b"ok"
    time.sleep(0.05)
    assert basic.post("/wsman", b"", {}, 5.0).content == b"ok" and srv.accepted == 2
    ntlm = _Connection("127.0.0.1", srv.port, None, 5.0, reconnect=False)
    ntlm.post("/wsman", b"", {}, 5.0)
    time.sleep(0.05)
    with pytest.raises(requests.exceptions.ConnectionError):  # its authentication was on that connection
        ntlm.post("/wsman", b"", {}, 5.0)


def test_a_certificate_for_another_name_is_refused(tmp_path):
    """A certificate from a trusted CA, but for another host name: a TLS failure, not a connection."""
    import socket
    import ssl
    import threading

    import requests

    from remote.lab.protocol.tls import LabCA, new_key, write_key
    from remote.remoting.transport import _Connection, _tls_context

    ca = LabCA()
    key = new_key()
    (tmp_path / "srv.pem").write_bytes(ca.issue(["other.example"], key))
    write_key(key, tmp_path / "srv.key")
    ca_file = ca.write(tmp_path / "ca.pem")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "srv.pem", tmp_path / "srv.key")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)

    def serve():
        for _ in range(2):
            try:
                c, _ = sock.accept()
            except OSError:  # the test closed the listening socket
                return
            try:
                ctx.wrap_socket(c, server_side=True).close()
            except (ssl.SSLError, OSError):
                c.close()

    threading.Thread(target=serve, daemon=True).start()
    conn = _Connection("127.0.0.1", sock.getsockname()[1], _tls_context(str(ca_file)), 5.0, reconnect=True)
    with pytest.raises(requests.exceptions.SSLError) as e:
        conn.post("/wsman", b"", {}, 5.0)
    assert classify(e.value)[0] == "tls"
    sock.close()
