"""`port80 fix` option checks: bad usage exits 2 before anything talks to a host."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from remote.cli.app import app


@pytest.fixture
def inv(tmp_path):
    p = tmp_path / "inv.ini"
    p.write_text("[lab]\nh1 ansible_host=127.0.0.1 ansible_port=1\n", encoding="utf-8")
    return p


@pytest.mark.parametrize("args, words", [
    ([], "--strategy"),
    (["--strategy", "kill-everything"], "--strategy"),
    (["--strategy", "iplisten"], "--iplisten"),
    (["--strategy", "iplisten", "--iplisten", "web01"], "not an IP address"),
    (["--strategy", "iplisten", "--iplisten", "nohost=10.0.0.5"], "not among the hosts"),
    (["--strategy", "disable-services", "--format", "csv"], "--format"),
    (["--strategy", "disable-services", "--port", "0"], "--port"),
    (["--strategy", "disable-services", "--apply"], "--yes"),
    (["--undo", "missing.jsonl"], "no such journal"),
])
def test_bad_usage_exits_2(inv, args, words):
    res = CliRunner().invoke(app, ["fix", "-i", str(inv), *args], env={"PORT80_PASSWORD": "pw"})
    assert res.exit_code == 2, res.output
    assert words in res.output


def test_undo_takes_no_strategy_and_needs_its_own_journal(inv, tmp_path):
    j = tmp_path / "j.jsonl"
    j.write_text("", encoding="utf-8")
    res = CliRunner().invoke(app, ["fix", "-i", str(inv), "--undo", str(j), "--strategy", "iplisten"],
                             env={"PORT80_PASSWORD": "pw"})
    assert res.exit_code == 2 and "--undo takes the changes from the journal" in res.output
    res = CliRunner().invoke(app, ["fix", "-i", str(inv), "--undo", str(j), "--journal", str(j), "--yes"],
                             env={"PORT80_PASSWORD": "pw"})
    assert res.exit_code == 2 and "its own journal" in res.output


def test_undo_of_an_unreadable_journal_names_file_and_line_and_exits_2(inv, tmp_path):
    j = tmp_path / "bad.jsonl"
    j.write_text("not json\n{\"event\": \"nonsense\"}\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["fix", "-i", str(inv), "--undo", str(j), "--evidence-dir", str(tmp_path / "e"),
                                   "--yes"], env={"PORT80_PASSWORD": "pw"})
    assert res.exit_code == 2, res.output
    assert f"{j}:1: unreadable" in res.output and f"{j}:2: unknown event" in res.output
    assert "no readable change in this journal" in res.output
