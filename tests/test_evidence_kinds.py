"""The evidence-kind registry (remote/evidence/kinds.py) and the tables derived from it."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from remote.cli.app import app
from remote.evidence import bundle, kinds
from remote.evidence.kinds import KINDS, CmdletJson, Native, Script
from remote.lab.engine import host as lab_host
from remote.remoting import collect

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "evidence-bundle.md"


def test_docs_table_is_the_registrys():
    text = DOC.read_text(encoding="utf-8")
    assert kinds.update_docs(text) == text, "run: python -m remote.evidence.kinds"


def test_every_bundle_file_is_in_the_hand_capture_recipe():
    text = DOC.read_text(encoding="utf-8")
    recipe = text[text.index("```powershell"):]
    recipe = recipe[:recipe.index("```\n", 5)]
    for kind, name in kinds.FILES.items():
        assert f"\\{name}" in recipe, kind


def test_every_command_is_read_only():
    # the allowlist the e2e tests check the lab's command log against is made from these rows, so the
    # rows themselves must be read-only: native tools that only print, Get-* cmdlets, an expression
    for k in KINDS.values():
        c = k.command
        if c is None:
            assert not k.collected and not k.file, k
        elif isinstance(c, Native):
            assert c.words[0] in ("netstat.exe", "tasklist.exe") or c.words[:3] == ("netsh.exe", "http", "show") \
                or (c.words[:2] == ("netsh.exe", "int") and c.words[3] == "show"), k
        elif isinstance(c, CmdletJson):
            assert c.cmdlet.startswith("Get-"), k
        else:
            assert isinstance(c, Script) and not re.search(r"\b(set|stop|start|remove|new|invoke)-", c.script, re.I), k


def test_derived_tables():
    assert list(bundle.FILES) == [k for k in KINDS if KINDS[k].file]
    assert bundle.COMMANDS == {k: KINDS[k].command.text for k in bundle.FILES}
    assert list(collect.EVIDENCE) == [k for k in KINDS if KINDS[k].collected]
    assert collect.FALLBACK["services"][0] == "tasklist"
    assert set(kinds.FILES.items()) <= set(lab_host.FILES.items())
    # the text recorded in host.json stays what it was before the registry
    assert bundle.COMMANDS["services"] == ("Get-CimInstance Win32_Service | Select-Object "
                                           "Name,DisplayName,State,StartMode,ProcessId | ConvertTo-Json")
    assert bundle.COMMANDS["servicestate"] == "netsh.exe http show servicestate view=requestq"


def test_the_lab_has_a_handler_for_every_command():
    from remote.lab.engine import commands as lab_commands

    for k in KINDS.values():
        c = k.command
        if isinstance(c, Native):
            assert c.words[0].lower().removesuffix(".exe") in lab_commands.NATIVE, k.name
        elif isinstance(c, CmdletJson):
            assert c.cmdlet.lower() in lab_commands.CMDLETS, k.name


def test_every_parser_resolves_and_takes_empty_text():
    for k in KINDS.values():
        if k.parser:
            res = k.parse("")
            assert res.error is None and res.warnings == [], k.name


def test_parse_cli_offers_exactly_the_kinds_with_a_parser(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("", encoding="utf-8")
    res = CliRunner().invoke(app, ["parse", "nosuchkind", str(f)])
    assert res.exit_code == 2
    offered = res.output.split("choose from ")[1].split(")")[0].split(", ")
    assert offered == [k for k in KINDS if KINDS[k].parser]


def test_error_attribution():
    attr = kinds.attribute_error
    every = list(kinds.COLLECTED)
    assert attr("netsh.exe : The requested operation requires elevation", ["urlacl", "iplisten"]) == "urlacl"
    assert attr("netsh http show iplisten failed", every) == "iplisten"
    assert attr("Get-CimInstance : Access denied (Win32_OperatingSystem)", every) == "os"
    assert attr("Get-CimInstance : Access denied", every) == "services"
    assert attr("Get-Process : not allowed", every) == "processes"
    assert attr("tasklist.exe : ERROR", ["tasklist"]) == "tasklist"
    assert attr("something else entirely", every) is None
