"""Hostile-input suite (issue 16): a fixed matrix of hostile strings put into every field of an
evidence bundle (host.json, services.json, processes.json, tasklist, netstat, servicestate, urlacl,
iplisten), served by the lab and scanned, and analysed offline, in every report format, through the
real console command (the bytes a terminal would get). Invariants:

- every host is reported exactly once (JSON, JSONL, CSV), whatever its text;
- no raw control character (C0 but TAB/LF, DEL, C1) in what reaches the terminal, in any format
  (CSV: its CRLF line ends aside);
- JSON and JSONL parse; CSV parses with every row as wide as the header; every Markdown table row
  has as many cell separators as its header, and no HTML or link gets through.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir
from remote.report.render import CSV_COLUMNS
from md_table import md_columns

RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
BASE = "branchcache"

# name -> hostile text (a Python str; JSON files get it JSON-escaped, text files raw)
HOSTILE = {
    "osc-title": "\x1b]0;pwned\x07",
    "clear-screen": "\x1b[2J\x1b[H",
    "colour-open": "\x1b[31;1m",
    "c1-csi": "\x9b31m",
    "cr-overwrite": "ok\rEVIL",
    "newline": "a\nb",
    "backspaces": "\b\b\bX",
    "nul-del": "\x00\x7f",
    "pipes": "A|B|C",
    "html": "<script>alert(1)</script>",
    "link": "[l](http://e.example)",
    "formula": "=cmd|' /C calc'!A0",
    "bidi": "\u202egnp.exe",
    "lone-surrogate": "\ud800",
    "long": "x" * 3000,
}
HUGE_NUMBER = "99999999999999999999999"


def _json_escaped(text: str) -> str:
    return json.dumps(text)[1:-1]  # lone surrogates become \ud800, control characters \u001b


def _edits(h: str) -> dict[str, list[tuple[str, str]]]:
    """file -> (old, new) edits putting ``h`` into every field port80 reads."""
    j = _json_escaped(h)
    raw = h.replace("\ud800", "\ufffd")  # a text file cannot hold a lone surrogate (UTF-8)
    return {
        "services.json": [('"Name":  "PeerDistSvc"', f'"Name":  "Peer{j}DistSvc"'),
                          ('"DisplayName":  "BranchCache"', f'"DisplayName":  "Branch{j}Cache"'),
                          ('"State":  "Running",\n        "StartMode":  "Manual",\n        "ProcessId":  3924',
                           f'"State":  "Running{j}",\n        "StartMode":  "Manual{j}",\n        "ProcessId":  3924')],
        "processes.json": [('"ProcessName":  "svchost",\n        "Path":  "C:\\\\Windows\\\\system32\\\\svchost.exe"',
                            f'"ProcessName":  "svc{j}host",\n        "Path":  "C:\\\\Windows\\\\{j}\\\\svchost.exe"')],
        "servicestate.txt": [("HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/", f"HTTP://+:80/{raw}/".replace("\n", ""))],
        "urlacl.txt": [("http://+:80/116B50EB-ECE2-41ac-8429-9F9E963361B7/", f"http://+:80/{raw}/".replace("\n", ""))],
        "netstat.txt": [("  TCP    10.0.42.118:50312      10.0.42.7:80           ESTABLISHED     3924",
                         f"  TCP    0.0.0.0:80             0.0.0.0:0              LISTENING       {HUGE_NUMBER}")],
        "iplisten.txt": [("-------------------------------------------\n",
                          f"-------------------------------------------\n    {raw.replace(chr(10), '')}\n")],
        "host.json": [('"os_caption": "Microsoft Windows 10 Enterprise"', f'"os_caption": "Windows{j}"')],
    }


def build(root: Path, hostile_hostname: bool) -> dict[str, Path]:
    """One bundle per hostile string (host names node-<name>), plus a clean one."""
    made = {}
    for i, (name, h) in enumerate([("clean", ""), *HOSTILE.items()]):
        d = root / f"b{i:02d}"
        shutil.copytree(demo_fleet_dir() / BASE, d)
        for fname, edits in (_edits(h).items() if h else ()):
            p = d / fname
            text = p.read_text(encoding="utf-8")
            for old, new in edits:
                assert old in text, (fname, old)
                text = text.replace(old, new, 1)
            p.write_text(text, encoding="utf-8", newline="")
        meta = json.loads((d / "host.json").read_text(encoding="utf-8"))
        meta["hostname"] = f"node-{name}" + (h if hostile_hostname else "")
        (d / "host.json").write_text(json.dumps(meta), encoding="utf-8")
        made[name] = d
    return made


def run(*args: str, password: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "remote", *args], capture_output=True, timeout=600,
                          env=dict(os.environ, PORT80_PASSWORD=password))


def check_output(res: subprocess.CompletedProcess, fmt: str, n_hosts: int, what: str) -> None:
    out, err = res.stdout.decode("utf-8"), res.stderr.decode("utf-8")
    assert "Traceback" not in err, (what, err[-2000:])
    shown = out + err
    if fmt == "csv":
        shown = shown.replace("\r\n", "\n")
    bad = RAW_CONTROL.findall(shown)
    assert not bad, (what, fmt, bad[:5])
    if fmt == "json":
        hosts = [h["host"] for h in json.loads(out)["hosts"]]
        assert len(hosts) == n_hosts == len(set(hosts)), (what, hosts)
    elif fmt == "jsonl":
        hosts = [json.loads(x)["host"] for x in out.splitlines()]
        assert len(hosts) == n_hosts == len(set(hosts)), (what, hosts)
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0] == CSV_COLUMNS
        assert all(len(r) == len(CSV_COLUMNS) for r in rows), what
        assert len({r[0] for r in rows[1:]}) == n_hosts, (what, sorted({r[0] for r in rows[1:]}))
        assert not any(c.startswith(("=", "+", "-", "@")) for r in rows[1:] for c in r), what
    elif fmt == "markdown":
        table = [x for x in out.splitlines() if x.startswith("|")]
        width = md_columns(table[0])
        assert all(md_columns(x) == width for x in table), (what, [x for x in table if md_columns(x) != width])
        assert len(table) >= n_hosts + 2
        assert "<script>" not in out and "](http" not in out, what


@pytest.mark.timeout(900)
def test_hostile_matrix_offline_every_format(tmp_path):
    bundles = build(tmp_path / "b", hostile_hostname=True)
    for fmt in ("table", "markdown", "csv", "json", "jsonl"):
        res = run("analyze", str(tmp_path / "b"), "-f", fmt)
        assert res.returncode == 0, res.stderr.decode()
        check_output(res, fmt, len(bundles), "analyze")
    for name, d in bundles.items():  # explain, per host (by its bundle folder)
        res = run("explain", d.name, str(tmp_path / "b"))
        assert res.returncode in (0, 1), (name, res.stderr.decode()[-500:])
        check_output(res, "table", 0, f"explain {name}")


@pytest.mark.timeout(900)
def test_hostile_matrix_served_by_the_lab_every_format(tmp_path):
    bundles = build(tmp_path / "b", hostile_hostname=False)
    inv = tmp_path / "inv.ini"
    with lab_fleet(tmp_path / "b", inventory=inv) as fleet:
        assert len(fleet.hosts) == len(bundles)
        for fmt in ("table", "markdown", "csv", "json"):
            ev = tmp_path / f"ev-{fmt}"
            res = run("scan", "-i", str(inv), "--evidence-dir", str(ev), "--timeout", "60", "-f", fmt,
                      password=fleet.password)
            failed = [(r["host"], r["status"], r["error"]) for r in map(json.loads, (ev / "results.jsonl").read_text(
                encoding="utf-8").splitlines()) if r["status"] not in ("ok", "partial")]
            assert res.returncode == 0 and not failed, (failed, res.stderr.decode()[-1000:])
            check_output(res, fmt, len(bundles), "scan")
            lines = (ev / "results.jsonl").read_text(encoding="utf-8").splitlines()
            assert sorted(json.loads(x)["host"] for x in lines) == sorted(h.name for h in fleet.hosts)
        # the host that sent lone surrogates (CLIXML _xD800_): stored with U+FFFD, and the fact noted
        doc = json.loads((tmp_path / "ev-json" / "report.json").read_text(encoding="utf-8"))
        name = bundles["lone-surrogate"].name
        host = next(h for h in doc["hosts"] if h["host"] == name)
        assert host["status"] in ("ok", "partial") and any("U+FFFD" in w for w in host["warnings"]), host["warnings"]
        res = run("check", "-i", str(inv), "--timeout", "60", password=fleet.password)
        check_output(res, "table", len(bundles), "check")
        res = run("fix", "-i", str(inv), "--strategy", "disable-services", "--evidence-dir", str(tmp_path / "fx"),
                  "--timeout", "60", password=fleet.password)
        check_output(res, "table", len(bundles), "fix plan")
        res = run("fix", "-i", str(inv), "--strategy", "disable-services", "--evidence-dir", str(tmp_path / "fm"),
                  "--timeout", "60", "-f", "markdown", password=fleet.password)
        check_output(res, "markdown", len(bundles), "fix plan")
