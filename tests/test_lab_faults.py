"""Fault matrix: each lab fault gives the pypsrp client the exception a real Windows host in that state gives."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from xml.etree.ElementTree import ParseError

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from remote.lab.protocol import wsman
from remote.lab.protocol.faults import FaultError, parse_fault_option, parse_faults
from remote.lab.fixture import ScriptedHost, lab_fleet

FAULTS = {
    "refuse": {"kind": "refuse"},
    "auth": {"kind": "auth"},
    "hang": {"kind": "hang"},
    "hang-receive": {"kind": "hang_receive"},
    "slow": {"kind": "slow", "seconds": 2.2},
    "latency": {"kind": "latency", "ms": 150},
    "fault-create": {"kind": "wsman_fault", "action": "Create", "code": 2147942405, "message": "Access is denied."},
    "fault-command": {"kind": "wsman_fault", "action": "Command", "code": 2150858752, "message": "No."},
    "fault-receive": {"kind": "wsman_fault", "action": "Receive", "code": 2150859174, "message": "Quota."},
    "garbage": {"kind": "garbage"},
    "reset": {"kind": "reset"},
    "http500": {"kind": "http500"},
    "healthy": {},
}
CLIENT = dict(read_timeout=2, operation_timeout=1, reconnection_retries=0, reconnection_backoff=0.01,
              connection_timeout=2)


def make_root(tmp: Path) -> Path:
    root = tmp / "fault-bundles"
    for name in FAULTS:
        (root / name).mkdir(parents=True)
        (root / name / "host.json").write_text(json.dumps({"host": name}), encoding="utf-8")
    return root


def factory(path: Path, name):
    name = name or path.name
    return ScriptedHost(name, {"netstat.exe -ano | Out-String": "netstat text\r\n"}, faults=FAULTS[name])


@pytest.fixture(scope="module", params=["basic-https", "ntlm-http"])
def fleet(request, tmp_path_factory):
    mode = dict(auth="basic", tls=True) if request.param == "basic-https" else dict(auth="ntlm", tls=False)
    with lab_fleet(make_root(tmp_path_factory.mktemp("faults")), host_factory=factory, **mode) as f:
        yield f


def session(fleet, name: str, **kw) -> list:
    args = fleet.client_kwargs(name)
    args.update(CLIENT)
    args.update(kw)
    pool = RunspacePool(WSMan(**args))
    pool.open()
    try:
        ps = PowerShell(pool)
        ps.add_cmdlet("netstat.exe").add_argument("-ano").add_cmdlet("Out-String")
        return ps.invoke()
    finally:
        try:  # the Delete must not mask the pipeline's exception (after an NTLM read timeout it fails too)
            pool.close()
        except Exception:
            pass


EXPECTED = [
    ("refuse", requests.exceptions.ConnectionError),
    ("reset", requests.exceptions.ConnectionError),
    ("auth", AuthenticationError),
    ("hang", requests.exceptions.ReadTimeout),
    ("fault-create", WSManFaultError),
    ("fault-command", WSManFaultError),
    ("fault-receive", WSManFaultError),
    ("garbage", ParseError),
    ("http500", WinRMTransportError),
]


@pytest.mark.parametrize("name,exc", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_fault_gives_real_host_exception(fleet, name, exc):
    t0 = time.monotonic()
    with pytest.raises(exc) as ei:
        session(fleet, name, read_timeout=1)
    elapsed = time.monotonic() - t0
    if name == "hang":
        assert not isinstance(ei.value, requests.exceptions.ConnectionError)
        assert 0.9 < elapsed < 4
    else:
        assert elapsed < 2
    if name.startswith("fault-"):
        assert ei.value.code == FAULTS[name]["code"] and ei.value.reason == FAULTS[name]["message"]
        # Machine = the address the client used (recordings: real-fault-*.xml, Machine="127.0.0.1")
        assert ei.value.machine == fleet.host(name).address
    if name == "http500":
        assert ei.value.code == 500 and "lab fault http500" in ei.value.response_text
    if name in ("refuse", "reset"):
        assert not isinstance(ei.value, requests.exceptions.Timeout)


def test_healthy_host_in_the_same_fleet(fleet):
    assert session(fleet, "healthy") == ["netstat text\r\n"]


def test_latency(fleet):
    t0 = time.monotonic()
    assert session(fleet, "latency") == ["netstat text\r\n"]
    n = fleet.host("latency").stats()["requests"]
    assert time.monotonic() - t0 >= n * 0.15 * 0.95


def test_slow_succeeds_after_operation_timeout_faults(fleet):
    before = fleet.host("slow").stats()["status"].get("500", 0)
    t0 = time.monotonic()
    assert session(fleet, "slow") == ["netstat text\r\n"]
    assert 2.1 < time.monotonic() - t0 < 5
    # OperationTimeout 1 s: Windows answers the Receive with fault 2150858793 (HTTP 500) and pypsrp polls again
    # (one or two faults: a loaded machine can start the second Receive late enough to get the output)
    assert fleet.host("slow").stats()["status"].get("500", 0) - before >= 1


def test_hang_receive_is_retried_then_read_timeout(fleet):
    """pypsrp retries a timed-out Receive 5x (6 attempts): pool open works, the pipeline Receive never answers."""
    before = fleet.host("hang-receive").stats()["actions"].get("Receive", 0)
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session(fleet, "hang-receive", read_timeout=0.3)
    assert time.monotonic() - t0 < 6
    st = fleet.host("hang-receive").stats()
    assert st["actions"]["Receive"] - before == 2 + 6  # the two pool-open Receives + 6 pipeline attempts
    assert st["actions"].get("Create", 0) >= 1 and st["actions"].get("Command", 0) >= 1


def test_hung_connections_do_not_block_shutdown(tmp_path):
    root = make_root(tmp_path)
    errors: list[BaseException] = []

    def client(name):
        try:
            session(f, name, read_timeout=60)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    with lab_fleet(root, host_factory=factory) as f:
        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in ("hang", "hang-receive")]
        for t in threads:
            t.start()
        time.sleep(0.8)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 3  # __exit__ returned promptly
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert len(errors) == 2 and all(isinstance(e, requests.exceptions.RequestException) for e in errors), errors


def test_tls_client_that_never_handshakes_does_not_block_others(tmp_path):
    import socket

    root = make_root(tmp_path)
    with lab_fleet(root, host_factory=factory) as f:
        h = f.host("healthy")
        silent = [socket.create_connection((h.address, h.port)) for _ in range(3)]  # no ClientHello
        try:
            assert session(f, "healthy") == ["netstat text\r\n"]
        finally:
            for s in silent:
                s.close()


def test_overrides_replace_bundle_faults(tmp_path):
    root = make_root(tmp_path)
    with lab_fleet(root, host_factory=factory, faults={"healthy": {"kind": "auth"}, "auth": {}}) as f:
        with pytest.raises(AuthenticationError):
            session(f, "healthy")
        assert session(f, "auth") == ["netstat text\r\n"]
    with pytest.raises(Exception, match="unknown host"):
        with lab_fleet(root, host_factory=factory, faults={"nope": {"kind": "auth"}}):
            pass


def test_parse_faults_and_options():
    f = parse_faults([{"kind": "latency", "ms": 20}, {"kind": "slow", "seconds": 3}])
    assert (f.latency_ms, f.slow_seconds, f.kinds) == (20, 3, ["latency", "slow"])
    f = parse_faults({"kind": "wsman_fault", "action": "Command", "code": 5, "message": "m"})
    assert f.wsman_fault_for("Command") == (5, "m") and f.wsman_fault_for("Create") is None
    assert parse_faults({"kind": "wsman_fault"}).wsman_fault_for("create")[0] == wsman.CODE_INTERNAL
    assert not parse_faults({}) and not parse_faults(None)
    assert parse_faults("hang").hang
    with pytest.raises(FaultError):
        parse_faults({"kind": "explode"})
    assert parse_fault_option("web-01=slow:5") == ("web-01", {"kind": "slow", "seconds": "5"})
    assert parse_fault_option("w=wsman_fault:Command:2150858752:Nope: really") == (
        "w", {"kind": "wsman_fault", "action": "Command", "code": "2150858752", "message": "Nope: really"})
    with pytest.raises(FaultError):
        parse_fault_option("no-equals")
    with pytest.raises(FaultError):
        parse_fault_option("w=wsman_fault:Nowhere")
