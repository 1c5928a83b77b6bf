"""Policy files: malformed ones are one line naming file:line (exit 2); the checks on hand-made records."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.analysis.verdicts import HostReport, Listener, PortVerdict, Registration, failed_host
from remote.audit.policy import PolicyError, check, load_policy, parse_policy
from remote.cli.app import app

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, where, what", [
    ("[[rule]\nport = 80\n", 1, "not valid TOML"),
    ("[[rule]]\nhosts = 'all'\nport = 'eighty'\n", 3, "port must be"),
    ("[[rule]]\nport = 80\n\n[[rule]]\nport = 80\nforbiden_products = ['iis']\n", 6, "unknown rule key 'forbiden_products'"),
    ("[[rule]]\nport = 80\nallowed_holders = ['iis']\n", 3, "'iis' is not one of"),
    ("[[rule]]\nhosts = 'web'\n", 1, "has no port"),
    ("unknown = 'maybe'\n[[rule]]\nport = 80\n", 1, "unknown must be"),
    ("colour = 'red'\n[[rule]]\nport = 80\n", 1, "unknown key 'colour'"),
    ("[[rule]]\nport = 80\nhosts = '~['\n", 3, "bad regular expression"),
    ("[[rule]]\nport = 80\nmust_be_free = 'yes'\n", 3, "must_be_free must be"),
    ("", 1, "no [[rule]]"),
])
def test_malformed_policy_names_file_and_line(text, where, what):
    with pytest.raises(PolicyError) as e:
        parse_policy(text, "p.toml")
    assert str(e.value).startswith(f"p.toml:{where}: ") and what in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_malformed_policy_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]]\nport = 80\nforbidden_products = 7\n")
    res = CliRunner().invoke(app, ["policy", "check", "--policy", str(bad), str(tmp_path)])
    assert res.exit_code == 2
    assert res.stderr.strip() == f"port80: error: {bad}:3: forbidden_products must be a list of strings"
    missing = CliRunner().invoke(app, ["policy", "check", "--policy", str(tmp_path / "none.toml"), str(tmp_path)])
    assert missing.exit_code == 2 and "none.toml:1: cannot read" in missing.stderr


def test_cli_audit_errors_go_through_the_sanitiser(tmp_path):
    # audit's error lines are the CLI's one error line: a control character in a name shows escaped
    odd = tmp_path / "odd\rname\x07.toml"
    res = CliRunner().invoke(app, ["policy", "check", "--policy", str(odd), str(tmp_path)])
    assert res.exit_code == 2
    assert "\r" not in res.stderr and "\x07" not in res.stderr
    assert "odd\\x0dname\\x07.toml:1: cannot read" in res.stderr


def test_example_policy_loads():
    p = load_policy(ROOT / "examples" / "policy.toml")
    assert [r.hosts for r in p.rules] == ["all", "!web", "web", "db*"]
    assert p.rules[2].ports == [80, 443] and p.rules[3].unknown == "ignore"


def fleet():
    def reg(product, key, services=(), ev="servicestate.txt:9"):
        return Registration(url="HTTP://+:80/X/", queue="q", services=list(services), product=product, product_key=key,
                            evidence=ev)
    return [
        HostReport(host="web01", groups=["web"], ports=[PortVerdict(80, "http.sys", ["http.sys"], registrations=[
            reg("IIS (W3SVC/WAS)", "iis", ["W3SVC", "WAS"])])]),
        HostReport(host="app01", groups=["app"], ports=[PortVerdict(80, "process", ["process"], listeners=[
            Listener("0.0.0.0", 80, 77, "nginx.exe", evidence="netstat.txt:4")])]),
        HostReport(host="db01", groups=["db"], ports=[PortVerdict(80, "free")]),
        failed_host("db02", "auth", "authentication failed", [80]),
    ]


def test_checks():
    text = """
unknown = "violation"
[[rule]]
hosts = "all"
port = 80
forbidden_products = ["NGINX"]
[[rule]]
hosts = "web"
port = 80
allowed_services = ["W3SVC"]
[[rule]]
hosts = "db*"
port = 80
must_be_free = true
[[rule]]
hosts = "app"
port = 80
allowed_holders = ["free", "http.sys"]
"""
    got = [(v.host, v.rule, v.check, v.found, v.evidence) for v in check(parse_policy(text, "p.toml"), fleet())]
    assert got == [
        ("web01", "p.toml:10", "allowed_services", "WAS", "servicestate.txt:9"),
        ("app01", "p.toml:6", "forbidden_products", "nginx.exe", "netstat.txt:4"),
        ("app01", "p.toml:18", "allowed_holders", "process", "netstat.txt:4"),
        ("db02", "p.toml:3", "unknown", "unknown", ""),  # once per port, from the first rule selecting it
    ]
