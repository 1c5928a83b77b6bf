"""`-i` accepts any source Ansible accepts, through `ansible-inventory --list` (ansible-core is in the
test extra): a YAML inventory with group_vars/ lists the same hosts and settings as the equivalent INI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.cli.app import app
from remote.inventory import ansible_cli

YAML = """\
all:
  children:
    web:
      hosts:
        web01:
          ansible_host: 127.0.1.5
        web02:
          ansible_host: 127.0.1.6
          ansible_port: 5985
          ansible_psrp_protocol: http
    db:
      hosts:
        db01:
          ansible_psrp_negotiate_hostname_override: db01.corp.example.com
      vars:
        ansible_psrp_auth: kerberos
        ansible_psrp_configuration_name: Port80Audit
    windows:
      children:
        web:
        db:
"""
GROUP_VARS = {
    "all.yml": "ansible_connection: psrp\nansible_psrp_negotiate_service: HTTP\n",
    "web.yml": "ansible_psrp_auth: ntlm\nansible_user: 'CORP\\svc_audit'\nport80_ports: '80,443'\n",
}
INI = """\
[web]
web01 ansible_host=127.0.1.5
web02 ansible_host=127.0.1.6 ansible_port=5985 ansible_psrp_protocol=http

[db]
db01 ansible_psrp_negotiate_hostname_override=db01.corp.example.com

[db:vars]
ansible_psrp_auth=kerberos
ansible_psrp_configuration_name=Port80Audit

[web:vars]
ansible_psrp_auth=ntlm
ansible_user='CORP\\svc_audit'
port80_ports='80,443'

[windows:children]
web
db

[all:vars]
ansible_connection=psrp
ansible_psrp_negotiate_service=HTTP
"""
FIELDS = ("name", "address", "port", "scheme", "auth", "user", "cert_validation", "configuration_name",
          "encryption", "connection", "ports", "groups", "url")


def _listing(inv: Path, *extra: str) -> list[dict]:
    res = CliRunner().invoke(app, ["inventory", "-i", str(inv), "-f", "json", *extra])
    assert res.exit_code == 0, res.output
    start = res.output.index("[")
    return json.loads(res.output[start:])


@pytest.fixture
def sources(tmp_path):
    assert ansible_cli.ansible_inventory() is not None, "ansible-core (test extra) provides ansible-inventory"
    y = tmp_path / "yaml"
    (y / "group_vars").mkdir(parents=True)
    (y / "inventory.yml").write_text(YAML, encoding="utf-8")
    for name, text in GROUP_VARS.items():
        (y / "group_vars" / name).write_text(text, encoding="utf-8")
    i = tmp_path / "ini"
    i.mkdir()
    (i / "inventory.ini").write_text(INI, encoding="utf-8")
    return y / "inventory.yml", i / "inventory.ini"


def test_yaml_with_group_vars_equals_ini(sources):
    yml, ini = sources
    a, b = (sorted(_listing(x), key=lambda h: h["name"]) for x in (yml, ini))
    assert len(a) == 3
    assert [{k: h[k] for k in FIELDS} for h in a] == [{k: h[k] for k in FIELDS} for h in b]
    assert [h["vars"] for h in a] == [h["vars"] for h in b]
    db = next(h for h in a if h["name"] == "db01")
    assert db["vars"]["ansible_psrp_negotiate_hostname_override"] == "db01.corp.example.com"


def test_same_limit_patterns(sources):
    yml, ini = sources
    for pattern in ("web", "windows:!db", "web0*", "db01,web02"):
        assert sorted(h["name"] for h in _listing(yml, "--limit", pattern)) == \
            sorted(h["name"] for h in _listing(ini, "--limit", pattern)), pattern


def test_vaulted_value_is_not_read(sources):
    yml, _ = sources
    (yml.parent / "host_vars").mkdir()
    (yml.parent / "host_vars" / "web01.yml").write_text(
        "ansible_password: !vault |\n"
        "  $ANSIBLE_VAULT;1.1;AES256\n"
        "  62313365396662343061393464336163383764373764613633653634306231386433626436623361\n"
        "  6134333665353966363534333632666535333761666131620a663537646436643839616531643561\n",
        encoding="utf-8")
    res = CliRunner().invoke(app, ["inventory", "-i", str(yml), "-f", "json"])
    assert res.exit_code == 0, res.output
    assert "web01: ansible_password is vault-encrypted: not read" in res.output
    assert "PORT80_PASSWORD" in res.output
    web01 = next(h for h in json.loads(res.output[res.output.index("["):]) if h["name"] == "web01")
    assert web01["password_from_inventory"] is False and "ANSIBLE_VAULT" not in json.dumps(web01)


def test_without_ansible_a_yaml_source_says_what_to_install(sources, monkeypatch):
    yml, ini = sources
    monkeypatch.setattr(ansible_cli, "ansible_inventory", lambda: None)
    res = CliRunner().invoke(app, ["inventory", "-i", str(yml)])
    assert res.exit_code == 2 and "ansible-core" in res.output
    assert len(_listing(ini)) == 3  # the built-in INI reader stays the default


def test_ini_without_group_vars_stays_builtin(tmp_path, monkeypatch):
    ini = tmp_path / "inv.ini"
    ini.write_text(INI, encoding="utf-8")
    assert not ansible_cli.wants_ansible(ini)
    (tmp_path / "group_vars").mkdir()
    assert ansible_cli.wants_ansible(ini)  # Ansible would merge group_vars/: so does port80, through it
    shutil.rmtree(tmp_path / "group_vars")
