"""`port80 scan` against `port80 lab serve --hosts 200` (two separate processes, real sockets, each host
on its own loopback address at the real WinRM port), once with NTLM over HTTP and once with Basic
over HTTPS: all 200 hosts reported with the expected holders, faulty hosts classified, in time.
Also `--shard K/N` + `port80 merge`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remote.lab.fleet import demo_fleet_dir

N = 200
TIMEOUT = 25  # 2 shared cores: 200 NTLM sessions at once take several seconds of CPU
EXPECTED = {e["host"]: e for e in json.loads((demo_fleet_dir() / "EXPECTED.json").read_text(encoding="utf-8"))}


def bundle_of(host: str) -> str:
    base = host
    while base not in EXPECTED and "-" in base:
        base = base.rsplit("-", 1)[0]
    return base


def start_lab(tmp: Path, auth: str, base: str, password: str):
    inv = tmp / f"inv-{auth}.ini"
    env = dict(os.environ, PORT80_LAB_PASSWORD=password)
    proc = subprocess.Popen([sys.executable, "-m", "remote", "lab", "serve", "--hosts", str(N), "--auth", auth,
                             "--base-address", base, "--inventory-out", str(inv)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if inv.exists() and inv.stat().st_size > 0:
            break
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
        time.sleep(0.2)
    time.sleep(0.5)
    return proc, inv


def stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def scan(inv: Path, out: Path, password: str, *extra: str):
    env = dict(os.environ, PORT80_PASSWORD=password)
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "remote", "scan", "-i", str(inv), "--evidence-dir", str(out),
                          "--forks", "100", "--timeout", str(TIMEOUT), "-f", "json", *extra],
                         capture_output=True, text=True, env=env, timeout=300)
    return res, time.monotonic() - t0


@pytest.mark.parametrize("auth", ["ntlm", "basic"])
def test_200_hosts(tmp_path: Path, auth: str):
    import random

    base = f"127.{random.randint(10, 250)}.{random.randint(0, 250)}.1"  # real WinRM ports, no clash with other labs
    password = "Lab-200-hosts!"
    proc, inv = start_lab(tmp_path, auth, base, password)
    try:
        res, wall = scan(inv, tmp_path / "ev", password)
    finally:
        stop(proc)
    assert res.returncode == 1, res.stderr[-2000:]  # the demo fleet has faulty hosts
    assert "Traceback" not in res.stderr
    doc = json.loads(res.stdout)
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert len(hosts) == N
    for name, h in hosts.items():
        exp = EXPECTED[bundle_of(name)]
        assert h["status"] == exp["scan"]["status"], (name, h["status"], h["error"])
        if h["status"] in ("ok", "partial"):
            want = exp["scan"]["holder"]
            want = want if isinstance(want, str) else "+".join(want)
            assert h["ports"][0]["holder"] == want, (name, h["ports"][0])
    assert wall < TIMEOUT + 30  # hung hosts end at the deadline; 200 hosts overlap


def test_shards_and_merge(tmp_path: Path):
    password = "Lab-shards!"
    from remote.lab.fixture import lab_fleet

    inv = tmp_path / "inv.ini"
    with lab_fleet(demo_fleet_dir(), hosts=26, password=password, inventory=inv):
        outs = []
        for k in (1, 2, 3):
            out = tmp_path / f"shard{k}"
            res, _ = scan(inv, out, password, "--shard", f"{k}/3", "--timeout", "5")
            assert res.returncode in (0, 1), res.stderr
            outs.append(out)
    seen = [json.loads(l)["host"] for o in outs for l in (o / "results.jsonl").read_text().splitlines()]
    assert len(seen) == 26 and len(set(seen)) == 26  # every host in exactly one shard
    res = subprocess.run([sys.executable, "-m", "remote", "merge", *map(str, outs), "-f", "json"],
                         capture_output=True, text=True)
    assert res.returncode == 1  # faulty demo hosts
    assert len(json.loads(res.stdout)["hosts"]) == 26
