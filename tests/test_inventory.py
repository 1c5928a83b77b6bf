"""Ansible INI inventories: sections, ranges, variables and their precedence, connection settings
with secure defaults, every error with its file:line, --limit patterns, shards, and secrets that
never show."""

from __future__ import annotations

import dataclasses
import json
import random
import shlex
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from remote.inventory.ansible_ini import (
    Inventory,
    InventoryError,
    ShardError,
    load_inventory,
    parse_inventory,
    parse_shard,
    shard,
    shard_index,
)
from remote.inventory.targets import to_spec

REPO = Path(__file__).resolve().parent.parent


def inv(text: str) -> Inventory:
    return parse_inventory(text, "inv.ini")


def names(hosts) -> list[str]:
    return [h.name for h in hosts]


def error_of(text: str) -> str:
    with pytest.raises(InventoryError) as e:
        inv(text)
    return str(e.value)


# --- structure -------------------------------------------------------------------------------------


def test_groups_ungrouped_all_and_lines():
    i = inv(
        "# a comment\n"
        "; another comment\n"
        "\n"
        "lone.corp.example.com\n"
        "[web]\n"
        "web1.corp.example.com\n"
        "web2.corp.example.com\n"
        "[db]\n"
        "db1.corp.example.com\n"
    )
    assert names(i.hosts()) == ["lone.corp.example.com", "web1.corp.example.com", "web2.corp.example.com", "db1.corp.example.com"]
    assert i.host("lone.corp.example.com").groups == ["ungrouped"]
    assert i.host("web2.corp.example.com").groups == ["web"]
    assert i.host("web2.corp.example.com").line == 7
    assert i.host("web2.corp.example.com").source == "inv.ini"
    assert set(i.groups) == {"all", "ungrouped", "web", "db"}
    assert i.groups["web"].hosts == ["web1.corp.example.com", "web2.corp.example.com"]
    assert i.groups["web"].line == 5
    assert i.groups["web"].depth == 1 and i.groups["all"].depth == 0
    assert i.warnings == []
    assert len(i) == 4 and "db1.corp.example.com" in i


def test_a_host_listed_at_the_top_and_in_a_group_is_not_ungrouped():
    i = inv("h1\nh2\n[web]\nh1\n[ungrouped:vars]\nu=1\n")
    assert i.host("h1").groups == ["web"]
    assert i.host("h2").groups == ["ungrouped"]
    assert i.groups["ungrouped"].hosts == ["h2"]
    assert "u" not in i.host("h1").vars and i.host("h2").vars["u"] == 1


def test_hosts_under_an_all_section_are_ungrouped():
    i = inv("[all]\nh1\n[all:vars]\nx=1\n")
    assert i.host("h1").groups == ["ungrouped"]
    assert i.host("h1").vars["x"] == 1


def test_host_order_is_first_appearance_and_a_repeated_host_keeps_its_first_line():
    i = inv("[b]\nz1\na1\n[a]\na1\nm1\n")
    assert names(i.hosts()) == ["z1", "a1", "m1"]
    assert i.host("a1").line == 3
    assert i.host("a1").groups == ["a", "b"]


def test_children_nesting_depth_and_group_names_include_ancestors():
    i = inv(
        "[prod:children]\n"
        "iis\n"
        "[iis:children]\n"
        "web\n"
        "[web]\n"
        "w1\n"
        "[other]\n"
        "o1\n"
    )
    assert i.host("w1").groups == ["iis", "prod", "web"]
    assert (i.groups["prod"].depth, i.groups["iis"].depth, i.groups["web"].depth) == (1, 2, 3)
    assert i.groups["iis"].parents == ["prod"] and i.groups["iis"].children == ["web"]
    assert i.groups["prod"].parents == ["all"]
    assert i.groups["other"].depth == 1


def test_a_child_group_may_be_defined_after_it_is_referenced():
    i = inv("[parent:children]\nkid\n[kid]\nk1\n")
    assert i.host("k1").groups == ["kid", "parent"]


def test_all_children_section():
    i = inv("[all:children]\nweb\n[web]\nw1\n")
    assert i.groups["web"].depth == 1 and i.host("w1").groups == ["web"]


def test_section_header_with_trailing_comment_and_explicit_hosts_type():
    i = inv("[web:hosts]   # the web farm\nw1\n[web:vars] ; comment\nx=1\n")
    assert i.host("w1").vars["x"] == 1


def test_utf8_bom_and_crlf_line_endings():
    i = parse_inventory("\ufeff[web]\r\nw1 ansible_port=5985\r\n", "inv.ini")
    assert i.host("w1").port == 5985


def test_load_inventory_reads_utf8_with_bom(tmp_path):
    p = tmp_path / "hosts.ini"
    p.write_bytes("\ufeff[web]\nwéb1.corp.example.com\n".encode("utf-8"))
    i = load_inventory(p)
    assert names(i.hosts()) == ["wéb1.corp.example.com"]
    assert i.hosts()[0].source == str(p)


def test_load_inventory_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.ini"
    with pytest.raises(InventoryError) as e:
        load_inventory(missing)
    assert str(e.value).startswith(f"{missing}: cannot read the inventory")
    with pytest.raises(InventoryError) as e:
        load_inventory(tmp_path)
    assert "is a directory" in str(e.value)
    bad = tmp_path / "latin1.ini"
    bad.write_bytes(b"[web]\nw1\n# caf\xe9\n")
    with pytest.raises(InventoryError) as e:
        load_inventory(bad)
    assert str(e.value) == f"{bad}:3: not UTF-8 text (save the inventory as UTF-8)"


def test_host_and_group_with_the_same_name_is_a_warning():
    i = inv("[web]\nweb\n")
    assert any("'web' is both a host and a group name" in w for w in i.warnings)


# --- ranges ----------------------------------------------------------------------------------------


def test_numeric_range_keeps_zero_padding():
    i = inv("[web]\nweb[01:12].corp.example.com\n")
    assert names(i.hosts())[:3] == ["web01.corp.example.com", "web02.corp.example.com", "web03.corp.example.com"]
    assert names(i.hosts())[-1] == "web12.corp.example.com"
    assert len(i) == 12
    assert {h.line for h in i.hosts()} == {2}


def test_numeric_range_without_padding():
    assert names(inv("n[8:11]\n").hosts()) == ["n8", "n9", "n10", "n11"]


def test_alphabetic_range_and_stride():
    assert names(inv("db-[a:f].x\n").hosts()) == [f"db-{c}.x" for c in "abcdef"]
    assert names(inv("h[1:10:2]\n").hosts()) == ["h1", "h3", "h5", "h7", "h9"]
    assert names(inv("h[a:g:3]\n").hosts()) == ["ha", "hd", "hg"]
    assert names(inv("h[001:010:4]\n").hosts()) == ["h001", "h005", "h009"]


def test_missing_start_is_zero_and_several_ranges_multiply():
    assert names(inv("h[:2]\n").hosts()) == ["h0", "h1", "h2"]
    assert names(inv("r[1:2]-[a:b]\n").hosts()) == ["r1-a", "r1-b", "r2-a", "r2-b"]


def test_a_range_with_host_variables_gives_them_to_every_host():
    i = inv("[web]\nweb[1:3] ansible_port=5985 role=front\n")
    assert [h.port for h in i.hosts()] == [5985] * 3
    assert all(h.vars["role"] == "front" for h in i.hosts())


@given(st.integers(0, 500), st.integers(0, 60), st.integers(1, 7), st.booleans())
def test_range_expansion_counts_and_padding(start, span, step, padded):
    end = start + span
    width = len(str(end)) + 1 if padded else 0
    b, e = (str(start).zfill(width), str(end).zfill(width)) if padded else (str(start), str(end))
    hosts = names(inv(f"h[{b}:{e}:{step}].x\n").hosts())
    assert hosts == [f"h{str(n).zfill(width)}.x" for n in range(start, end + 1, step)]


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("web[1:]", "bad host range [1:] in 'web[1:]': the end is missing"),
        ("web[a:1]", "bad host range [a:1] in 'web[a:1]': start and end must both be numbers or both be single letters"),
        ("web[5:1]", "bad host range [5:1] in 'web[5:1]': the start is greater than the end"),
        ("web[f:a]", "bad host range [f:a] in 'web[f:a]': the start comes after the end"),
        ("web[01:100]", "bad host range [01:100] in 'web[01:100]': a zero-padded range needs a start and an end of the same width"),
        ("web[1:2:0]", "bad host range [1:2:0] in 'web[1:2:0]': the step must be a whole number of at least 1"),
        ("web[1:5:x]", "bad host range [1:5:x] in 'web[1:5:x]': the step must be a whole number of at least 1"),
        ("web[1:2:3:4]", "bad host range [1:2:3:4] in 'web[1:2:3:4]': expected [start:end] or [start:end:step]"),
        ("web[1-3]", "bad host range [1-3] in 'web[1-3]': expected [start:end] or [start:end:step]"),
        ("web[aa:zz]", "bad host range [aa:zz] in 'web[aa:zz]': start and end must both be numbers or both be single letters"),
        ("web[1:2", "bad host range in 'web[1:2': unbalanced '[' or ']'"),
        ("web]1", "bad host range in 'web]1': unbalanced '[' or ']'"),
        ("web[0:999999]", "bad host range [0:999999] in 'web[0:999999]': 1000000 hosts is too many (at most 100000)"),
    ],
)
def test_bad_ranges(pattern, message):
    assert error_of(f"[web]\n{pattern}\n") == f"inv.ini:2: {message}"


# --- host:port, IPv6 --------------------------------------------------------------------------------


def test_host_colon_port_sets_ansible_port_and_an_explicit_one_wins():
    i = inv("a.x:5985\nb.x:5985 ansible_port=5986\n")
    assert (i.host("a.x").port, i.host("a.x").scheme) == (5985, "http")
    assert i.host("b.x").port == 5986


def test_ipv6_hosts():
    i = inv("[2001:db8::5]:5985\n2001:db8::6\n[v6]\nfe80::1%4\n")
    h5 = i.host("2001:db8::5")
    assert (h5.address, h5.port, h5.scheme) == ("2001:db8::5", 5985, "http")
    assert h5.url == "http://[2001:db8::5]:5985/wsman"
    assert i.host("2001:db8::6").port == 5986
    assert "fe80::1%4" in i


@pytest.mark.parametrize(
    "line, message",
    [
        ("web1:abc", "invalid port 'abc' in 'web1:abc': expected 1-65535"),
        ("web1:0", "invalid port '0' in 'web1:0': expected 1-65535"),
        ("web1:70000", "invalid port '70000' in 'web1:70000': expected 1-65535"),
        ("web1: x=1", "bad host 'web1:': a host name cannot end with ':'"),
        ("a:1:b", "bad host 'a:1:b': too many ':' (write an IPv6 address with a port as [addr]:port)"),
        (":5986", "bad host ':5986': the host name is missing"),
    ],
)
def test_bad_host_ports(line, message):
    assert error_of(f"[web]\n{line}\n") == f"inv.ini:2: {message}"


# --- variables -------------------------------------------------------------------------------------


def test_inline_host_variables_quotes_types_and_comments():
    i = inv(
        "[web]\n"
        "w1 ansible_host=10.0.0.5 ansible_port=5986 owner='web team' note=\"a b\" n=7 s=\"'7'\" t='7' flag=True  # trailing comment\n"
    )
    h = i.host("w1")
    assert h.address == "10.0.0.5" and h.port == 5986
    assert h.vars["owner"] == "web team" and h.vars["note"] == "a b"
    # Ansible: the shell-like split removes one level of quotes, then the value is read as a literal
    assert h.vars["n"] == 7 and h.vars["t"] == 7 and h.vars["s"] == "7" and h.vars["flag"] is True
    assert "#" not in json.dumps(h.vars)


def test_group_vars_values_comments_and_quotes():
    i = inv(
        "[web]\n"
        "w1\n"
        "[web:vars]\n"
        "plain = some text   # a comment\n"
        "quoted='a # b'   # kept: the # is inside quotes\n"
        "dq=\"x y\"\n"
        "num=8080\n"
        "path=C:\\inetpub\\wwwroot\n"
        "empty=\n"
        "eq=a=b\n"
    )
    v = i.host("w1").vars
    assert v["plain"] == "some text"
    assert v["quoted"] == "a # b"
    assert v["dq"] == "x y"
    assert v["num"] == 8080
    assert v["path"] == "C:\\inetpub\\wwwroot"
    assert v["empty"] == ""
    assert v["eq"] == "a=b"


def test_backslashes_on_host_lines_are_escapes_like_in_ansible_with_a_warning():
    i = inv("w1 ansible_user=CORP\\svc\n")
    assert i.host("w1").user == "CORPsvc"
    assert i.warnings == [
        "inv.ini:1: a backslash outside quotes on a host line is an escape character (as in Ansible): "
        "CORP\\svc reads as CORPsvc; write 'CORP\\svc' (single quotes) or CORP\\\\svc"
    ]
    for line, user in [
        ("w1 ansible_user='CORP\\svc'", "CORP\\svc"),
        ('w1 ansible_user="CORP\\svc"', "CORP\\svc"),
        ("w1 ansible_user=CORP\\\\svc", "CORP\\svc"),
        ("w1 ansible_user=svc  # CORP\\x", "svc"),
    ]:
        i = inv(line + "\n")
        assert i.host("w1").user == user and i.warnings == [], line
    # in [group:vars] the whole value is taken as written
    assert inv("[g]\nw1\n[g:vars]\nansible_user=CORP\\svc\n").host("w1").user == "CORP\\svc"


def test_unknown_ansible_and_plain_variables_are_kept():
    h = inv("w1 ansible_become_method=runas ansible_winrm_kerberos_delegation=true team=ops\n").host("w1")
    assert h.vars == {"ansible_become_method": "runas", "ansible_winrm_kerberos_delegation": "true", "team": "ops"}


def test_typo_in_a_psrp_variable_and_unknown_port80_variable_warn():
    i = inv("[web]\nw1\n[web:vars]\nansible_psrp_protocl=http\nport80_port=80\n")
    assert "inv.ini:4: unknown variable 'ansible_psrp_protocl' (did you mean 'ansible_psrp_protocol'?)" in i.warnings
    assert "inv.ini:5: unknown port80 variable 'port80_port' (known: port80_ports, port80_segment)" in i.warnings
    assert i.host("w1").scheme == "https"  # the typo does not take effect
    assert i.host("w1").vars["ansible_psrp_protocl"] == "http"


PRECEDENCE = """\
[all:vars]
v_all=all
v_parent=all
v_child=all
v_host=all
v_same=all

[parent:children]
child

[parent:vars]
v_parent=parent
v_child=parent
v_host=parent

[child]
h1 v_host=host

[child:vars]
v_child=child
v_host=child

[alpha]
h1

[alpha:vars]
v_same=alpha

[zulu]
h1

[zulu:vars]
v_same=zulu
"""


def test_variable_precedence_all_parent_child_host_and_alphabetical_at_same_depth():
    v = inv(PRECEDENCE).host("h1").vars
    assert v["v_all"] == "all"
    assert v["v_parent"] == "parent"
    assert v["v_child"] == "child"
    assert v["v_host"] == "host"
    assert v["v_same"] == "zulu"  # alpha and zulu are both at depth 1: the later name wins


def test_deeper_group_beats_alphabetically_later_group():
    text = "[aaa:children]\nkid\n[kid]\nh1\n[zzz]\nh1\n[kid:vars]\nx=kid\n[zzz:vars]\nx=zzz\n"
    assert inv(text).host("h1").vars["x"] == "kid"


def test_ansible_group_priority_reorders_groups_of_the_same_depth():
    text = "[alpha]\nh1\n[zulu]\nh1\n[alpha:vars]\nx=alpha\nansible_group_priority=10\n[zulu:vars]\nx=zulu\n"
    i = inv(text)
    assert i.host("h1").vars["x"] == "alpha"
    assert i.groups["alpha"].priority == 10
    assert "ansible_group_priority" not in i.host("h1").vars
    assert error_of("[a]\nh\n[a:vars]\nansible_group_priority=high\n") == (
        "inv.ini:4: ansible_group_priority must be a whole number, got 'high'"
    )


def test_later_host_line_wins_for_host_variables():
    assert inv("[a]\nh x=1\n[b]\nh x=2\n").host("h").vars["x"] == 2


# --- connection settings ---------------------------------------------------------------------------


def test_secure_defaults():
    h = inv("w1\n").host("w1")
    assert (h.address, h.port, h.scheme, h.auth, h.user) == ("w1", 5986, "https", "negotiate", None)
    assert h.cert_validation is True and h.ca_cert is None
    assert (h.connection_timeout, h.read_timeout, h.operation_timeout) == (30, 30, 20)
    assert h.configuration_name == "Microsoft.PowerShell"
    assert h.encryption == "auto" and h.connection == "psrp" and h.path == "wsman"
    assert h.password_from_inventory is False and h.inventory_password() is None
    assert h.ports is None
    assert h.url == "https://w1:5986/wsman"


@pytest.mark.parametrize(
    "vars_, port, scheme",
    [
        ("", 5986, "https"),
        ("ansible_port=5985", 5985, "http"),
        ("ansible_port=5986", 5986, "https"),
        ("ansible_port=8443", 8443, "https"),
        ("ansible_psrp_protocol=http", 5985, "http"),
        ("ansible_psrp_protocol=https", 5986, "https"),
        ("ansible_psrp_protocol=HTTP ansible_port=8080", 8080, "http"),
        ("ansible_winrm_scheme=http", 5985, "http"),
        ("ansible_port=5985 ansible_psrp_port=5986", 5986, "https"),
    ],
)
def test_scheme_and_port_defaults(vars_, port, scheme):
    h = inv(f"w1 {vars_}\n").host("w1")
    assert (h.port, h.scheme) == (port, scheme)


def test_mismatched_scheme_and_port_warn():
    i = inv("w1 ansible_psrp_protocol=https ansible_port=5985\n")
    assert i.host("w1").scheme == "https"
    assert any("https on port 5985" in w for w in i.warnings)


def test_all_psrp_connection_variables():
    text = (
        "[win]\nw1\n[win:vars]\n"
        "ansible_connection=psrp\n"
        "ansible_host=192.0.2.7\n"
        "ansible_user=CORP\\svc\n"
        "ansible_psrp_protocol=https\n"
        "ansible_port=15986\n"
        "ansible_psrp_auth=kerberos\n"
        "ansible_psrp_cert_validation=validate\n"
        "ansible_psrp_ca_cert=/etc/ca.pem\n"
        "ansible_psrp_connection_timeout=12\n"
        "ansible_psrp_read_timeout=90.5\n"
        "ansible_psrp_operation_timeout=60\n"
        "ansible_psrp_configuration_name=JEA.Audit\n"
        "ansible_psrp_message_encryption=always\n"
        "ansible_psrp_path=/wsman-alt/\n"
        "port80_ports=80, 443\n"
    )
    h = inv(text).host("w1")
    assert (h.address, h.user, h.scheme, h.port, h.auth) == ("192.0.2.7", "CORP\\svc", "https", 15986, "kerberos")
    assert h.cert_validation is True and h.ca_cert == "/etc/ca.pem"
    assert (h.connection_timeout, h.read_timeout, h.operation_timeout) == (12, 90.5, 60)
    assert h.configuration_name == "JEA.Audit" and h.encryption == "always" and h.path == "wsman-alt"
    assert h.ports == [80, 443]
    spec = to_spec(dataclasses.replace(h, ca_cert=__file__))  # the one mapping to connection settings (a CA file that exists)
    assert spec.cert_validation == __file__ and spec.scheme == "https" and spec.auth == "kerberos"
    assert (spec.path, spec.ports, spec.port, spec.configuration_name) == ("wsman-alt", [80, 443], 15986, "JEA.Audit")
    assert not [f for f in vars(spec) if "password" in f]


def test_all_winrm_connection_variables():
    text = (
        "[win]\nw1\n[win:vars]\n"
        "ansible_connection=winrm\n"
        "ansible_winrm_scheme=https\n"
        "ansible_winrm_transport=ntlm, kerberos\n"
        "ansible_winrm_server_cert_validation=ignore\n"
        "ansible_winrm_ca_trust_path=/etc/ca.pem\n"
        "ansible_winrm_connection_timeout=5\n"
        "ansible_winrm_read_timeout_sec=70\n"
        "ansible_winrm_operation_timeout_sec=60\n"
        "ansible_winrm_message_encryption=never\n"
        "ansible_winrm_kerberos_delegation=true\n"
    )
    i = inv(text)
    h = i.host("w1")
    assert (h.connection, h.scheme, h.port, h.auth) == ("winrm", "https", 5986, "ntlm")
    assert h.cert_validation is False and h.ca_cert == "/etc/ca.pem"
    assert (h.connection_timeout, h.read_timeout, h.operation_timeout) == (5, 70, 60)
    assert h.encryption == "never"
    assert to_spec(h).cert_validation is False
    assert any("certificate validation is off" in w and "inv.ini:7:" in w for w in i.warnings)


def test_connection_type_decides_which_flavour_wins():
    both = "ansible_psrp_auth=kerberos ansible_winrm_transport=ntlm"
    assert inv(f"w1 {both}\n").host("w1").auth == "kerberos"
    assert inv(f"w1 {both} ansible_connection=winrm\n").host("w1").auth == "ntlm"
    assert inv("w1 ansible_connection=ansible.builtin.winrm\n").host("w1").connection == "winrm"
    # the other flavour is still read when the preferred one is not set
    assert inv("w1 ansible_winrm_transport=credssp\n").host("w1").auth == "credssp"


def test_winrm_plaintext_transport_is_basic_with_a_warning():
    i = inv("w1 ansible_winrm_transport=plaintext\n")
    assert i.host("w1").auth == "basic"
    assert any("ansible_winrm_transport=plaintext is read as 'basic'" in w for w in i.warnings)


def test_certificate_auth():
    h = inv("w1 ansible_psrp_auth=certificate ansible_psrp_cert_pem=/c.pem ansible_psrp_cert_key_pem=/k.pem\n").host("w1")
    assert (h.auth, h.cert_pem, h.cert_key_pem) == ("certificate", "/c.pem", "/k.pem")
    assert to_spec(h).certificate_pem == "/c.pem"
    h = inv("w1 ansible_psrp_auth=certificate ansible_psrp_certificate_pem=/c ansible_psrp_certificate_key_pem=/k\n").host("w1")
    assert (h.cert_pem, h.cert_key_pem) == ("/c", "/k")


def test_http_with_ntlm_is_fine_and_http_basic_with_encryption_never_is_a_warning():
    i = inv("[legacy]\nold1 ansible_port=5985 ansible_psrp_auth=ntlm\n")
    assert i.host("old1").scheme == "http" and i.warnings == []
    i = inv("[lab]\nl1\nl2\n[lab:vars]\nansible_port=5985\nansible_psrp_auth=basic\nansible_psrp_message_encryption=never\n")
    assert i.host("l1").auth == "basic" and i.host("l1").encryption == "never"
    assert i.warnings == [
        "inv.ini:7: Basic authentication over plain HTTP: the password travels base64-encoded, readable by anyone "
        "on the path (hosts: l1, l2)"
    ]


def test_http_without_message_encryption_warns():
    i = inv("w1 ansible_port=5985 ansible_psrp_message_encryption=never\n")
    assert any("plain HTTP without message encryption" in w for w in i.warnings)


def test_basic_over_https_is_fine():
    i = inv("w1 ansible_psrp_auth=basic\n")
    assert (i.host("w1").auth, i.host("w1").scheme) == ("basic", "https") and i.warnings == []


def test_user_variants():
    assert inv("w1 ansible_user=a\n").host("w1").user == "a"
    assert inv("w1 ansible_user=a ansible_psrp_user=b\n").host("w1").user == "b"
    assert inv("w1 ansible_user=1234\n").host("w1").user == "1234"  # a number is still a user name text


@pytest.mark.parametrize(
    "text, message",
    [
        ("w1 ansible_connection=ssh\n", "inv.ini:1: host 'w1': ansible_connection='ssh' is not supported: port80 talks to Windows hosts over psrp or winrm (keep other hosts in another inventory)"),
        ("[g]\nw1\n[g:vars]\nansible_port=http\n", "inv.ini:4: host 'w1': invalid ansible_port 'http': expected a TCP port 1-65535"),
        ("w1 ansible_port=0\n", "inv.ini:1: host 'w1': invalid ansible_port '0': expected a TCP port 1-65535"),
        ("w1 ansible_psrp_port=65536\n", "inv.ini:1: host 'w1': invalid ansible_psrp_port '65536': expected a TCP port 1-65535"),
        ("w1 ansible_port=True\n", "inv.ini:1: host 'w1': invalid ansible_port 'True': expected a TCP port 1-65535"),
        ("w1 ansible_psrp_protocol=ftp\n", "inv.ini:1: host 'w1': invalid ansible_psrp_protocol 'ftp': expected http or https"),
        ("w1 ansible_psrp_auth=digest\n", "inv.ini:1: host 'w1': invalid ansible_psrp_auth 'digest': expected one of negotiate, ntlm, kerberos, credssp, basic, certificate"),
        ("w1 ansible_winrm_transport=foo,ntlm\n", "inv.ini:1: host 'w1': invalid ansible_winrm_transport 'foo,ntlm': expected one of negotiate, ntlm, kerberos, credssp, basic, certificate"),
        ("w1 ansible_psrp_cert_validation=no\n", "inv.ini:1: host 'w1': invalid ansible_psrp_cert_validation 'no': expected validate or ignore"),
        ("w1 ansible_winrm_server_cert_validation=false\n", "inv.ini:1: host 'w1': invalid ansible_winrm_server_cert_validation 'false': expected validate or ignore"),
        ("w1 ansible_psrp_message_encryption=sometimes\n", "inv.ini:1: host 'w1': invalid ansible_psrp_message_encryption 'sometimes': expected auto, always or never"),
        ("w1 ansible_psrp_connection_timeout=soon\n", "inv.ini:1: host 'w1': invalid ansible_psrp_connection_timeout 'soon': expected a number of seconds > 0"),
        ("w1 ansible_psrp_read_timeout=-1\n", "inv.ini:1: host 'w1': invalid ansible_psrp_read_timeout '-1': expected a number of seconds > 0"),
        ("w1 ansible_psrp_operation_timeout=30\n", "inv.ini:1: host 'w1': the read timeout (30s) must be greater than the operation timeout (30s)"),
        ("w1 ansible_psrp_configuration_name=''\n", "inv.ini:1: host 'w1': ansible_psrp_configuration_name is empty"),
        ("w1 ansible_host=''\n", "inv.ini:1: host 'w1': ansible_host is empty"),
        ("w1 ansible_host=10.0.0.5:5986\n", "inv.ini:1: host 'w1': ansible_host '10.0.0.5:5986' is not a host name or an IP address (a port goes in ansible_port)"),
        ("w1 ansible_psrp_host=https://w1/wsman\n", "inv.ini:1: host 'w1': ansible_psrp_host 'https://w1/wsman' is not a host name or an IP address (a port goes in ansible_port)"),
        ("w1 port80_ports=80,http\n", "inv.ini:1: host 'w1': invalid port80_ports '80,http': expected ports like 80,443"),
        ("w1 ansible_psrp_auth=certificate\n", "inv.ini:1: host 'w1': certificate authentication needs ansible_psrp_certificate_pem and ansible_psrp_certificate_key_pem (or the ansible_winrm_cert_pem/_key_pem pair)"),
        ("w1 ansible_port=5985 ansible_psrp_auth=certificate\n", "inv.ini:1: host 'w1': certificate authentication needs https (it is a TLS client certificate)"),
        ("w1 ansible_psrp_auth=basic ansible_psrp_message_encryption=always\n", "inv.ini:1: host 'w1': message encryption 'always' needs negotiate, ntlm, kerberos or credssp, not basic"),
    ],
)
def test_connection_errors(text, message):
    assert error_of(text) == message


def test_http_basic_without_encryption_never_is_refused_at_the_auth_line():
    text = "[lab]\nl1 ansible_port=5985\n[lab:vars]\nansible_psrp_auth=basic\n"
    assert error_of(text) == (
        "inv.ini:4: host 'l1': Basic authentication over plain HTTP would send the password in clear text; "
        "use https (port 5986), or ntlm/kerberos/negotiate/credssp (which encrypt the messages), or set the "
        "message encryption to 'never' to accept the risk"
    )
    assert "Basic authentication over plain HTTP would send" in error_of(
        "l1 ansible_psrp_protocol=http ansible_psrp_auth=basic ansible_psrp_message_encryption=auto\n"
    )
    assert "Basic authentication over plain HTTP would send" in error_of(
        "l1 ansible_connection=winrm ansible_winrm_scheme=http ansible_winrm_transport=basic\n"
    )


def test_the_error_line_is_where_the_bad_value_was_set():
    text = "[web]\nw1\nw2\n[web:vars]\nx=1\nansible_port=nope\n"
    assert error_of(text).startswith("inv.ini:6: host 'w1': invalid ansible_port 'nope'")


# --- syntax errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("[web server]\nw1\n", "inv.ini:1: bad section header '[web server]': expected [group], [group:vars] or [group:children] (no spaces or brackets in group names)"),
        ("[]\n", "inv.ini:1: bad section header '[]': expected [group], [group:vars] or [group:children] (no spaces or brackets in group names)"),
        ("[web:vars:x]\n", "inv.ini:1: bad section header '[web:vars:x]': expected [group], [group:vars] or [group:children] (no spaces or brackets in group names)"),
        ("[web]\nw1\n[web:foo]\nx\n", "inv.ini:3: unknown section type ':foo' in [web:foo]: expected :vars or :children"),
        ("[web]\nw1\n[web:vars]\njust text\n", "inv.ini:4: expected key=value in [web:vars], got 'just text'"),
        ("[web]\nw1\n[web:vars]\n=5\n", "inv.ini:4: empty variable name before '='"),
        ("[web]\nw1\n[web:vars]\nmy var=5\n", "inv.ini:4: bad variable name 'my var': letters, digits and '_' only, not starting with a digit"),
        ("[web]\nw1 9lives=1\n", "inv.ini:2: bad variable name '9lives': letters, digits and '_' only, not starting with a digit"),
        ("[web]\nw1 ansible_port\n", "inv.ini:2: expected key=value after the host name, got 'ansible_port'"),
        ("[web]\nansible_host=10.0.0.1\n", "inv.ini:2: expected a host name, got the variable 'ansible_host': a host line is 'name key=value ...', group variables go in a [group:vars] section"),
        ("[web]\nw1 note='unclosed\n", "inv.ini:2: host line for 'w1': No closing quotation (check the quotes)"),
        ("[web:children]\nbad name\n", "inv.ini:2: expected a group name in [web:children], got 'bad name'"),
        ("[web:children]\nweb\n", "inv.ini:2: group 'web' cannot be a child of itself"),
        ("[web:children]\nall\n", "inv.ini:2: group 'all' cannot be a child of 'web': every group is already in 'all' (a cycle)"),
        ("[web:children]\nghost\n[web]\nw1\n", "inv.ini:2: [web:children] includes the undefined group 'ghost': add a [ghost] or [ghost:children] section"),
        ("[web]\nw1\n[ghost:vars]\nx=1\n", "inv.ini:3: [ghost:vars] for a group that is never defined: add a [ghost] or [ghost:children] section"),
        ("all:\n  hosts:\n", "inv.ini:1: this looks like a YAML (or JSON) inventory; port80 reads Ansible's INI inventory format ([group] sections, 'host key=value' lines)"),
        ("---\nall:\n", "inv.ini:1: this looks like a YAML (or JSON) inventory; port80 reads Ansible's INI inventory format ([group] sections, 'host key=value' lines)"),
    ],
)
def test_syntax_errors(text, message):
    assert error_of(text) == message


def test_child_group_cycles_are_reported_at_the_closing_edge():
    text = "[a:children]\nb\n[b:children]\nc\n[c:children]\na\n"
    assert error_of(text) == "inv.ini:6: adding 'a' as a child of 'c' creates a cycle: c -> a -> b -> c"
    assert error_of("[a:children]\nb\n[b:children]\na\n") == "inv.ini:4: adding 'a' as a child of 'b' creates a cycle: b -> a -> b"


def test_the_first_error_is_reported():
    text = "[web]\nw1\n[web:vars]\nbroken\n[web server]\n"
    assert error_of(text).startswith("inv.ini:4: ")
    # structural problems found at the end: the earliest line wins
    text = "[a:children]\nb\n[b:children]\na\n[c:children]\nundefined\n"
    assert error_of(text).startswith("inv.ini:4: adding 'a'")
    text = "[a:children]\nundefined\n[b:children]\nc\n[c:children]\nb\n"
    assert error_of(text).startswith("inv.ini:2: [a:children] includes the undefined group 'undefined'")


def test_inventory_error_attributes_and_no_traceback_text():
    with pytest.raises(InventoryError) as e:
        inv("[web]\nw1:x\n")
    err = e.value
    assert (err.source, err.line) == ("inv.ini", 2)
    assert "Traceback" not in str(err) and err.__cause__ is None


# --- --limit ---------------------------------------------------------------------------------------

LIMIT_INV = """\
jump.corp.example.com
[web]
web[01:04].corp.example.com
[db]
db1.corp.example.com
db2.other.example.com
web04.corp.example.com
[prod:children]
web
db
[lab]
lab1.corp.example.com
"""


@pytest.fixture()
def limit_inv() -> Inventory:
    return inv(LIMIT_INV)


@pytest.mark.parametrize(
    "limit, expected",
    [
        (None, ["jump", "web01", "web02", "web03", "web04", "db1", "db2", "lab1"]),
        ("all", ["jump", "web01", "web02", "web03", "web04", "db1", "db2", "lab1"]),
        ("*", ["jump", "web01", "web02", "web03", "web04", "db1", "db2", "lab1"]),
        ("web", ["web01", "web02", "web03", "web04"]),
        ("ungrouped", ["jump"]),
        ("prod", ["web01", "web02", "web03", "web04", "db1", "db2"]),
        ("web,db", ["web01", "web02", "web03", "web04", "db1", "db2"]),
        ("db:web", ["web01", "web02", "web03", "web04", "db1", "db2"]),
        ("web:!web02.corp.example.com", ["web01", "web03", "web04"]),
        ("prod:!db", ["web01", "web02", "web03"]),
        ("web:&db", ["web04"]),
        ("prod,&web,!web01.corp.example.com", ["web02", "web03", "web04"]),
        ("!prod", ["jump", "lab1"]),
        ("web0*", ["web01", "web02", "web03", "web04"]),
        ("*.other.example.com", ["db2"]),
        ("*.corp.example.com:!prod", ["jump", "lab1"]),
        ("db1.corp.example.com", ["db1"]),
        ("lab*", ["lab1"]),
        ("web0[13]*", ["web01", "web03"]),
        ("~^web0[12]", ["web01", "web02"]),
        ("~^(db|lab)$", ["web04", "db1", "db2", "lab1"]),
        ("web[0]", ["web01"]),
        ("web[-1]", ["web04"]),
        ("web[1:2]", ["web02", "web03"]),
        ("web[2:]", ["web03", "web04"]),
        (" web , lab ", ["web01", "web02", "web03", "web04", "lab1"]),
        ("web lab", ["web01", "web02", "web03", "web04", "lab1"]),
        ("web[0]:lab", ["web01", "lab1"]),
    ],
)
def test_limit_patterns(limit_inv, limit, expected):
    got = [n.split(".")[0] for n in names(limit_inv.hosts(limit))]
    assert got == expected


def test_limit_that_matches_nothing_warns_and_returns_nothing(limit_inv):
    assert limit_inv.hosts("nosuch") == []
    assert "--limit: 'nosuch' matches no host or group" in limit_inv.warnings
    assert "--limit 'nosuch' selects no hosts" in limit_inv.warnings
    hosts, warnings = limit_inv.select("web,typo")
    assert len(hosts) == 4 and warnings == ["--limit: 'typo' matches no host or group"]


def test_limit_is_case_sensitive_like_ansible(limit_inv):
    assert limit_inv.select("WEB")[0] == []


def test_bad_limits(limit_inv):
    with pytest.raises(InventoryError) as e:
        limit_inv.hosts("")
    assert str(e.value) == "--limit '': no pattern given"
    with pytest.raises(InventoryError) as e:
        limit_inv.hosts("web,!")
    assert "must be followed by a pattern" in str(e.value)
    with pytest.raises(InventoryError) as e:
        limit_inv.hosts("~web[")
    assert str(e.value).startswith("--limit '~web[': bad regular expression '~web['")


def test_limit_with_an_ipv6_host():
    i = inv("2001:db8::1\nother\n")
    assert names(i.hosts("2001:db8::1")) == ["2001:db8::1"]


# --- shards ----------------------------------------------------------------------------------------


def test_parse_shard():
    assert parse_shard("2/5") == (2, 5)
    assert parse_shard(" 1 / 1 ") == (1, 1)
    for bad, message in [
        ("2", "--shard '2': expected K/N, e.g. 2/5 for the 2nd of 5 slices"),
        ("a/b", "--shard 'a/b': expected K/N, e.g. 2/5 for the 2nd of 5 slices"),
        ("-1/5", "--shard '-1/5': expected K/N, e.g. 2/5 for the 2nd of 5 slices"),
        ("0/5", "--shard '0/5': K must be between 1 and N (5)"),
        ("6/5", "--shard '6/5': K must be between 1 and N (5)"),
        ("1/0", "--shard '1/0': N (the number of slices) must be at least 1"),
        ("", "--shard '': expected K/N, e.g. 2/5 for the 2nd of 5 slices"),
    ]:
        with pytest.raises(ShardError) as e:
            parse_shard(bad)
        assert str(e.value) == message
        assert isinstance(e.value, ValueError)


def test_shard_validates_k_and_n():
    with pytest.raises(ShardError):
        shard([], 0, 3)
    with pytest.raises(ShardError):
        shard([], 1, 0)


def test_shard_is_stable_and_keeps_the_given_order():
    i = inv("[web]\nweb[001:200].corp.example.com\n")
    hosts = i.hosts()
    slices = [shard(hosts, k, 4) for k in range(1, 5)]
    assert sorted(names(h for s in slices for h in s)) == sorted(names(hosts))
    for s in slices:
        assert s == sorted(s, key=hosts.index)
        assert 20 < len(s) < 80  # roughly even
    # reordering the file does not move a host to another shard
    shuffled = list(hosts)
    random.Random(7).shuffle(shuffled)
    assert set(names(shard(shuffled, 3, 4))) == set(names(slices[2]))
    # nor does adding hosts
    more = inv("[web]\nweb[001:300].corp.example.com\n").hosts()
    assert set(names(slices[2])) <= set(names(shard(more, 3, 4)))
    assert shard_index("WEB001.corp.example.com", 4) == shard_index("web001.corp.example.com", 4)


host_names = st.lists(st.text(string.ascii_lowercase + string.digits + ".-", min_size=1, max_size=30), max_size=60, unique=True)


@given(host_names, st.integers(1, 12))
def test_shards_partition_any_host_list(hosts, n):
    slices = [shard(hosts, k, n) for k in range(1, n + 1)]
    flat = [h for s in slices for h in s]
    assert sorted(flat) == sorted(hosts)  # cover all, each once (the names are unique)
    for a in range(n):
        for b in range(a + 1, n):
            assert not set(slices[a]) & set(slices[b])
    for s in slices:
        assert s == [h for h in hosts if h in s]


# --- the example file ------------------------------------------------------------------------------


def test_example_inventory_parses_and_resolves():
    i = load_inventory(REPO / "inventory.example.ini")
    hosts = {h.name: h for h in i.hosts()}
    expected = (
        ["jump.corp.example.com"]
        + [f"web{n:02d}.corp.example.com" for n in range(1, 9)]
        + ["web-edge.corp.example.com", "api-a.corp.example.com", "api-c.corp.example.com", "api-e.corp.example.com", "api-z.corp.example.com"]
        + [f"old-app{n}.corp.example.com" for n in range(1, 4)]
        + ["old-files.corp.example.com", "lab1.corp.example.com", "lab2.corp.example.com"]
    )
    assert list(hosts) == expected
    for h in hosts.values():
        assert h.name.endswith(".corp.example.com")
        assert h.address == h.name or h.address.startswith(("192.0.2.", "198.51.100."))
        assert h.user == "CORP\\svc-port80"
        assert h.password_from_inventory is False

    jump = hosts["jump.corp.example.com"]
    assert (jump.address, jump.scheme, jump.port, jump.cert_validation, jump.groups) == ("192.0.2.10", "https", 5986, True, ["ungrouped"])
    assert jump.ports == [80]

    web = hosts["web03.corp.example.com"]
    assert (web.scheme, web.port, web.auth, web.cert_validation, web.ca_cert) == ("https", 5986, "negotiate", True, "/etc/pki/corp-root-ca.pem")
    assert (web.read_timeout, web.operation_timeout) == (45, 40)  # [iis:vars] (child) over [prod:vars] (parent)
    assert web.groups == ["iis", "prod", "web"]

    edge = hosts["web-edge.corp.example.com"]
    assert (edge.address, edge.port) == ("192.0.2.20", 5986)

    api = hosts["api-z.corp.example.com"]
    assert api.vars["owner"] == "web team" and api.ports == [80, 443, 8080]

    old = hosts["old-files.corp.example.com"]
    assert (old.address, old.scheme, old.port, old.auth, old.encryption) == ("198.51.100.7", "http", 5985, "ntlm", "auto")
    assert hosts["old-app2.corp.example.com"].scheme == "http"

    lab = hosts["lab1.corp.example.com"]
    assert (lab.connection, lab.auth, lab.cert_validation, lab.read_timeout, lab.operation_timeout) == ("winrm", "kerberos", False, 70, 60)
    w8 = hosts["web08.corp.example.com"]
    assert w8.groups == ["iis", "lab", "prod", "web"] and w8.connection == "winrm"

    assert len(i.hosts("web")) == 9
    assert "web07.corp.example.com" not in names(i.hosts("web:!web07.corp.example.com"))
    assert len(i.hosts("prod:&iis")) == 13
    assert not {h.name for h in i.hosts("*.corp.example.com,!legacy")} & {h.name for h in i.hosts("legacy")}
    assert all(w.startswith(str(REPO / "inventory.example.ini") + ":") for w in i.warnings)
    json.dumps(i.to_dict())


def test_port80_inventory_lists_the_example_despite_its_ca_file_missing_here(tmp_path, monkeypatch):
    # the README's example inventory names /etc/pki/corp-root-ca.pem; listing the settings warns once
    # (file:line, the hosts) and shows them; a scan still stops on it (tests/test_hostile_small.py)
    from typer.testing import CliRunner

    from remote.cli.app import app

    monkeypatch.chdir(REPO)
    res = CliRunner().invoke(app, ["inventory", "-i", "inventory.example.ini"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().endswith("20 hosts")
    ca = [ln for ln in res.stderr.splitlines() if "ansible_psrp_ca_cert" in ln]
    assert len(ca) == 1 and ca[0].startswith("port80: warning: inventory.example.ini:80: ")
    assert "web01.corp.example.com" in ca[0] and "old-app1" not in ca[0]
    res = CliRunner().invoke(app, ["scan", "-i", "inventory.example.ini", "--limit", "web01*", "--evidence-dir",
                                   str(tmp_path / "ev")], env={"PORT80_PASSWORD": "x"})
    assert res.exit_code == 2 and "inventory.example.ini:80: web01.corp.example.com: ansible_psrp_ca_cert" in res.stderr


def test_example_inventory_documents_the_password_sources():
    text = (REPO / "inventory.example.ini").read_text(encoding="utf-8")
    head = text[:1200]
    assert "Ansible" in head and "PORT80_PASSWORD" in head and "--password-file" in head
    assert "--limit" in text


# --- secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "var",
    ["ansible_password", "ansible_psrp_password", "ansible_winrm_password", "ansible_winrm_pass", "ansible_pass"],
)
def test_inventory_passwords_are_used_with_a_warning_and_never_shown(var):
    i = inv(f"[web]\nw1 ansible_user=svc {var}='S3cret-Pa55'\n")
    h = i.host("w1")
    assert h.password_from_inventory is True
    assert h.inventory_password() == "S3cret-Pa55"
    assert h.secret_vars == [var] and var not in h.vars
    assert i.warnings == [
        f"inv.ini:2: {var} is set in the inventory: it is used, but secrets belong in PORT80_PASSWORD or "
        "--password-file (the value is never shown)"
    ]
    for text in (repr(h), str(h), json.dumps(h.to_dict()), json.dumps(i.to_dict()), repr(i), repr(dataclasses.asdict(h))):
        assert "S3cret-Pa55" not in text
    assert "S3cret-Pa55" not in repr(vars(h))  # even the instance dict shows only Secret('***')


def test_password_from_group_vars_and_flavour_preference():
    i = inv("[web]\nw1\n[web:vars]\nansible_password=group-pw\n")
    assert i.host("w1").inventory_password() == "group-pw"
    assert "ansible_password" in i.groups["web"].secret_vars and "ansible_password" not in i.groups["web"].vars
    i = inv("w1 ansible_password=generic ansible_winrm_password=winrm ansible_psrp_password=psrp\n")
    assert i.host("w1").inventory_password() == "psrp"
    i = inv("w1 ansible_connection=winrm ansible_password=generic ansible_winrm_password=winrm ansible_psrp_password=psrp\n")
    assert i.host("w1").inventory_password() == "winrm"


def test_other_secret_looking_variables_are_hidden_too():
    h = inv("w1 api_token=abc123xyz ansible_become_password=zzz9 vault_secret=qq1 team=ops\n").host("w1")
    assert h.vars == {"team": "ops"}
    assert h.secret_vars == ["ansible_become_password", "api_token", "vault_secret"]
    assert h.password_from_inventory is False


def test_an_unquoted_space_in_a_password_is_an_error_that_does_not_echo_it():
    msg = error_of("[web]\nw1 ansible_password=hunter2 trailing-part\n")
    assert msg == "inv.ini:2: the value of ansible_password has an unquoted space: quote it ('...')"
    assert "hunter2" not in msg and "trailing-part" not in msg


def test_a_quote_error_on_a_password_line_does_not_echo_the_line():
    msg = error_of("[web]\nw1 ansible_password='hunter2\n")
    assert "hunter2" not in msg and msg.startswith("inv.ini:2: host line for 'w1'")


def test_host_addresses_ipv6_in_ansible_host():
    assert inv("w1 ansible_host=2001:db8::9\n").host("w1").url == "https://[2001:db8::9]:5986/wsman"
    assert inv("w1 ansible_host=[2001:db8::9]\n").host("w1").address == "2001:db8::9"


def test_deepcopy_keeps_the_password_hidden_and_usable():
    import copy

    h = inv("w1 ansible_password=pw12345\n").host("w1")
    c = copy.deepcopy(h)
    assert c.inventory_password() == "pw12345" and "pw12345" not in repr(vars(c))


def test_a_large_inventory_builds_in_linear_time():
    import time

    start = time.perf_counter()
    i = inv("[web]\nweb[00001:30000].corp.example.com\n[prod:children]\nweb\n[prod:vars]\nansible_port=5985\n")
    assert len(i) == 30000 and len(i.hosts("prod:!web01*")) == 29000
    assert time.perf_counter() - start < 15  # ~0.6 s; a quadratic step takes minutes


def test_replace_does_not_carry_the_password_over():
    h = inv("w1 ansible_password=pw12345\n").host("w1")
    assert dataclasses.replace(h, port=1).inventory_password() is None


passwords = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=8,
    max_size=40,
).filter(lambda p: p.strip() == p and "\n" not in p)


def _inventory_with_password(password: str, where: str) -> str:
    if where == "host":
        body = f"[web]\nw1 ansible_user=svc ansible_password={shlex.quote(password)}\n"
    else:
        body = f"[web]\nw1 ansible_user=svc\n[web:vars]\nansible_password={password!r}\n"
    return "lone\n" + body + "[web:vars]\nport80_ports=80\nport80_typo=1\nansible_psrp_protocl=x\n"


def _everything_shown(text: str) -> list[str]:
    """Every text the inventory (or its errors) may print."""
    i = inv(text)
    h = i.host("w1")
    shown = [repr(h), str(h), json.dumps(h.to_dict(), ensure_ascii=False), json.dumps(i.to_dict(), ensure_ascii=False),
             repr(i), repr(i.groups), repr(dataclasses.asdict(h)), repr(vars(h)), *i.warnings]
    for broken in ("[broken\n", "[web:vars]\nansible_port=nope\n"):
        with pytest.raises(InventoryError) as e:
            inv(text + broken)
        shown += [str(e.value), repr(e.value)]
    return shown


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(password=passwords, where=st.sampled_from(["host", "group"]))
def test_random_passwords_never_show(password, where):
    # skip passwords that are a coincidental piece of the fixed texts (e.g. 'PORT80_P')
    assume(not any(password in t for t in _everything_shown(_inventory_with_password("Zq9-pl4ceh0lder", where))))
    text = _inventory_with_password(password, where)
    assert inv(text).host("w1").inventory_password() == password
    for shown in _everything_shown(text):
        assert password not in shown


def test_a_value_python_would_warn_about_is_a_plain_string_without_noise():
    import warnings

    from remote.inventory.ansible_ini import _parse_value

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _parse_value("1if") == "1if" and _parse_value("5986") == 5986
