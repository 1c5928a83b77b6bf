"""End to end: `port80 fix` against the lab's demo hosts over real sockets (pypsrp unmocked).

Each test serves only the handful of demo bundles it needs (picked by what the analysis says they
are, not by name), so the lab state one test changes never leaks into another.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.remediation import journal as rj
from remote.remediation import plan as rm
from remote.analysis.verdicts import analyze_bundle
from remote.evidence.bundle import find_bundles, read_bundle
from remote.evidence.kinds import READ_ONLY_STATEMENTS
from remote.cli.app import app
from remote.lab.fixture import lab_fleet

from remote.lab import fleet as lab_fleet_mod
from remote.lab.engine.host import LabHost

TIMEOUT = "20"
# read-only statements (canonical keys, lower case) — everything a scan or a read-back sends
READ_ONLY = {s.lower() for s in READ_ONLY_STATEMENTS}


def _kind(bundle: Path) -> str:
    v = analyze_bundle(read_bundle(bundle), [80]).ports[0]
    keys = {r.product_key for r in v.registrations}
    if any(l.pid != 4 for l in v.listeners):
        return "process" if "http.sys" not in v.holders else "both"
    if v.holder == "free":
        return "free"
    for k in ("winrm-compat", "branchcache", "ssrs"):
        if k in keys:
            return k
    if keys == {"iis"}:
        return "iis" if any(x.pids for x in v.registrations) else "iis-idle"
    return "other"


@pytest.fixture(scope="module")
def demo() -> dict[str, Path]:
    """product/case -> one healthy demo bundle of it."""
    found: dict[str, Path] = {}
    for b in find_bundles([Path(lab_fleet_mod.demo_fleet_dir())]):
        if LabHost.from_bundle(b).faults:
            continue
        found.setdefault(_kind(b), b)
    from remote.analysis.servicegraph import dependents_of, graph_from_text

    for b in find_bundles([Path(lab_fleet_mod.demo_fleet_dir())]):  # WAS runs dependents beside W3SVC
        g = graph_from_text(read_bundle(b).texts.get("getservice"))
        if _kind(b) == "iis" and g is not None and set(dependents_of(g, "WAS", running_only=True)) - {"W3SVC"}:
            found.setdefault("iis-wcf", b)
    for need in ("branchcache", "ssrs", "iis", "winrm-compat", "iis-wcf"):
        assert need in found, f"the demo fleet has no healthy {need} host (found: {sorted(found)})"
    return found


@contextmanager
def served(tmp_path: Path, demo: dict[str, Path], kinds: list[str], **kw):
    """A lab of just these demo bundles; yields (fleet, inventory, env, names by kind)."""
    prof = tmp_path / "profiles"
    names = {}
    for k in kinds:
        if k not in demo:
            continue
        shutil.copytree(demo[k], prof / demo[k].name)
        names[k] = demo[k].name
    inv = tmp_path / "inv.ini"
    with lab_fleet(prof, inventory=inv, workdir=tmp_path / "lab", **kw) as fleet:
        by_bundle = {h.bundle_dir.name: h.name for h in fleet.hosts}
        yield fleet, inv, {"PORT80_PASSWORD": fleet.password}, {k: by_bundle[v] for k, v in names.items()}


def fix(inv: Path, env: dict, *args: str, input: str | None = None):
    res = CliRunner().invoke(app, ["fix", "-i", str(inv), "--timeout", TIMEOUT, *args], env=env, input=input)
    return res


def host_of(fleet, name: str):
    return next(h for h in fleet.hosts if h.name == name)


def snapshots(fleet) -> dict[str, dict[str, str]]:
    return {h.name: h.host.snapshot() for h in fleet.hosts}


def state_changes(fleet) -> list[tuple[str, str]]:
    return [(h.name, e["key"]) for h in fleet.hosts for e in h.command_log if e.get("changed_state")]


def scan_verdicts(inv: Path, env: dict, out: Path) -> dict[str, list]:
    res = CliRunner().invoke(app, ["scan", "-i", str(inv), "--timeout", TIMEOUT, "--evidence-dir", str(out),
                                   "-f", "json"], env=env)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    keep = ("port", "holder", "holders", "registrations", "listeners", "iplisten", "notes")
    return {h["host"]: [{k: p[k] for k in keep} for p in h["ports"]] for h in doc["hosts"]}


def journal_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- the dry run ----------------------------------------------------------------------------------------


def test_dry_run_plans_and_changes_nothing(tmp_path, demo):
    kinds = ["branchcache", "ssrs", "iis", "winrm-compat", "process", "free"]
    with served(tmp_path, demo, kinds) as (fleet, inv, env, names):
        before = snapshots(fleet)
        res = fix(inv, env, "--strategy", "disable-services", "--evidence-dir", str(tmp_path / "ev"), "-f", "json")
        assert res.exit_code == 0, res.output
        assert state_changes(fleet) == []
        for h in fleet.hosts:
            for e in h.command_log:
                assert set(e["key"].lower().split("; ")) <= READ_ONLY, e["key"]
        assert snapshots(fleet) == before
    plans = {h["host"]: h for h in json.loads(res.stdout)["hosts"]}
    assert plans[names["branchcache"]]["status"] == "planned"
    cmds = [a["command"] for a in plans[names["branchcache"]]["actions"]]
    assert cmds == ["Stop-Service -Name PeerDistSvc", "Set-Service -Name PeerDistSvc -StartupType Disabled"]
    assert plans[names["ssrs"]]["status"] == "planned"
    iis = [a["command"] for a in plans[names["iis"]]["actions"]]
    assert iis[0].startswith("Stop-Service -Name W3SVC") and any("WAS" in c for c in iis)
    w = plans[names["winrm-compat"]]
    assert w["status"] == "skipped" and not w["actions"]
    assert "WinRM compatibility listener" in w["reason"] and "remoting session" in w["reason"]
    assert w["manual"] == 'winrm set winrm/config/service @{EnableCompatibilityHttpListener="false"}'
    if "process" in names:
        p = plans[names["process"]]
        assert p["status"] == "skipped" and "does not kill processes" in p["reason"]
    if "free" in names:
        assert plans[names["free"]]["status"] == "nothing"
    # every action carries its state before
    for p in plans.values():
        for a in p["actions"]:
            assert a["before"], a
    assert (tmp_path / "ev" / "plan.json").is_file() and not (tmp_path / "ev" / "journal.jsonl").exists()


def test_apply_refused_without_yes_when_not_interactive(tmp_path, demo):
    with served(tmp_path, demo, ["branchcache"]) as (fleet, inv, env, names):
        res = fix(inv, env, "--strategy", "disable-services", "--apply", "--evidence-dir", str(tmp_path / "ev"))
        assert res.exit_code == 2
        assert "--yes" in res.output
        assert all(not h.command_log for h in fleet.hosts)


# --- apply, verify, undo ---------------------------------------------------------------------------------


def test_apply_frees_port_80_then_undo_restores_everything(tmp_path, demo):
    kinds = ["branchcache", "ssrs", "iis", "iis-idle", "winrm-compat"]
    freed = [k for k in ("branchcache", "ssrs", "iis", "iis-idle") if k in demo]
    with served(tmp_path, demo, kinds) as (fleet, inv, env, names):
        originals = snapshots(fleet)
        verdicts = scan_verdicts(inv, env, tmp_path / "scan0")
        journal = tmp_path / "apply" / "journal.jsonl"
        res = fix(inv, env, "--strategy", "disable-services", "--apply", "--yes",
                  "--evidence-dir", str(tmp_path / "apply"), "-f", "json", "-vv")
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        hosts = {h["host"]: h for h in doc["hosts"]}
        for k in freed:
            o = hosts[names[k]]["outcome"]
            assert o["status"] == "ok" and o["verified"] == "free", (k, o)
            assert len(o["applied"]) == len(hosts[names[k]]["actions"])
        w = hosts[names["winrm-compat"]]
        assert w["status"] == "skipped" and w["outcome"] is None and "WinRM" in w["reason"]
        assert not [k for n, k in state_changes(fleet) if n == names["winrm-compat"]]
        # the journal: an intent before every result, with the state before; no secret anywhere
        recs = journal_records(journal)
        intents = [r for r in recs if r["event"] == "intent"]
        assert len(intents) == sum(len(hosts[names[k]]["actions"]) for k in freed)
        for r in intents:
            assert r["action"]["before"]
            i = recs.index(r)
            assert recs[i + 1:] and any(x["event"] == "applied" and x["seq"] == r["seq"] and x["host"] == r["host"]
                                        for x in recs[i + 1:])
        for path in [p for p in (tmp_path / "apply").rglob("*") if p.is_file()]:
            assert fleet.password not in path.read_text(encoding="utf-8", errors="replace"), path
        assert fleet.password not in res.output
        # a scan now sees port 80 free on those hosts
        now = scan_verdicts(inv, env, tmp_path / "scan1")
        for k in freed:
            assert now[names[k]][0]["holder"] == "free"

        res = fix(inv, env, "--undo", str(journal), "--yes", "--evidence-dir", str(tmp_path / "undo"), "-f", "json")
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        for h in doc["hosts"]:
            assert h["outcome"]["status"] == "ok" and h["outcome"]["verified"].startswith("as before"), h
        assert (tmp_path / "undo" / "journal.jsonl").is_file()
        assert snapshots(fleet) == originals
        assert scan_verdicts(inv, env, tmp_path / "scan2") == verdicts


def fail_once(monkeypatch, labhost, prefix: str) -> list:
    """A lab fault on one command: the first pipeline starting with ``prefix`` runs as if the session had
    lost its elevation (Windows answers "Cannot open <svc> service"); everything else runs normally."""
    original = labhost.run
    fired: list = []

    def run(statements):
        from remote.lab import api

        if not fired and api.canonical_key(statements).startswith(prefix):
            fired.append(api.canonical_key(statements))
            labhost.machine.elevated = False
            try:
                return original(statements)
            finally:
                labhost.machine.elevated = True
        return original(statements)

    monkeypatch.setattr(labhost, "run", run)
    return fired


def test_failure_mid_apply_leaves_a_journal_that_undo_handles(tmp_path, demo, monkeypatch):
    import sys

    import typer
    import typer.testing

    with served(tmp_path, demo, ["iis-wcf", "branchcache"]) as (fleet, inv, env, names):
        originals = snapshots(fleet)
        verdicts = scan_verdicts(inv, env, tmp_path / "scan0")
        fired = fail_once(monkeypatch, host_of(fleet, names["iis-wcf"]).host, "Stop-Service -Name WAS")
        asked = []
        # the CliRunner's stdin plays a terminal, so the confirmation is asked (and answered yes)
        monkeypatch.setattr(typer.testing._NamedTextIOWrapper, "isatty", lambda self: self is sys.stdin)
        monkeypatch.setattr(typer, "confirm", lambda text, **kw: asked.append(text) or True)
        journal = tmp_path / "j.jsonl"
        res = fix(inv, env, "--strategy", "disable-services", "--apply", "--journal", str(journal),
                  "--evidence-dir", str(tmp_path / "apply"), "-f", "json")
        assert res.exit_code == 1, res.output
        assert asked and "Apply 9 changes on 2 hosts" in asked[0] and fired
        hosts = {h["host"]: h for h in json.loads(res.stdout)["hosts"]}
        o = hosts[names["iis-wcf"]]["outcome"]
        assert o["failed"] == "Stop-Service -Name WAS", o["error"]
        assert o["status"] == "failed" and "cannot be stopped" in o["error"]
        assert o["applied"][:2] == ["Stop-Service -Name W3SVC", "Set-Service -Name W3SVC -StartupType Disabled"]
        adapters = [c.split()[-1] for c in o["applied"][2:]]
        assert sorted(adapters) == ["NetMsmqActivator", "NetPipeActivator", "NetTcpActivator"]
        assert o["not_run"] == ["Set-Service -Name WAS -StartupType Disabled"]
        assert hosts[names["branchcache"]]["outcome"]["verified"] == "free"
        events = [(r["event"], r.get("seq")) for r in journal_records(journal)
                  if r["event"] in ("intent", "applied", "failed") and r["host"] == names["iis-wcf"]]
        assert events == [e for k in range(1, 6) for e in (("intent", k), ("applied", k))] + [("intent", 6),
                                                                                                ("failed", 6)]

        res = fix(inv, env, "--undo", str(journal), "--yes", "--evidence-dir", str(tmp_path / "undo"), "-f", "json")
        assert res.exit_code == 0, res.output
        hosts = {h["host"]: h for h in json.loads(res.stdout)["hosts"]}
        assert [a["command"] for a in hosts[names["iis-wcf"]]["actions"]] == [
            f"Start-Service -Name {a}" for a in reversed(adapters)] + [
            "Set-Service -Name W3SVC -StartupType Automatic", "Start-Service -Name W3SVC"]
        assert any("not undone" in n for n in hosts[names["iis-wcf"]]["notes"])
        assert snapshots(fleet) == originals
        assert scan_verdicts(inv, env, tmp_path / "scan2") == verdicts


def test_iplisten_apply_verify_undo(tmp_path, demo):
    with served(tmp_path, demo, ["branchcache"]) as (fleet, inv, env, names):
        originals = snapshots(fleet)
        addr = host_of(fleet, names["branchcache"]).address
        # leaving out the address port80 reaches the host on is refused
        res = fix(inv, env, "--strategy", "iplisten", "--iplisten", "10.9.9.9", "--evidence-dir",
                  str(tmp_path / "dry"), "-f", "json")
        assert res.exit_code == 0, res.output
        (p,) = json.loads(res.stdout)["hosts"]
        assert p["status"] == "skipped" and addr in p["reason"] and "WinRM" in p["reason"]
        res = fix(inv, env, "--strategy", "iplisten", "--iplisten", addr, "--apply", "--yes",
                  "--evidence-dir", str(tmp_path / "apply"), "-f", "json")
        assert res.exit_code == 0, res.output
        (p,) = json.loads(res.stdout)["hosts"]
        assert [a["command"] for a in p["actions"]] == [f"netsh.exe http add iplisten ipaddress={addr}"]
        assert p["actions"][0]["before"] == {"iplisten": []}
        assert p["outcome"]["verified"].startswith("restricted"), p["outcome"]
        assert rm.IPLISTEN_NOTE in p["notes"]
        assert snapshots(fleet) != originals
        res = fix(inv, env, "--undo", str(tmp_path / "apply" / "journal.jsonl"), "--yes",
                  "--evidence-dir", str(tmp_path / "undo"), "-f", "json")
        assert res.exit_code == 0, res.output
        (p,) = json.loads(res.stdout)["hosts"]
        assert [a["command"] for a in p["actions"]] == [f"netsh.exe http delete iplisten ipaddress={addr}"]
        assert snapshots(fleet) == originals


def test_deadline_mid_action_leaves_an_intent_undo_restores(tmp_path, demo):
    """A host that stops answering while an action runs: reported as timeout at the deadline, its
    journal holds the intent without a result, and the undo plan restores it (outcome unknown)."""
    from remote.remediation.apply import JournalWriter, read_journal_file, run_plans
    from remote.inventory.targets import to_spec
    from remote.inventory.ansible_ini import load_inventory

    bundle = demo["branchcache"]
    name = bundle.name
    with served(tmp_path, demo, ["branchcache"], faults={name: {"kind": "slow", "seconds": 4}}) as (
            fleet, inv, env, names):
        spec = to_spec(load_inventory(inv).hosts(None)[0])
        plan = rm.HostPlan(host=spec.name, port=80, strategy="disable-services", status="planned",
                           actions=[rm.Action("stop-service", "PeerDistSvc", before={"state": "Running",
                                                                                    "start_mode": "Manual"})])
        journal = JournalWriter(tmp_path / "j.jsonl", "apply")
        outcomes = run_plans({spec.name: spec}, lambda s: fleet.password, [plan], journal, forks=2, timeout=2.5,
                             secrets=[fleet.password])
        o = outcomes[spec.name]
        assert o.status == "timeout" and "deadline" in o.error
        j = read_journal_file(tmp_path / "j.jsonl")
        (e,) = j.entries
        assert e.outcome is None and e.to_restore
        (u,) = rj.undo_plans(j)
        assert [a.command for a in u.actions] == ["Start-Service -Name PeerDistSvc"]
        assert "outcome unknown" in u.actions[0].why


def test_was_dependents_join_the_plan_apply_frees_undo_restores_byte_identical(tmp_path, demo):
    """The bar of issue 17: WAS has running dependents beside W3SVC (the WCF listener adapters, from the
    demo host's getservice.json); they show in the dry run with why, --apply stops and journals each (no
    -Force), the port is free, --undo restores every service's state and start mode byte for byte."""
    with served(tmp_path, demo, ["iis-wcf"]) as (fleet, inv, env, names):
        h = host_of(fleet, names["iis-wcf"]).host
        originals = snapshots(fleet)
        res = fix(inv, env, "--strategy", "disable-services", "--evidence-dir", str(tmp_path / "dry"))
        assert res.exit_code == 0, res.output
        for adapter in ("NetMsmqActivator", "NetPipeActivator", "NetTcpActivator"):
            assert f"Stop-Service -Name {adapter}" in res.stdout
        assert "running dependent of WAS" in res.stdout
        line = next(ln for ln in res.stdout.splitlines() if "WAS stops with:" in ln)
        assert {"W3SVC", "NetMsmqActivator", "NetPipeActivator", "NetTcpActivator"} <= set(
            line.split("stops with:")[1].replace(",", " ").split())
        journal = tmp_path / "j.jsonl"
        res = fix(inv, env, "--strategy", "disable-services", "--apply", "--yes", "--journal", str(journal),
                  "--evidence-dir", str(tmp_path / "apply"), "-f", "json")
        assert res.exit_code == 0, res.output
        (p,) = json.loads(res.stdout)["hosts"]
        assert p["outcome"]["verified"] == "free"
        stopped = [r["action"]["target"] for r in journal_records(journal)
                   if r["event"] == "intent" and r["action"]["kind"] == "stop-service"]
        assert stopped[0] == "W3SVC" and stopped[-1] == "WAS"  # dependents first, WAS last
        assert sorted(stopped[1:-1]) == ["NetMsmqActivator", "NetPipeActivator", "NetTcpActivator"]
        assert all(r["event"] != "failed" for r in journal_records(journal))
        assert not any("-Force" in e["key"] for e in h.command_log)
        m = h.machine
        assert all(m.service(s)["State"] == "Stopped" for s in stopped)
        res = fix(inv, env, "--undo", str(journal), "--yes", "--evidence-dir", str(tmp_path / "undo"), "-f", "json")
        assert res.exit_code == 0, res.output
        assert snapshots(fleet) == originals  # services.json, getservice.json, tasklist, netstat… byte for byte


def test_a_service_winrm_needs_is_refused_with_the_chain(tmp_path, demo):
    """The graph, not a hand list, protects the remoting session: on a host where WinRM was made to depend on
    the registrant (`sc config WinRM depend= NSI/HTTP/RPCSS/PeerDistSvc`: a synthetic edit of the demo
    BranchCache bundle's getservice.json, both lists as Windows would show them), port80 fix refuses, names
    the chain, and sends nothing that changes state."""
    prof = tmp_path / "p2"
    shutil.copytree(demo["branchcache"], prof / demo["branchcache"].name)
    gs = prof / demo["branchcache"].name / "getservice.json"
    recs = json.loads(gs.read_text(encoding="utf-8-sig"))
    for r in recs:
        if r["Name"] == "WinRM":
            r["ServicesDependedOn"] = (r["ServicesDependedOn"] or []) + ["PeerDistSvc"]
        if r["Name"] == "PeerDistSvc":
            r["DependentServices"] = ["WinRM"]
    gs.write_text(json.dumps(recs, indent=4), encoding="utf-8")
    with lab_fleet(prof, inventory=tmp_path / "inv2.ini", workdir=tmp_path / "lab2") as fleet:
        env = {"PORT80_PASSWORD": fleet.password}
        res = fix(tmp_path / "inv2.ini", env, "--strategy", "disable-services", "--apply", "--yes",
                  "--force-service", "PeerDistSvc", "--evidence-dir", str(tmp_path / "ev"), "-f", "json")
        assert res.exit_code == 0, res.output
        (p,) = json.loads(res.stdout)["hosts"]
        assert p["status"] == "skipped" and not p["actions"]
        assert "remoting session" in p["reason"] and "(WinRM -> PeerDistSvc)" in p["reason"], p["reason"]
        assert state_changes(fleet) == []
