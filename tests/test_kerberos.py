"""Kerberos end to end: the lab's own MIT KDC (remote/lab/protocol/kdc.py), the lab's Kerberos acceptor,
and port80's Kerberos client (remote/remoting/kerberos.py, transport.py) over real sockets.

Needs the OS's MIT KDC (krb5-kdc, krb5-admin-server, krb5-user) and ``port80[kerberos]``; `.ci/run`
installs both, so these tests run (they are not skipped) in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import krb5_config
from typer.testing import CliRunner

from remote.cli.app import app
from remote.lab.fixture import lab_fleet
from remote.remoting import kerberos


def _verdicts(report: Path) -> dict[str, object]:
    """host -> (status, per-port verdict without times and evidence paths)."""
    doc = json.loads(report.read_text(encoding="utf-8"))
    out = {}
    for h in doc["hosts"]:
        ports = [{k: v for k, v in p.items() if k not in ("evidence",)} for p in h.get("ports") or []]
        out[h["host"]] = (h["status"], json.dumps(ports, sort_keys=True))
    return out


def _scan(inv: Path, out: Path, env: dict, *extra: str) -> tuple[int, str, dict]:
    res = CliRunner().invoke(app, ["scan", "-i", str(inv), "--evidence-dir", str(out / "ev"), "--forks", "16",
                                   "--timeout", "20", "-f", "json", "-o", str(out / "report.json"), *extra], env=env)
    doc = json.loads((out / "report.json").read_text(encoding="utf-8")) if (out / "report.json").exists() else {}
    return res.exit_code, res.output, {h["host"]: h for h in doc.get("hosts", [])}


@pytest.fixture(scope="module")
def basic_verdicts(healthy, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("basic")
    with lab_fleet(healthy, inventory=tmp / "inv.ini") as fleet:
        code, output, _ = _scan(tmp / "inv.ini", tmp, {"PORT80_PASSWORD": fleet.password})
    assert code == 0, output
    return _verdicts(tmp / "report.json")


@pytest.fixture(scope="module")
def krb_lab(healthy, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("krb")
    with lab_fleet(healthy, auth="kerberos", inventory=tmp / "inv.ini", workdir=tmp / "lab") as fleet, \
            krb5_config(fleet.kdc.krb5_conf):
        yield fleet


def _kinit(fleet, ccache: str, password: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KRB5_CONFIG=str(fleet.kdc.krb5_conf), KRB5CCNAME=ccache)
    return subprocess.run(["kinit", f"{fleet.user}@{fleet.kdc.realm}"], input=password + "\n", text=True,
                          capture_output=True, env=env, timeout=30)


def test_lab_writes_kerberos_settings(krb_lab):
    text = krb_lab.inventory_path.read_text(encoding="utf-8")
    assert "ansible_psrp_auth=kerberos" in text and "ansible_psrp_negotiate_service=HTTP" in text
    assert f"ansible_psrp_negotiate_hostname_override=nginx.{krb_lab.kdc.realm.lower()}" in text
    conf = krb_lab.kdc.krb5_conf.read_text(encoding="utf-8")
    assert "rdns = false" in conf and "dns_canonicalize_hostname = false" in conf
    assert krb_lab.kdc.running and krb_lab.kdc.keytab.exists()


def test_kinit_then_scan_asks_no_password(krb_lab, basic_verdicts, tmp_path):
    cc = f"FILE:{tmp_path / 'user-ccache'}"
    assert _kinit(krb_lab, cc, krb_lab.password).returncode == 0
    code, output, hosts = _scan(krb_lab.inventory_path, tmp_path, {"KRB5CCNAME": cc, "PORT80_PASSWORD": None})
    assert code == 0, output
    assert {h["status"] for h in hosts.values()} <= {"ok", "partial"}  # not-elevated is partial by design
    assert _verdicts(tmp_path / "report.json") == basic_verdicts


def test_password_uses_a_private_cache_once(krb_lab, basic_verdicts, tmp_path):
    # the user has a ticket in the default cache: with a password, port80 neither reads nor writes it
    user_cc = tmp_path / "user-ccache"
    assert _kinit(krb_lab, f"FILE:{user_cc}", krb_lab.password).returncode == 0
    before = (user_cc.read_bytes(), user_cc.stat().st_mtime_ns)
    as_before = krb_lab.kdc.as_exchanges()
    code, output, hosts = _scan(krb_lab.inventory_path, tmp_path,
                                {"KRB5CCNAME": f"FILE:{user_cc}", "PORT80_PASSWORD": krb_lab.password})
    assert code == 0, output
    assert {h["status"] for h in hosts.values()} <= {"ok", "partial"}  # not-elevated is partial by design
    assert _verdicts(tmp_path / "report.json") == basic_verdicts
    assert (user_cc.read_bytes(), user_cc.stat().st_mtime_ns) == before  # untouched: no service ticket added
    assert 1 <= krb_lab.kdc.as_exchanges() - as_before <= 2  # one ticket for the whole fleet


def test_no_default_cache_is_created(krb_lab, tmp_path):
    kerberos.forget()
    user_cc = tmp_path / "none"
    code, output, hosts = _scan(krb_lab.inventory_path, tmp_path,
                                {"KRB5CCNAME": f"FILE:{user_cc}", "PORT80_PASSWORD": krb_lab.password}, "--limit", "nginx")
    assert code == 0, output
    assert not user_cc.exists()


def test_wrong_password_is_auth_with_reason_and_one_attempt(krb_lab, tmp_path):
    kerberos.forget()
    as_before = krb_lab.kdc.as_exchanges()
    code, output, hosts = _scan(krb_lab.inventory_path, tmp_path,
                                {"KRB5CCNAME": f"FILE:{tmp_path / 'cc'}", "PORT80_PASSWORD": "wrong-password"})
    assert code == 1
    assert {h["status"] for h in hosts.values()} == {"auth"}
    for h in hosts.values():
        assert "pre-authentication failed" in h["error"] and "wrong password" in h["error"]
        assert "\n" not in h["error"]
    assert krb_lab.kdc.as_exchanges() - as_before <= 2  # remembered: not one attempt per host


def test_unknown_service_principal_names_it(krb_lab, tmp_path):
    inv = tmp_path / "inv.ini"
    text = krb_lab.inventory_path.read_text(encoding="utf-8")
    realm = krb_lab.kdc.realm.lower()
    inv.write_text(text.replace(f"override=nginx.{realm}", f"override=nosuch.{realm}"), encoding="utf-8")
    code, output, hosts = _scan(inv, tmp_path, {"PORT80_PASSWORD": krb_lab.password}, "--limit", "nginx,free")
    assert hosts["free"]["status"] == "ok"
    assert hosts["nginx"]["status"] == "auth"
    assert f"HTTP/nosuch.{realm}" in hosts["nginx"]["error"] and "unknown service principal" in hosts["nginx"]["error"]


def test_ntlm_refused_negotiate_goes_kerberos(krb_lab, basic_verdicts, tmp_path):
    text = krb_lab.inventory_path.read_text(encoding="utf-8")
    ntlm = tmp_path / "ntlm.ini"
    ntlm.write_text(text.replace("ansible_psrp_auth=kerberos", "ansible_psrp_auth=ntlm"), encoding="utf-8")
    (tmp_path / "a").mkdir()
    code, output, hosts = _scan(ntlm, tmp_path / "a", {"PORT80_PASSWORD": krb_lab.password}, "--limit", "nginx")
    assert hosts["nginx"]["status"] == "auth"  # the host has NTLM turned off

    neg = tmp_path / "neg.ini"
    neg.write_text(text.replace("ansible_psrp_auth=kerberos", "ansible_psrp_auth=negotiate"), encoding="utf-8")
    (tmp_path / "b").mkdir()
    kerberos.forget()  # a new run: no service ticket cached yet
    tgs = krb_lab.kdc.tgs_exchanges()
    code, output, hosts = _scan(neg, tmp_path / "b", {"PORT80_PASSWORD": krb_lab.password})
    assert code == 0, output
    assert {h["status"] for h in hosts.values()} <= {"ok", "partial"}  # not-elevated is partial by design
    assert _verdicts(tmp_path / "b" / "report.json") == basic_verdicts
    assert krb_lab.kdc.tgs_exchanges() - tgs >= len(hosts)  # a service ticket per host: Kerberos, not NTLM


def test_kerberos_requests_per_host(krb_lab, tmp_path):
    kerberos.forget()
    krb_lab.reset_stats()
    code, output, hosts = _scan(krb_lab.inventory_path, tmp_path, {"PORT80_PASSWORD": krb_lab.password},
                                "--limit", "nginx")
    assert code == 0, output
    s = krb_lab.stats()["hosts"]["nginx"]
    # one auth leg (the AP-REQ on an empty POST, answered 200 with the AP-REP), then the 6 WSMan requests
    # (the pool open takes two Receives, as on Windows: real-message-flow-summary.txt)
    assert s["requests"] == 7, s


def test_kerberos_over_https(healthy, tmp_path):
    with lab_fleet(healthy, auth="kerberos", tls=True, inventory=tmp_path / "inv.ini", workdir=tmp_path / "lab") as fleet:
        saved = os.environ.get("KRB5_CONFIG")
        os.environ["KRB5_CONFIG"] = str(fleet.kdc.krb5_conf)
        kerberos.forget()
        try:
            code, output, hosts = _scan(tmp_path / "inv.ini", tmp_path, {"PORT80_PASSWORD": fleet.password},
                                        "--limit", "nginx,iis-worker")
        finally:
            kerberos.forget()
            os.environ["KRB5_CONFIG"] = saved or ""
    assert code == 0, output
    assert {h["status"] for h in hosts.values()} <= {"ok", "partial"}  # not-elevated is partial by design


def test_kdc_unreachable_reason(tmp_path, monkeypatch):
    from remote.lab.protocol.kdc import free_port

    conf = tmp_path / "krb5.conf"
    conf.write_text("[libdefaults]\n default_realm = NOWHERE.TEST\n dns_lookup_kdc = false\n"
                    f"[realms]\n NOWHERE.TEST = {{\n  kdc = 127.0.0.1:{free_port()}\n }}\n", encoding="utf-8")
    monkeypatch.setenv("KRB5_CONFIG", str(conf))
    kerberos.forget()
    with pytest.raises(kerberos.KerberosError) as e:
        kerberos.private_ccache("auditor", "x")
    kerberos.forget()
    assert "KDC unreachable" in str(e.value) and "NOWHERE.TEST" in str(e.value)


@pytest.mark.parametrize("text, expect", [
    ("Major (851968): Unspecified GSS failure. Minor (2529624064): Clock skew too great", "clock skew"),
    ("Minor (2529639053): No Kerberos credentials available (default cache: FILE:krb5cc_1000)", "no Kerberos ticket"),
    ("Minor (2529638944): Ticket expired", "expired"),
    ("Minor (2529638919): Server not found in Kerberos database", "unknown service principal HTTP/h.lab.test"),
    ("Minor (2529638936): Preauthentication failed", "pre-authentication failed"),
])
def test_reason_lines(text, expect):
    assert expect in kerberos.reason(RuntimeError(text), spn="HTTP/h.lab.test", user="u@LAB.TEST")
    assert kerberos.reason(RuntimeError("something else")) is None


def test_lab_without_kdc_says_which_packages(monkeypatch, tmp_path):
    from remote.lab import cli
    from remote.lab.protocol import kdc

    monkeypatch.setattr(kdc, "find_tool", lambda name: None)
    lines: list[str] = []
    code = cli.serve_lab(auth="kerberos", base_address=None, inventory_out=tmp_path / "i.ini", duration=0,
                         echo=lines.append)
    assert code == 2
    assert len(lines) == 1 and "krb5-kdc" in lines[0] and "krb5-admin-server" in lines[0]


def test_principal_names():
    assert kerberos.principal_name("LAB\\auditor") == "auditor"
    assert kerberos.principal_name("auditor@lab.test") == "auditor@LAB.TEST"
    assert kerberos.principal_name("auditor") == "auditor"


def test_no_password_no_ticket_says_kinit(krb_lab, tmp_path):
    code, output, hosts = _scan(krb_lab.inventory_path, tmp_path,
                                {"KRB5CCNAME": f"FILE:{tmp_path / 'none'}", "PORT80_PASSWORD": None})
    assert code == 2 and "kinit" in output and "no Kerberos ticket" in output


def test_expired_ticket_is_named(krb_lab, tmp_path):
    import time

    cc = f"FILE:{tmp_path / 'cc'}"
    env = dict(os.environ, KRB5_CONFIG=str(krb_lab.kdc.krb5_conf), KRB5CCNAME=cc)
    p = subprocess.run(["kinit", "-l", "2s", f"{krb_lab.user}@{krb_lab.kdc.realm}"], input=krb_lab.password + "\n",
                       text=True, capture_output=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    time.sleep(3)
    code, output, hosts = _scan(krb_lab.inventory_path, tmp_path, {"KRB5CCNAME": cc, "PORT80_PASSWORD": None})
    assert code == 2 and "expired" in output


def test_inventory_negotiate_settings_reach_the_spec():
    from remote.inventory.ansible_ini import parse_inventory
    from remote.inventory.targets import TargetError, to_spec

    inv = parse_inventory(
        "[w]\n"
        "a ansible_psrp_auth=kerberos ansible_psrp_negotiate_hostname_override=a.corp.example.com "
        "ansible_psrp_negotiate_service=HTTP ansible_psrp_negotiate_delegate=true ansible_user=bob "
        "ansible_psrp_realm=corp.example.com\n"
        "b ansible_connection=winrm ansible_winrm_transport=kerberos ansible_winrm_kerberos_hostname_override=b.corp "
        "ansible_winrm_service=WSMAN ansible_winrm_kerberos_delegation=no ansible_winrm_send_cbt=false\n"
        "c ansible_psrp_negotiate_delegate=maybe\n", "inv.ini")
    a, b, c = (to_spec(h) if h.name != "c" else h for h in inv.hosts())
    assert (a.auth, a.negotiate_hostname_override, a.negotiate_service, a.negotiate_delegate, a.user) == \
        ("kerberos", "a.corp.example.com", "HTTP", True, "bob@CORP.EXAMPLE.COM")
    assert (b.auth, b.negotiate_hostname_override, b.negotiate_service, b.negotiate_delegate, b.negotiate_send_cbt) == \
        ("kerberos", "b.corp", "WSMAN", False, False)
    with pytest.raises(TargetError, match="c: ansible_psrp_negotiate_delegate"):
        to_spec(c)
    from remote.remoting.collect import connect

    wsman = connect(a, "pw")
    auth_kw = {k: getattr(wsman.transport, k) for k in ("negotiate_hostname_override", "negotiate_service",
                                                        "negotiate_delegate")}
    assert auth_kw == {"negotiate_hostname_override": "a.corp.example.com", "negotiate_service": "HTTP",
                       "negotiate_delegate": True}


def test_200_hosts_forks_200_one_ticket(healthy, basic_verdicts, tmp_path):
    """Issue 12's fleet bar: 200 lab hosts over Kerberos at --forks 200 (port80 as its own process, a
    password and no ticket): every host as a Basic scan of its bundle reports it, 0 errors, at most 2 AS
    exchanges in the KDC's log for the whole scan (one ticket, pre-authentication may take two), the
    user's default credential cache untouched. The CPU it costs is measured by scripts/bench_fleet.py."""
    import random
    import sys

    base = f"127.{random.randint(10, 250)}.{random.randint(0, 250)}.1"
    with lab_fleet(healthy, hosts=200, auth="kerberos", base_address=base, inventory=tmp_path / "inv.ini",
                   workdir=tmp_path / "lab") as fleet:
        before = fleet.kdc.as_exchanges()
        user_cc = tmp_path / "default-ccache"
        env = dict(os.environ, PORT80_PASSWORD=fleet.password, KRB5_CONFIG=str(fleet.kdc.krb5_conf),
                   KRB5CCNAME=f"FILE:{user_cc}")
        res = subprocess.run([sys.executable, "-m", "remote", "scan", "-i", str(tmp_path / "inv.ini"), "--no-history",
                              "--forks", "200", "--timeout", "120", "--evidence-dir", str(tmp_path / "ev"), "-f",
                              "json", "-o", str(tmp_path / "report.json")], capture_output=True, text=True, env=env,
                             timeout=600)
        as_n = fleet.kdc.as_exchanges() - before
    assert "Traceback" not in res.stderr
    assert res.returncode == 0, res.stderr[-2000:]
    got = _verdicts(tmp_path / "report.json")
    assert len(got) == 200
    bundles = set(basic_verdicts)
    for host, verdict in got.items():
        bundle = host if host in bundles else host.rsplit("-", 1)[0]
        assert verdict == basic_verdicts[bundle], host
    assert 1 <= as_n <= 2, as_n
    assert not user_cc.exists()


def test_a_replayed_authenticator_is_refused(krb_lab, tmp_path, monkeypatch):
    """Each emulated host keeps the authenticators it accepted (its own replay cache, as a Windows host
    does): port80's AP-REQ, sent again word for word on a new connection, gets a bare 401, while the
    scan it came from succeeded (200 to it)."""
    import http.client

    from remote.remoting import transport as tp

    sent: list[tuple] = []
    post = tp._Connection.post

    def recording(self, path, body, headers, read_timeout):
        reply = post(self, path, body, headers, read_timeout)
        sent.append((self.host, self.port, path, body, dict(headers), reply.status_code))
        return reply

    monkeypatch.setattr(tp._Connection, "post", recording)
    kerberos.forget()
    code, output, _ = _scan(krb_lab.inventory_path, tmp_path, {"PORT80_PASSWORD": krb_lab.password},
                            "--limit", "nginx")
    assert code == 0, output
    legs = [s for s in sent if s[4].get("Authorization", "").startswith("Negotiate ") and s[3] == b""]
    assert len(legs) == 1 and legs[0][5] == 200  # one AP-REQ on an empty POST, accepted
    host, port, path, body, headers, _ = legs[0]

    def replay() -> int:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    assert replay() == 401
    assert replay() == 401  # and again
