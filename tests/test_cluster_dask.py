"""`port80 scan --cluster`: a real Dask scheduler and two real Dask workers on loopback (one with the
resource segment-east=1, one with segment-west=1), a lab of 100 hosts in two segments.

Every host is scanned by a worker of its segment, the report equals a local scan's, and killing a
worker process mid-scan (its nanny starts a new one, as it does in production) still yields every
host exactly once. The password never shows in the scheduler's or the workers' logs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir

N = 100
PASSWORD = "Dask-Secret-Pw-9!"
DASK = [sys.executable, "-m", "dask"]
VOLATILE = ("collected_at", "evidence_dir", "elapsed_s")


def healthy_profiles(dest: Path) -> Path:
    """The demo fleet's bundles whose expected scan status is ok (no fault): a deterministic report."""
    src = demo_fleet_dir()
    expected = {e["host"]: e for e in json.loads((src / "EXPECTED.json").read_text(encoding="utf-8"))}
    for d in sorted(p for p in src.iterdir() if (p / "host.json").is_file()):
        meta = json.loads((d / "host.json").read_text(encoding="utf-8"))
        lab = meta.get("lab") if isinstance(meta.get("lab"), dict) else {}
        e = expected.get(d.name) or {}
        if lab.get("fault") or e.get("fault") or (e.get("scan") or {}).get("status") != "ok":
            continue
        shutil.copytree(d, dest / d.name)
    assert any(dest.iterdir())
    return dest


def segmented_inventory(lab_inv: Path, out: Path) -> dict[str, str]:
    """The lab's inventory with its hosts split in two groups, east and west (port80_segment)."""
    hosts, conn, section = [], [], None
    for line in lab_inv.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s
        elif s and not s.startswith("#"):
            (conn if section and section.endswith(":vars]") else hosts).append(s)
    half = len(hosts) // 2
    seg = {h.split()[0]: ("east" if i < half else "west") for i, h in enumerate(hosts)}
    text = ["[east]", *hosts[:half], "", "[west]", *hosts[half:], "",
            "[east:vars]", "port80_segment=east", "", "[west:vars]", "port80_segment=west", "",
            "[fleet:children]", "east", "west", "", "[fleet:vars]", *conn, ""]
    out.write_text("\n".join(text), encoding="utf-8")
    return seg


class Cluster:
    """`dask scheduler` + one `dask worker` per segment, all on 127.0.0.1, no dashboard."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.sched_file = tmp / "scheduler.json"

    def _start(self, name: str, args: list[str]) -> None:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
        self.procs[name] = subprocess.Popen(DASK + args, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                            cwd=str(self.tmp), env=env, start_new_session=True)

    def start(self) -> str:
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(self.sched_file)])
        deadline = time.monotonic() + 60
        while not self.sched_file.is_file():
            assert self.procs["scheduler"].poll() is None, self.logs["scheduler"].read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        time.sleep(0.3)
        address = json.loads(self.sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for seg in ("east", "west"):
            self._start(seg, ["worker", "--scheduler-file", str(self.sched_file), "--host", "127.0.0.1",
                              "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--nthreads", "2", "--name", seg, "--resources", f"segment-{seg}=1",  # noqa: E501
                              "--death-timeout", "60"])
        self.wait_workers(2)
        return address

    def wait_workers(self, n: int, timeout: float = 90) -> None:
        from distributed import Client

        with Client(json.loads(self.sched_file.read_text())["address"], timeout=30, set_as_default=False) as c:
            c.wait_for_workers(n, timeout=timeout)

    def worker_pid(self, name: str) -> int:
        """The pid of the worker process named ``name`` (under its nanny), as the scheduler knows it."""
        from distributed import Client

        with Client(json.loads(self.sched_file.read_text())["address"], timeout=30, set_as_default=False) as c:
            for addr, w in c.scheduler_info()["workers"].items():
                if w.get("name") == name:
                    pid = int(c.run(os.getpid, workers=[addr])[addr])
                    assert pid != self.procs[name].pid  # the worker process, not its nanny
                    return pid
        raise AssertionError(f"no worker named {name}")

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)


def port80(*args: str, wait: bool = True, **kw):
    env = dict(os.environ, PORT80_PASSWORD=PASSWORD)
    cmd = [sys.executable, "-m", "remote", *args]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kw)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def comparable(report: Path) -> list[dict]:
    hosts = json.loads(report.read_text(encoding="utf-8"))["hosts"]
    return [{k: v for k, v in h.items() if k not in VOLATILE} for h in hosts]


def results_lines(folder: Path) -> list[str]:
    p = folder / "results.jsonl"
    if not p.is_file():
        return []
    return [json.loads(line)["host"] for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dask-lab")
    profiles = healthy_profiles(tmp / "profiles")
    with lab_fleet(profiles, N, password=PASSWORD, latency_ms=60, inventory=tmp / "lab.ini") as fleet:
        seg = segmented_inventory(tmp / "lab.ini", tmp / "inv.ini")
        yield fleet, tmp / "inv.ini", seg


def test_segments_placement_report_and_a_worker_killed_mid_scan(tmp_path: Path, lab):
    fleet, inv, seg = lab
    assert sorted(set(seg.values())) == ["east", "west"] and len(seg) == N

    local = port80("scan", "-i", str(inv), "--evidence-dir", str(tmp_path / "local"), "--forks", "50",
                   "-f", "json", "--no-history")
    assert local.returncode == 0, local.stderr[-2000:]

    cluster = Cluster(tmp_path)
    try:
        address = cluster.start()
        out = tmp_path / "cluster"
        proc = port80("scan", "-i", str(inv), "--cluster", address, "--batch", "5", "--forks", "5",
                      "--evidence-dir", str(out), "-f", "json", "--no-history", wait=False)
        # kill the east worker's process once some hosts are in: its batches run again
        deadline = time.monotonic() + 240
        while len(results_lines(out)) < 10:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "no result from the cluster"
            time.sleep(0.05)
        victim = cluster.worker_pid("east")
        os.kill(victim, signal.SIGKILL)
        killed_at = len(results_lines(out))
        stdout, stderr = proc.communicate(timeout=400)
        assert proc.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr
        restarted = cluster.worker_pid("east")
    finally:
        cluster.stop()
    assert killed_at < N  # mid-scan
    assert restarted != victim  # the east worker's process was killed (its nanny started a new one)
    east_log = cluster.logs["east"].read_text(errors="replace")
    assert f"Worker process {victim} was killed by signal 9" in east_log

    # every host exactly once
    names = results_lines(out)
    assert sorted(names) == sorted(seg) and len(names) == len(set(names)) == N

    # every host scanned by a worker of its segment (host.json says which worker ran it)
    for host, s in seg.items():
        meta = json.loads((out / host / "host.json").read_text(encoding="utf-8"))
        assert meta["runner"] == s, (host, meta.get("runner"))
        assert meta["status"] == "ok"

    # the report equals a local scan's (but for timings and folder names)
    assert comparable(out / "report.json") == comparable(tmp_path / "local" / "report.json")
    assert json.loads(stdout)["hosts"] and comparable(out / "report.json")

    # the same evidence files, byte for byte
    for host in seg:
        for f in sorted(p.name for p in (tmp_path / "local" / host).iterdir() if p.name != "host.json"):
            assert (out / host / f).read_bytes() == (tmp_path / "local" / host / f).read_bytes(), (host, f)

    # the password crossed in memory only: never in the scheduler's or the workers' logs
    for name, log in cluster.logs.items():
        text = log.read_text(errors="replace")
        assert PASSWORD not in text, name
    assert PASSWORD not in stderr and PASSWORD not in (out / "results.jsonl").read_text()


def test_a_segment_no_worker_offers_is_one_clear_line(tmp_path: Path, lab):
    fleet, inv, seg = lab
    cluster = Cluster(tmp_path)
    try:
        cluster._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                     "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(cluster.sched_file)])
        deadline = time.monotonic() + 60
        while not cluster.sched_file.is_file():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(0.3)
        cluster._start("west", ["worker", "--scheduler-file", str(cluster.sched_file), "--host", "127.0.0.1",
                                "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--nthreads", "1", "--name", "west", "--resources", "segment-west=1"])  # noqa: E501
        cluster.wait_workers(1)
        address = json.loads(cluster.sched_file.read_text())["address"]
        res = port80("scan", "-i", str(inv), "--cluster", address, "--evidence-dir", str(tmp_path / "ev"),
                     "--no-history")
    finally:
        cluster.stop()
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("port80: error: no Dask worker offers resource segment-east=1"), res.stderr
    assert "Traceback" not in res.stderr
