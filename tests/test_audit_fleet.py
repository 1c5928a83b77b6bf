"""The audit features on the lab's demo fleet, scanned once over real sockets: a policy keyed by an
inventory group (`scan --policy`, `policy check`, `policy learn`), the HTML report in a real headless
Chromium (host count, filter, sort, no console error, screenshot for the README), hostile host text
in the HTML, and every JSON output validated against the report schema."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from remote.cli.app import app
from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir
from remote.report.schema import schema
from cdp_browser import Browser, find_chromium

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "report-html.png"
POLICY = """\
# the bar of issue 14: no BranchCache on port 80 anywhere; IIS only in the web group
unknown = "ignore"

[[rule]]
name = "no BranchCache"
hosts = "all"
port = 80
forbidden_products = ["branchcache"]

[[rule]]
name = "IIS only on web servers"
hosts = "!web"
port = 80
forbidden_products = ["iis"]
"""
BRANCHCACHE_LINE = POLICY.splitlines().index('forbidden_products = ["branchcache"]') + 1
IIS_LINE = POLICY.splitlines().index('forbidden_products = ["iis"]') + 1


def validator(part: str = ""):
    s = schema()
    doc = {"$defs": s["$defs"], "$ref": f"#/$defs/{part}"} if part else s
    return jsonschema.Draft202012Validator(doc)


@pytest.fixture(scope="module")
def fleet_scan(tmp_path_factory):
    """The demo fleet but its hung host, with iis-worker in a `web` group, scanned once."""
    tmp = tmp_path_factory.mktemp("audit-fleet")
    inv = tmp / "inv.ini"
    db = tmp / "history.sqlite"
    policy = tmp / "policy.toml"
    policy.write_text(POLICY)
    with lab_fleet(inventory=inv, workdir=tmp / "lab") as fleet:
        with open(inv, "a") as fh:
            fh.write("\n[web]\niis-worker\n")
        res = CliRunner().invoke(app, ["scan", "-i", str(inv), "--limit", "!faulty-hang", "--timeout", "30",
                                       "--evidence-dir", str(tmp / "ev"), "--db", str(db), "--policy", str(policy),
                                       "-f", "json"], env={"PORT80_PASSWORD": fleet.password})
    doc = json.loads(res.stdout) if res.stdout.startswith("{") else {"hosts": []}
    return {"tmp": tmp, "inv": inv, "db": db, "policy": policy, "ev": tmp / "ev", "res": res, "doc": doc,
            "n": len(doc["hosts"])}


def test_scan_with_a_policy_flags_exactly_the_hosts_that_break_it(fleet_scan):
    res = fleet_scan["res"]
    assert res.exit_code == 4, res.output  # a violation wins over the failed hosts' exit 1
    doc = json.loads(res.stdout)
    validator().validate(doc)
    groups = {h["host"]: h["groups"] for h in doc["hosts"]}
    assert "web" in groups["iis-worker"] and "web" not in groups["iis-idle"]
    assert f"policy.toml:{BRANCHCACHE_LINE}" in res.stderr and f"policy.toml:{IIS_LINE}" in res.stderr

    out = CliRunner().invoke(app, ["policy", "check", "--policy", str(fleet_scan["policy"]), str(fleet_scan["ev"]),
                                   "-f", "json"])
    assert out.exit_code == 4, out.output
    pdoc = json.loads(out.stdout)
    validator("policy").validate(pdoc)
    got = {(v["host"], int(v["rule"].rsplit(":", 1)[1])) for v in pdoc["violations"]}
    assert {v["check"] for v in pdoc["violations"]} == {"forbidden_products"}
    assert all(v["evidence"].startswith("servicestate.txt:") for v in pdoc["violations"])
    # expected, from the report itself: BranchCache anywhere; IIS outside the web group
    want = set()
    for h in doc["hosts"]:
        keys = {g["product_key"] for p in h["ports"] if p["port"] == 80 for g in p["registrations"]}
        if "branchcache" in keys:
            want.add((h["host"], BRANCHCACHE_LINE))
        if "iis" in keys and "web" not in h["groups"]:
            want.add((h["host"], IIS_LINE))
    assert got == want
    assert {("branchcache", BRANCHCACHE_LINE), ("iis-idle", IIS_LINE), ("iplisten-split", IIS_LINE)} <= got
    assert not any(h == "iis-worker" for h, _ in got)  # IIS in the web group is allowed
    # the same check from the run recorded in the history database
    again = CliRunner().invoke(app, ["policy", "check", "--policy", str(fleet_scan["policy"]), "1",
                                     "--db", str(fleet_scan["db"]), "-f", "csv"])
    assert again.exit_code == 4 and len(again.stdout.splitlines()) == 1 + len(pdoc["violations"])


def test_unknown_counts_as_a_violation_when_the_policy_says_so(fleet_scan, tmp_path):
    strict = tmp_path / "strict.toml"
    strict.write_text(POLICY.replace('unknown = "ignore"', 'unknown = "violation"'))
    out = CliRunner().invoke(app, ["policy", "check", "--policy", str(strict), str(fleet_scan["ev"]), "-f", "json"])
    hosts = {v["host"] for v in json.loads(out.stdout)["violations"] if v["check"] == "unknown"}
    failed = {h["host"] for h in fleet_scan["doc"]["hosts"] if h["status"] not in ("ok", "partial")}
    assert {"faulty-auth", "faulty-wsman"} <= failed
    assert hosts == failed  # not scanned: cannot be shown compliant


def test_learned_policy_passes_on_its_own_run_and_is_valid(fleet_scan, tmp_path):
    learned = tmp_path / "learned.toml"
    res = CliRunner().invoke(app, ["policy", "learn", str(fleet_scan["ev"]), "-o", str(learned)])
    assert res.exit_code == 0, res.output
    text = learned.read_text()
    # the IIS hosts share a rule: the web group (iis-worker) first, then the other IIS hosts by name
    assert re.search(r'hosts = "web,[^"]*iis-idle', text), text
    ok = CliRunner().invoke(app, ["policy", "check", "--policy", str(learned), str(fleet_scan["ev"])])
    assert ok.exit_code == 0, ok.output


def test_every_json_output_matches_the_schema(fleet_scan, tmp_path):
    ev = fleet_scan["ev"]
    validator().validate(json.loads((ev / "report.json").read_text()))
    host_line = validator("host_line")
    lines = CliRunner().invoke(app, ["analyze", str(ev), "-f", "jsonl", "--no-history"]).stdout.splitlines()
    assert len(lines) == fleet_scan["n"] > 10
    for line in lines:
        host_line.validate(json.loads(line))
    for line in (ev / "results.jsonl").read_text().splitlines():  # the scan's own record of each host
        validator("host").validate(json.loads(line))
    d = CliRunner().invoke(app, ["diff", str(ev), str(ev), "-f", "json"])
    assert d.exit_code == 0, d.output
    validator("diff").validate(json.loads(d.stdout))


def _html(fleet_scan, out: Path, monkeypatch) -> str:
    env = {"SOURCE_DATE_EPOCH": "1767225600"}  # a fixed "generated" time: the screenshot is reproducible
    monkeypatch.chdir(fleet_scan["tmp"])  # relative names on the page: no temporary path in the screenshot
    res = CliRunner().invoke(app, ["report", "ev", "--html", "--policy", "policy.toml", "-o", str(out)], env=env)
    assert res.exit_code == 4, res.output  # the policy has violations
    return out.read_text(encoding="utf-8")


def test_html_is_self_contained(fleet_scan, tmp_path, monkeypatch):
    text = _html(fleet_scan, tmp_path / "r.html", monkeypatch)
    assert "<script src" not in text and "<link" not in text and "url(" not in text
    assert "default-src 'none'" in text
    for section in ('id="summary"', 'id="policy"', 'id="hosts-table"', 'id="chart-holder-80"', 'id="chart-product"',
                    'id="chart-failures"', 'id="chart-groups"', "servicestate.txt:"):
        assert section in text


def test_html_in_headless_chromium(fleet_scan, tmp_path, monkeypatch):
    assert find_chromium(), "chromium is needed for this test: apt-get install -y chromium (.ci/run does it)"
    page = tmp_path / "r.html"
    _html(fleet_scan, page, monkeypatch)
    with Browser(height=1500) as b:
        b.open(page.as_uri())
        n = fleet_scan["n"]
        iis = sum(1 for h in fleet_scan["doc"]["hosts"]
                  if any(g["product"] == "IIS (W3SVC/WAS)" for p in h["ports"] for g in p["registrations"]))
        assert n > 10 and iis >= 3
        assert b.eval("document.querySelectorAll('#hosts-table tbody tr').length") == n
        assert b.eval("document.getElementById('shown-count').textContent") == str(n)

        def filtered(q: str) -> int:
            return b.eval("(function(){var f=document.getElementById('filter'); f.value=%s;"
                          "f.dispatchEvent(new Event('input'));"
                          "return document.querySelectorAll('#hosts-table tbody tr:not([hidden])').length})()"
                          % json.dumps(q))

        assert filtered("IIS (W3SVC") == iis  # iis-idle, iis-worker, iplisten-split, ...
        assert b.eval("document.getElementById('shown-count').textContent") == str(iis)
        assert filtered("web") >= 1 and filtered("no such host") == 0
        assert filtered("") == n
        b.eval("document.getElementById('status-filter').value='auth';"
               "document.getElementById('status-filter').dispatchEvent(new Event('change'))")
        assert b.eval("document.querySelectorAll('#hosts-table tbody tr:not([hidden])').length") == 1
        b.eval("document.getElementById('status-filter').value='';"
               "document.getElementById('status-filter').dispatchEvent(new Event('change'))")
        # sorting by host, descending, then ascending
        b.eval("document.querySelector('#hosts-table th').click(); document.querySelector('#hosts-table th').click()")
        first = b.eval("document.querySelector('#hosts-table tbody tr td').textContent")
        names = sorted(h["host"] for h in fleet_scan["doc"]["hosts"])
        assert first == names[-1]
        b.eval("document.querySelector('#hosts-table th').click()")
        assert b.eval("document.querySelector('#hosts-table tbody tr td').textContent") == names[0]
        policy_rows = json.loads(CliRunner().invoke(app, ["policy", "check", "--policy", "policy.toml", "ev",
                                                          "-f", "json"]).stdout)["violations"]
        assert b.eval("document.querySelectorAll('#policy tbody tr').length") == len(policy_rows) >= 3
        filtered("IIS")  # the screenshot shows the filter at work (and no host-specific error text: stable)
        b.eval("window.scrollTo(0, 0)")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        b.screenshot(SCREENSHOT)
        assert b.problems() == []
    assert SCREENSHOT.stat().st_size > 10_000


def hostile_bundle(tmp_path: Path) -> Path:
    src = Path(demo_fleet_dir()) / "branchcache"
    dst = tmp_path / "bundles" / "evil"
    shutil.copytree(src, dst)
    meta = json.loads((dst / "host.json").read_text())
    meta["host"] = "<b id=evil-host>x</b>\"'&amp;"
    (dst / "host.json").write_text(json.dumps(meta))
    svc = (dst / "services.json").read_text()
    (dst / "services.json").write_text(svc.replace('"PeerDistSvc"', '"<img src=x onerror=alert(2)>"'))
    ss = (dst / "servicestate.txt").read_bytes()
    (dst / "servicestate.txt").write_bytes(ss.replace(b"116B50EB-ECE2-41AC-8429-9F9E963361B7",
                                                      b"x\"'&amp;onmouseover=alert(3)"))  # no <> in a URL
    return dst.parent


def test_hostile_host_text_is_escaped_in_html(tmp_path):
    b = hostile_bundle(tmp_path)
    out = tmp_path / "evil.html"
    res = CliRunner().invoke(app, ["analyze", str(b), "-f", "html", "-o", str(out), "--no-history"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "<img src=x" not in text and "<b id=evil-host>" not in text and "x\"'&amp;onmouseover" not in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text and "x&quot;&#x27;&amp;amp;onmouseover=alert(3)" in text
    assert text.count("<script>") == 1  # port80's own
    if find_chromium() is None:
        pytest.fail("chromium is needed for this test: apt-get install -y chromium (.ci/run does it)")
    with Browser() as br:
        br.open(out.as_uri())
        assert br.eval("document.querySelectorAll('img').length") == 0
        assert br.eval("document.querySelectorAll('script').length") == 1
        assert br.eval("document.getElementById('evil-host')") is None
        body = br.eval("document.body.textContent")
        assert "<img src=x onerror=alert(2)>" in body and "x\"'&amp;onmouseover=alert(3)" in body
        assert br.eval("document.querySelectorAll('[onmouseover], [onerror]').length") == 0
        assert "<b id=evil-host>x</b>\"'&amp;" in body
        assert br.problems() == []
