"""The terminal report at fleet scale: hosts not fully scanned are grouped by class and message (a
ShellId does not split a group), the lines under the table fit one screen, --show-all lists each host."""

from __future__ import annotations

import uuid

from typer.testing import CliRunner

from remote.analysis.verdicts import HostReport, PortVerdict, failed_host
from remote.report.render import failure_groups, render

WSMAN = ("WSMan fault 2150858843: The request for the Windows Remote Shell with ShellId {} failed because the "
         "shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell "
         "no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation.")


def fleet() -> list[HostReport]:
    """300 hosts, 92 not fully scanned (as in issue 14's lab run)."""
    out = [HostReport(host=f"web{i:03d}", ports=[PortVerdict(80, "free")]) for i in range(208)]
    out += [failed_host(f"app{i:03d}", "winrm", WSMAN.format(str(uuid.uuid4()).upper()), [80]) for i in range(60)]
    out += [failed_host(f"db{i:03d}", "timeout", "no result within the 30 s per-host deadline", [80])
            for i in range(30)]
    out += [failed_host("dc01", "auth", "authentication failed: bad password", [80]),
            failed_host("dc02", "unreachable", "name not resolved (DNS)", [80])]
    return out


def test_failures_grouped_by_class_and_message():
    groups = failure_groups(fleet())
    assert [(c, len(h)) for c, _, h in groups] == [("winrm", 60), ("timeout", 30), ("auth", 1), ("unreachable", 1)]
    assert "<id>" in groups[0][1]


def test_summary_fits_one_screen_and_show_all_lists_every_host():
    text = render(fleet(), "table")
    tail = text[text.index("Hosts not fully scanned"):].splitlines()
    assert len(tail) <= 24  # was 280 lines for this fleet
    assert "winrm ×60" in text and "app000, app001, app002, app003, app004, … (+55 more)" in text
    assert all(len(line) <= 120 for line in tail)
    full = render(fleet(), "table", show_all=True)
    assert all(f"app{i:03d}: winrm" in full for i in range(60))


def test_cli_groups_and_show_all(tmp_path):
    import json

    from remote.cli.app import app

    for i in range(7):  # bundles of hosts a scan could not reach (host.json only, as a scan writes them)
        d = tmp_path / f"h{i}"
        d.mkdir()
        (d / "host.json").write_text(json.dumps({"host": f"h{i}", "status": "winrm",
                                                 "error": WSMAN.format(str(uuid.uuid4()).upper())}))
    grouped = CliRunner().invoke(app, ["analyze", str(tmp_path), "--no-history"])
    assert grouped.exit_code == 1
    assert "winrm ×7" in grouped.stdout and "(+2 more)" in grouped.stdout
    full = CliRunner().invoke(app, ["analyze", str(tmp_path), "--no-history", "--show-all"])
    assert all(f"h{i}: winrm: WSMan fault" in full.stdout for i in range(7))
