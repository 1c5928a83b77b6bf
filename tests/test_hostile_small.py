"""Issue 16, the smaller ones: each a class of hostile or broken input, each a clear outcome."""

from __future__ import annotations

import json

import pytest

from remote.analysis.verdicts import analyze_bundle, analyze_evidence, parse_evidence
from remote.evidence.bundle import read_bundle
from remote.lab.fleet import demo_fleet_dir
from remote.parsers import PARSERS

LISTEN = "  TCP    0.0.0.0:80             0.0.0.0:0              LISTENING       {pid}\r\n"


@pytest.mark.parametrize("pid", ["-5", "100000000000000000000000", "4294967296", "1e400", "0x4", "12ab"])
def test_listening_row_with_a_bad_pid_is_no_pid_none_process(pid):
    texts = {"netstat": "Active Connections\r\n\r\n  Proto  Local Address          Foreign Address        State           PID\r\n"
             + LISTEN.format(pid=pid) + LISTEN.format(pid=4).replace("0.0.0.0:80 ", "[::]:80    ")}
    ev = parse_evidence(texts)
    v = analyze_evidence("h", ev, [80]).ports[0]
    assert v.holder == "http.sys", (v.holder, v.listeners)
    assert all(l.pid == 4 for l in v.listeners)
    assert any("no readable process ID" in n and "netstat.txt:4" in n for n in v.notes), v.notes
    assert "PID None" not in json.dumps([n for n in v.notes])


def test_only_a_bad_pid_listener_is_unknown_not_free():
    ev = parse_evidence({"netstat": LISTEN.format(pid="-1")})
    v = analyze_evidence("h", ev, [80]).ports[0]
    assert v.holder == "unknown" and v.listeners == []
    assert any("PID" in w and "'-1'" in w for w in ev.netstat.warnings), ev.netstat.warnings


@pytest.mark.parametrize("text", ["this is not JSON at all {", "[" * 200_000 + "]" * 200_000,
                                  '{"a": ' * 100_000 + "1" + "}" * 100_000])
def test_unreadable_services_json_is_partial_like_a_missing_one(tmp_path, text):
    b = tmp_path / "h"
    b.mkdir()
    src = demo_fleet_dir() / "branchcache"
    for f in src.iterdir():
        (b / f.name).write_bytes(f.read_bytes())
    (b / "tasklist.txt").unlink()  # else tasklist stands in for services
    missing = analyze_bundle(read_bundle(b), [80]) if (b / "services.json").unlink() is None else None
    assert missing.status == "partial"
    (b / "services.json").write_text(text, encoding="utf-8")
    r = analyze_bundle(read_bundle(b), [80])
    assert r.status == "partial" and "services.json" in r.error, (r.status, r.error)
    assert PARSERS["services"](text).error


@pytest.mark.parametrize("path", ["/API/", "/wsmanx/", "/", "/WSMAN/extra/"])
def test_non_wsman_url_in_winrm_process_is_not_the_compatibility_listener(path):
    from remote.analysis import knowledge

    p = knowledge.identify(path, 80, services=["WinRM"])
    assert p.key not in ("winrm-compat", "winrm"), (path, p.key)
    assert "EnableCompatibilityHttpListener" not in p.advice
    assert knowledge.identify("/wsman/", 80, services=["WinRM"]).key == "winrm-compat"
    assert knowledge.identify("/WSMAN/", 5985, services=["WinRM"]).key == "winrm"


def test_missing_ca_cert_file_is_an_inventory_error_with_file_and_line(tmp_path):
    from typer.testing import CliRunner

    from remote.cli.app import app

    inv = tmp_path / "inv.ini"
    inv.write_text("[web]\nweb01 ansible_host=127.0.0.1\n\n[web:vars]\nansible_user=a\n"
                   f"ansible_psrp_ca_cert={tmp_path / 'nope.pem'}\n", encoding="utf-8")
    for cmd in (["scan", "--evidence-dir", str(tmp_path / "ev")], ["check"]):
        res = CliRunner().invoke(app, [*cmd, "-i", str(inv)], env={"PORT80_PASSWORD": "x"})
        assert res.exit_code == 2, res.output
        assert f"{inv}:6: web01: ansible_psrp_ca_cert" in res.output and "no such file" in res.output, res.output
    ca = tmp_path / "ca.pem"
    ca.write_text("x", encoding="utf-8")
    inv.write_text(inv.read_text(encoding="utf-8").replace("nope.pem", "ca.pem"), encoding="utf-8")
    res = CliRunner().invoke(app, ["inventory", "-i", str(inv)])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("edit", ["nested", "1e400"])
def test_lab_serve_names_a_bundle_it_cannot_model(tmp_path, edit):
    import shutil
    import subprocess
    import sys

    b = tmp_path / "fleet" / "bad-one"
    shutil.copytree(demo_fleet_dir() / "branchcache", b)
    shutil.copytree(demo_fleet_dir() / "branchcache", tmp_path / "fleet" / "good-one")
    if edit == "nested":
        (b / "services.json").write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    else:
        text = (b / "services.json").read_text(encoding="utf-8")
        (b / "services.json").write_text(text.replace('"ProcessId":  3924', '"ProcessId":  1e400', 1), encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "remote", "lab", "serve", "--profiles", str(tmp_path / "fleet"),
                          "--port", "0", "-o", str(tmp_path / "inv.ini")], capture_output=True, timeout=120)
    out = (res.stdout + res.stderr).decode()
    assert res.returncode == 2, out
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 1 and str(b) in lines[0] and "Traceback" not in out, out


def test_clixml_lone_surrogate_never_fails_the_decoder():
    from remote.remoting.transport import FastSerializer

    s = FastSerializer()
    assert s._deserialize_string("Contoso_xD800_Api_x000D__x000A_") == "Contoso\ud800Api\r\n"  # kept, to be noted
    assert s._deserialize_string("_xD83D__xDE00_") == "\U0001F600"  # a pair is its character
    assert s._deserialize_string("a_x000D__x000A_b") == "a\r\nb"
