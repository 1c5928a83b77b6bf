"""LabFleet: addresses and ports, TLS material, inventory, stats, the `lab` fixture, `port80 lab serve`."""

from __future__ import annotations

import configparser
import ipaddress
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from remote.lab.cli import lab_app, serve_lab
from remote.lab.fixture import ScriptedHost, lab_fleet
from remote.lab.fleet.server import LabError, LabFleet

REPO = Path(__file__).resolve().parents[1]


def bundles(tmp: Path, names=("alpha", "beta", "gamma")) -> Path:
    root = tmp / "profiles"
    for n in names:
        (root / n).mkdir(parents=True)
        (root / n / "host.json").write_text(json.dumps({"host": n}), encoding="utf-8")
        (root / n / "netstat.txt").write_text(f"netstat of {n}\r\n", encoding="utf-8")
    return root


def factory(path: Path, name):
    return ScriptedHost.from_bundle(path, name)


def run_netstat(wsman: WSMan) -> list:
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_script("netstat.exe -ano | Out-String")
        return ps.invoke()


def parse_inventory(path: Path) -> tuple[dict, dict]:
    hosts: dict[str, dict] = {}
    group_vars: dict[str, str] = {}
    section = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section.endswith(":vars"):
            k, _, v = line.partition("=")
            group_vars[k] = v
        else:
            name, *pairs = line.split()
            hosts[name] = dict(p.split("=", 1) for p in pairs)
    return hosts, group_vars


def test_cycling_names_and_ephemeral_ports(tmp_path):
    with lab_fleet(bundles(tmp_path), hosts=7, host_factory=factory) as fleet:
        names = [h.name for h in fleet.hosts]
        assert names == ["alpha", "beta", "gamma", "alpha-2", "beta-2", "gamma-2", "alpha-3"]
        assert {h.address for h in fleet.hosts} == {"127.0.0.1"} and len({h.port for h in fleet.hosts}) == 7
        assert run_netstat(WSMan(**fleet.client_kwargs("beta-2"))) == ["netstat of beta\r\n"]
        assert fleet.host("beta-2").bundle_dir.name == "beta"
        # distinct emulated hosts: their own state
        assert fleet.host("beta-2").host is not fleet.host("beta").host
        assert fleet.host("beta").command_log == [] and len(fleet.host("beta-2").command_log) == 1


def test_distinct_loopback_addresses_on_the_real_port(tmp_path):
    base = f"127.{random.randint(2, 250)}.{random.randint(2, 250)}.1"
    try:
        fleet = LabFleet(bundles(tmp_path), hosts=3, base_address=base, host_factory=factory)
        fleet.start()
    except LabError as e:  # port 5986 taken on that address by a parallel run: nothing to test here
        pytest.skip(str(e))
    with fleet:
        assert [h.address for h in fleet.hosts] == [str(ipaddress.ip_address(base) + i) for i in range(3)]
        assert {h.port for h in fleet.hosts} == {5986}
        kw = fleet.client_kwargs(fleet.hosts[2])
        kw.pop("port")  # pypsrp's default port for HTTPS: 5986
        assert run_netstat(WSMan(**kw)) == ["netstat of gamma\r\n"]
        inv = fleet.write_inventory(tmp_path / "inv.ini")
        hosts, gv = parse_inventory(inv)
        assert hosts["gamma"] == {"ansible_host": str(ipaddress.ip_address(base) + 2)}
        assert gv["ansible_port"] == "5986"


def test_only_loopback(tmp_path):
    for addr in ("10.0.0.1", "0.0.0.0", "example.com"):
        with pytest.raises(LabError, match="loopback"):
            LabFleet(bundles(tmp_path / addr), base_address=addr, host_factory=factory).start()


def test_tls_material(tmp_path):
    with lab_fleet(bundles(tmp_path), host_factory=factory, workdir=tmp_path / "work") as fleet:
        assert fleet.ca_path == (tmp_path / "work" / "ca.pem").resolve() and fleet.ca_path.is_file()
        leaf = x509.load_pem_x509_certificate((tmp_path / "work" / "server.pem").read_bytes())
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
        dns = set(san.get_values_for_type(x509.DNSName))
        assert {"127.0.0.1", "::1"} <= ips and {"alpha", "beta", "gamma", "localhost"} <= dns
        assert oct((tmp_path / "work" / "server.key").stat().st_mode & 0o777) == "0o600"
        # validation really happens: without the CA the client refuses the lab's certificate
        import requests

        kw = fleet.client_kwargs("alpha")
        kw["cert_validation"] = True
        with pytest.raises(requests.exceptions.SSLError):
            run_netstat(WSMan(**kw, reconnection_retries=0))


def test_one_certificate_per_group_of_hosts(tmp_path):
    """70 hosts on distinct addresses: 2 certificates (64 hosts each at most), each valid for its hosts only."""
    base = f"127.{random.randint(2, 250)}.{random.randint(2, 250)}.1"
    with lab_fleet(bundles(tmp_path), hosts=70, base_address=base, port=0, host_factory=factory,
                   workdir=tmp_path / "w") as fleet:
        assert sorted(p.name for p in (tmp_path / "w").glob("server*.pem")) == ["server-1.pem", "server.pem"]
        second = x509.load_pem_x509_certificate((tmp_path / "w" / "server-1.pem").read_bytes())
        ips = {str(i) for i in second.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)}
        assert fleet.hosts[69].address in ips and fleet.hosts[0].address not in ips
        for h in (fleet.hosts[0], fleet.hosts[63], fleet.hosts[64], fleet.hosts[69]):
            assert run_netstat(WSMan(**fleet.client_kwargs(h))) == [f"netstat of {h.bundle_dir.name}\r\n"]


def test_inventory_basic_https_and_ntlm_http(tmp_path):
    with lab_fleet(bundles(tmp_path), host_factory=factory) as fleet:
        hosts, gv = parse_inventory(fleet.write_inventory(tmp_path / "a.ini"))
        assert set(hosts) == {"alpha", "beta", "gamma"}
        assert all(set(v) == {"ansible_host", "ansible_port"} for v in hosts.values())  # ephemeral: per host
        assert gv == {"ansible_connection": "psrp", "ansible_user": "auditor", "ansible_port": "5986", "ansible_psrp_protocol": "https",
                      "ansible_psrp_auth": "basic", "ansible_psrp_cert_validation": "validate",
                      "ansible_psrp_ca_cert": str(fleet.ca_path)}
        assert fleet.password not in (tmp_path / "a.ini").read_text()
        # the inventory is enough to connect
        h = hosts["beta"]
        w = WSMan(h["ansible_host"], port=int(h["ansible_port"]), username=gv["ansible_user"],
                  password=fleet.password, ssl=True, auth="basic", cert_validation=gv["ansible_psrp_ca_cert"])
        assert run_netstat(w) == ["netstat of beta\r\n"]
    with lab_fleet(bundles(tmp_path / "n"), auth="ntlm", host_factory=factory) as fleet:
        _, gv = parse_inventory(fleet.write_inventory(tmp_path / "n.ini"))
        assert (gv["ansible_psrp_protocol"], gv["ansible_psrp_auth"], gv["ansible_port"]) == ("http", "ntlm", "5985")
        assert "ansible_psrp_ca_cert" not in gv
    # configparser (what many INI readers use) can read it too
    cp = configparser.ConfigParser(allow_no_value=True, delimiters=("=",))
    cp.read_string((tmp_path / "a.ini").read_text())
    assert cp["lab:vars"]["ansible_psrp_auth"] == "basic"


def test_project_inventory_reader_gets_working_settings(tmp_path):
    """port80's own inventory reader (remote/inventory/ansible_ini.py) resolves the lab's inventory to settings that connect."""
    from remote.inventory import ansible_ini as inventory
    from remote.inventory.targets import to_spec
    from remote.remoting.collect import connect
    for mode in (dict(auth="basic"), dict(auth="ntlm")):
        with lab_fleet(bundles(tmp_path / mode["auth"]), host_factory=factory, **mode) as fleet:
            inv = inventory.load_inventory(fleet.write_inventory(tmp_path / f"{mode['auth']}.ini"))
            assert not [w for w in inv.warnings if "password" in w.lower()]
            hc = inv.host("gamma")
            assert (hc.address, hc.port, hc.auth, hc.user) == ("127.0.0.1", fleet.host("gamma").port,
                                                               mode["auth"], "auditor")
            assert run_netstat(connect(to_spec(hc), fleet.password)) == ["netstat of gamma\r\n"]


def test_stats(tmp_path):
    with lab_fleet(bundles(tmp_path), host_factory=factory, faults={"gamma": {"kind": "refuse"}}) as fleet:
        run_netstat(WSMan(**fleet.client_kwargs("alpha")))
        s = fleet.stats()
        assert s["hosts"]["alpha"]["actions"] == {"Create": 1, "Receive": 3, "Command": 1, "Delete": 1}
        assert s["hosts"]["alpha"]["pipelines"] == 1 and s["hosts"]["alpha"]["sessions"] == 1
        assert s["hosts"]["gamma"]["refused"] is True
        assert s["total"]["requests"] == 6  # pool open in two Receives (real-message-flow-summary.txt)
        fleet.reset_stats()
        assert fleet.stats()["total"]["requests"] == 0


def test_tls_stats_and_a_slow_handshake_is_waited_for(tmp_path, monkeypatch):
    """Each HTTPS connection counts its handshake and the longest wait from accept to handshake done; a client
    that takes longer than 10 s to send its ClientHello (port80 with 1,000 hosts on one saturated core) still
    gets its handshake: the lab waits as long as HTTP.sys's idle-connection timeout (120 s)."""
    import socket
    import ssl

    from remote.lab.protocol import server

    assert server.HANDSHAKE_TIMEOUT == server.IDLE_TIMEOUT == 120.0
    monkeypatch.setattr(server, "HANDSHAKE_TIMEOUT", 2.0)  # the wait is real: shown with a 2 s limit
    with lab_fleet(bundles(tmp_path), host_factory=factory, tls=True) as fleet:
        h = fleet.host("alpha")
        ctx = ssl.create_default_context(cafile=str(fleet.ca_path))
        with socket.create_connection((h.address, h.port)) as s:
            time.sleep(0.3)
            ctx.wrap_socket(s, server_hostname=h.address).close()
        with socket.create_connection((h.address, h.port)) as s:
            time.sleep(3.0)  # longer than the limit: the lab gives up
            with pytest.raises((ssl.SSLError, OSError)):
                ctx.wrap_socket(s, server_hostname=h.address)
        deadline = time.monotonic() + 5
        while fleet.stats()["hosts"]["alpha"]["tls_failures"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        st = fleet.stats()["hosts"]["alpha"]
        assert (st["tls_handshakes"], st["tls_failures"]) == (1, 1)
        assert st["tls_wait_ms_max"] >= 2000


@pytest.mark.lab(hosts=2, profiles=REPO / "examples", host_factory=factory)
def test_lab_fixture(lab):
    assert len(lab.hosts) == 2 and lab.inventory_path.is_file()
    assert lab.hosts[0].name == "seed-branchcache" and lab.hosts[1].name == "seed-branchcache-2"
    assert run_netstat(WSMan(**lab.client_kwargs(lab.hosts[1])))[0].startswith("(...)")


def test_serve_lab_function(tmp_path):
    """`port80 lab serve` underneath: serves, writes the inventory, prints how to scan, stops cleanly."""
    lines: list[str] = []
    got: dict = {}
    stop = threading.Event()

    def ready(fleet):
        hosts, gv = parse_inventory(fleet.inventory_path)
        h = hosts["beta"]
        w = WSMan(h["ansible_host"], port=int(h.get("ansible_port", gv["ansible_port"])), username="auditor",
                  password=fleet.password, ssl=False, auth="ntlm")
        got["out"] = run_netstat(w)
        got["fleet"] = fleet
        got["switch"] = sys.getswitchinterval()
        stop.set()

    switch = sys.getswitchinterval()
    code = serve_lab(profiles=bundles(tmp_path), auth="ntlm", inventory_out=tmp_path / "inv.ini",
                     base_address="127.0.0.1", port=0, faults=["gamma=slow:1"], stop=stop, echo=lines.append,
                     on_ready=ready)
    assert code == 0 and got["out"] == ["netstat of beta\r\n"]
    # a serving lab hands the GIL over every 50 ms (a thousand threads waking at once), and gives it back
    assert got["switch"] == pytest.approx(0.05) and sys.getswitchinterval() == switch
    text = "\n".join(lines)
    assert "PORT80_PASSWORD='Lab-Audit-2026!' port80 scan -i " + str((tmp_path / "inv.ini").resolve()) in text
    assert "[fault: slow]" in text and "stopping" in text
    assert got["fleet"].stopping.is_set()
    assert serve_lab(profiles=tmp_path / "nope", echo=lines.append) == 2
    assert serve_lab(profiles=bundles(tmp_path / "x"), faults=["bad"], echo=lines.append) == 2


def test_lab_serve_typer_command(tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(lab_app, ["serve", "--profiles", str(bundles(tmp_path)), "--base-address",
                                          "127.0.0.1", "--port", "0", "--inventory-out", str(tmp_path / "i.ini"),
                                          "--duration", "0.2", "--hosts", "4"])
    assert result.exit_code == 0, result.output
    assert "4 emulated Windows hosts" in result.output and "alpha-2" in result.output
    hosts, _ = parse_inventory(tmp_path / "i.ini")
    assert list(hosts) == ["alpha", "beta", "gamma", "alpha-2"]
    # distinct IPv4 loopback addresses from the base, each on an ephemeral port
    assert [h["ansible_host"] for h in hosts.values()] == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    bad = CliRunner().invoke(lab_app, ["serve", "--profiles", str(bundles(tmp_path / "b")), "--auth", "basic",
                                       "--no-tls", "--inventory-out", str(tmp_path / "j.ini"), "--duration", "0"])
    assert bad.exit_code == 2 and "AllowUnencrypted" in bad.output


def test_lab_serve_subprocess_sigint(tmp_path):
    inv = tmp_path / "inv.ini"
    env = dict(os.environ, PYTHONPATH=str(REPO), PORT80_LAB_PASSWORD="Sub-Process-1!")
    proc = subprocess.Popen(
        [sys.executable, "-m", "remote.lab.cli", "serve", "--profiles", str(bundles(tmp_path)), "--base-address",
         "::1", "--inventory-out", str(inv), "--fault", "beta=auth"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while not inv.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert inv.exists(), proc.communicate(timeout=5)[0] if proc.poll() is not None else "no inventory"
        time.sleep(0.2)
        hosts, gv = parse_inventory(inv)
        h = hosts["alpha"]
        assert h["ansible_host"] == "::1"
        w = WSMan("::1", port=int(h["ansible_port"]), username="auditor", password="Sub-Process-1!", ssl=True,
                  auth="basic", cert_validation=gv["ansible_psrp_ca_cert"])
        assert run_netstat(w) == ["netstat of alpha\r\n"]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "Sub-Process-1!" in out and "stopping" in out and "[fault: auth]" in out
    assert not Path(gv["ansible_psrp_ca_cert"]).exists()  # temporary TLS files removed on exit
