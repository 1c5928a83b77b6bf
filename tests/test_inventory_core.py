"""Ansible INI inventory, credentials and shards: the features the scan relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote.inventory.credentials import CredentialsError, redact, resolve_credentials
from remote.inventory.ansible_ini import InventoryError, load_inventory, parse_inventory, parse_shard, shard

ROOT = Path(__file__).resolve().parent.parent

INV = """\
# comment
jump.example.com ansible_host=192.0.2.10

[web]
web[01:03].corp.example.com
web-edge ansible_host=192.0.2.20 ansible_port=5985 ansible_psrp_auth=ntlm  # inline comment
; a full-line comment

[web:vars]
ansible_user=CORP\\svc
ansible_psrp_ca_cert=/etc/pki/ca.pem

[legacy]
old1 ansible_host=198.51.100.7 ansible_winrm_scheme=http ansible_winrm_transport=ntlm,kerberos

[prod:children]
web
legacy

[prod:vars]
ansible_psrp_read_timeout=45
"""


def test_groups_ranges_vars_and_defaults():
    inv = parse_inventory(INV, "inv.ini")
    names = [h.name for h in inv.hosts()]
    assert names[:4] == ["jump.example.com", "web01.corp.example.com", "web02.corp.example.com",
                         "web03.corp.example.com"]
    jump = inv.host("jump.example.com")
    assert (jump.address, jump.port, jump.scheme, jump.cert_validation) == ("192.0.2.10", 5986, "https", True)
    w = inv.host("web02.corp.example.com")
    assert (w.user, w.ca_cert, w.read_timeout) == ("CORP\\svc", "/etc/pki/ca.pem", 45)
    assert set(w.groups) >= {"web", "prod"}
    edge = inv.host("web-edge")
    assert (edge.port, edge.scheme, edge.auth) == (5985, "http", "ntlm")
    old = inv.host("old1")
    assert (old.scheme, old.port, old.auth) == ("http", 5985, "ntlm")


def test_limit_patterns():
    inv = parse_inventory(INV, "inv.ini")
    assert [h.name for h in inv.hosts("legacy")] == ["old1"]
    assert len(inv.hosts("web")) == 4
    assert [h.name for h in inv.hosts("web0*")] == [f"web0{i}.corp.example.com" for i in (1, 2, 3)]
    assert "web-edge" not in [h.name for h in inv.hosts("prod:!web-edge")]
    assert [h.name for h in inv.hosts("prod:&legacy")] == ["old1"]


@pytest.mark.parametrize("text,line", [
    ("[web\nhost1\n", 1),
    ("[web]\nh[01:xx]\n", 2),
    ("[web]\nh1 ansible_port=notaport\n", 2),
    ("[a:children]\nb\n[b:children]\na\n", None),
    ("[web]\nh1 ansible_connection=ssh\n", 2),
    ("[web]\nh1 ansible_psrp_protocol=http ansible_psrp_auth=basic\n", 2),
])
def test_errors_name_file_and_line(text, line):
    with pytest.raises(InventoryError) as e:
        parse_inventory(text, "bad.ini").hosts()
    msg = str(e.value)
    assert msg.startswith("bad.ini:")
    if line is not None:
        assert msg.startswith(f"bad.ini:{line}:"), msg
    assert "\n" not in msg


def test_example_inventory_parses():
    inv = load_inventory(ROOT / "inventory.example.ini")
    hosts = inv.hosts()
    assert len(hosts) >= 10
    assert all(h.scheme in ("http", "https") for h in hosts)


def test_inventory_password_never_shows():
    inv = parse_inventory("[w]\nh1 ansible_password=Hunter2-secret\n", "i.ini")
    h = inv.host("h1")
    assert "Hunter2-secret" not in repr(h) and "Hunter2-secret" not in str(h.to_dict())
    assert any("ansible_password" in w for w in inv.warnings)
    assert all("Hunter2-secret" not in w for w in inv.warnings)


def test_credentials_order_and_errors(tmp_path):
    pf = tmp_path / "pw"
    pf.write_text("from-file\n")
    c = resolve_credentials("u", pf, env={})
    assert (c.user, c.password()) == ("u", "from-file")
    c = resolve_credentials(None, pf, env={"PORT80_PASSWORD": "from-env", "PORT80_USER": "envuser"})
    assert (c.user, c.password()) == ("envuser", "from-env")
    assert "from-env" not in repr(c)
    with pytest.raises(CredentialsError) as e:
        resolve_credentials(None, None, env={}, interactive=False)
    assert "PORT80_PASSWORD" in str(e.value)
    with pytest.raises(CredentialsError) as e:
        resolve_credentials(None, tmp_path / "missing", env={})
    assert "missing" in str(e.value)
    c = resolve_credentials(None, None, env={}, interactive=True, prompt=lambda p: "typed")
    assert c.password() == "typed"


@given(st.text(min_size=4, max_size=30).filter(lambda s: s.strip() == s and "\n" not in s))
@settings(max_examples=100, deadline=None)
def test_redaction(secret):
    import base64

    basic = base64.b64encode(f"auditor:{secret}".encode()).decode()
    text = f"password={secret} Authorization: Basic {basic}"
    out = redact(text, [secret], users=["auditor"])
    assert secret not in out and basic not in out


@given(st.lists(st.text(alphabet="abcdefghij0123456789.-", min_size=1, max_size=12), unique=True, max_size=60),
       st.integers(min_value=1, max_value=7))
@settings(max_examples=100, deadline=None)
def test_shards_partition(names, n):
    class H:
        def __init__(self, name):
            self.name = name

    hosts = [H(x) for x in names]
    parts = [shard(hosts, k, n) for k in range(1, n + 1)]
    flat = [h.name for p in parts for h in p]
    assert sorted(flat) == sorted(names)
    assert parse_shard(f"2/{max(2, n)}") == (2, max(2, n))


def test_bad_shard_text():
    for bad in ("0/3", "4/3", "x", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


# --- the fast paths of the INI reader agree with what they stand for --------------------------------

_HOST_LINE_CHARS = st.sampled_from(list("ab1=._-:/ \t\r\n'\"\\#;[]$é\x0b\x0c\xa0\u3000"))


@settings(max_examples=500, deadline=None)
@given(st.text(_HOST_LINE_CHARS, max_size=40))
def test_host_line_split_is_shlex(line):
    """split_host_line is shlex.split(comments=True, posix=True), as Ansible splits a host line,
    fast path (no quote, backslash or '#') included: same tokens, or the same ValueError."""
    import shlex

    from remote.inventory.ini_parser import split_host_line

    try:
        want = shlex.split(line, comments=True, posix=True)
    except ValueError:
        with pytest.raises(ValueError):
            split_host_line(line)
        return
    assert split_host_line(line) == want


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,12}", fullmatch=True),
                 st.from_regex(r"[0-9]{1,3}(\.[0-9]{0,3}){0,4}[ej]?", fullmatch=True),
                 st.sampled_from(["True", "False", "None", "None-1j", "True+1j", "Nonesuch", "TrueNAS", "web-01.corp",
                                  "psrp", "https", "_x", "a.b-c", "if", "lambda", "not-a", "import", "127.0.0.1", "1.2.3",
                                  "1.2", "1.", "5986", "1e5", "0x10", "1_000"])))
def test_parse_value_fast_path_is_literal_eval(raw):
    """A plain word skips ast.literal_eval: the value is what literal_eval-or-text gives."""
    import ast
    import warnings

    from remote.inventory.ini_parser import _normalize, _parse_value

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = _normalize(ast.literal_eval(raw), raw)
    except Exception:
        want = raw
    got = _parse_value(raw)
    assert got == want and type(got) is type(want)
