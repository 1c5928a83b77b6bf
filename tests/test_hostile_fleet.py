"""Issue 16's bars against the lab over real sockets: one hostile host never stops a fleet, host
text never reaches the terminal raw, a torn results.jsonl plus --resume loses no host."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.cli.app import app
from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir

RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # anything but \t and \n
BASE = "branchcache"  # a healthy demo bundle with services.json


def make_fleet(root: Path, n: int, hostile: dict[int, dict[str, str]]) -> Path:
    """``n`` copies of a demo bundle, host names node-NN; ``hostile[i]`` maps a file name to a
    (text -> replacement) edit applied to copy i."""
    src = demo_fleet_dir() / BASE
    for i in range(n):
        d = root / f"node-{i:02d}"
        shutil.copytree(src, d)
        meta = json.loads((d / "host.json").read_text(encoding="utf-8"))
        meta["hostname"] = f"node-{i:02d}"
        (d / "host.json").write_text(json.dumps(meta), encoding="utf-8")
        for name, edits in hostile.get(i, {}).items():
            text = (d / name).read_text(encoding="utf-8")
            for old, new in edits.items():
                assert old in text, (name, old)
                text = text.replace(old, new, 1)
            (d / name).write_text(text, encoding="utf-8")
    return root


def scan(inv: Path, ev: Path, password: str, *extra: str) -> subprocess.CompletedProcess:
    """The real console command in a subprocess: exactly the bytes a terminal would get."""
    return subprocess.run([sys.executable, "-m", "remote", "scan", "-i", str(inv), "--evidence-dir", str(ev),
                           "--forks", "4", "--timeout", "20", *extra],
                          env={"PORT80_PASSWORD": password, "PATH": "/usr/bin:/bin"}, capture_output=True,
                          timeout=300)


@pytest.mark.timeout(300)
def test_lone_surrogate_in_one_host_never_stops_the_fleet(tmp_path):
    bundles = make_fleet(tmp_path / "b", 40, {7: {"services.json": {'"Name":  "PeerDistSvc"': '"Name":  "Contoso\\ud800Api"'}}})
    inv = tmp_path / "inv.ini"
    with lab_fleet(bundles, inventory=inv) as fleet:
        ev = tmp_path / "ev"
        res = scan(inv, ev, fleet.password, "-f", "json")
        assert res.returncode in (0, 1), res.stderr.decode(errors="replace")
        lines = (ev / "results.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 40
        hosts = [json.loads(x)["host"] for x in lines]
        assert sorted(hosts) == sorted(h.name for h in fleet.hosts)
        doc = json.loads((ev / "report.json").read_text(encoding="utf-8"))
        assert len(doc["hosts"]) == 40 and (ev / "report.csv").is_file()
        assert json.loads(res.stdout.decode("utf-8"))["summary"]["hosts"] == 40
        bad = next(h for h in doc["hosts"] if h["host"] == "node-07")
        assert bad["status"] == "ok"
        text = json.dumps(bad, ensure_ascii=False)
        assert "Contoso\ufffdApi" in (ev / "node-07" / "services.json").read_text(encoding="utf-8") \
            or "Contoso\ufffdApi" in text
        assert any("U+FFFD" in w for w in bad["warnings"]), bad["warnings"]
        # and offline, every format
        for fmt in ("json", "csv", "jsonl", "markdown", "table"):
            r = CliRunner().invoke(app, ["analyze", str(bundles / "node-07"), "-f", fmt])
            assert r.exit_code == 0, (fmt, r.output, r.exception)
            assert "Contoso" not in r.output or "\ufffd" in r.output or fmt in ("table", "markdown")
