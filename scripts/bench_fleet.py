"""Fleet-scan benchmark (issue 5): round trips, overlap, client CPU and memory of ``port80 scan``.

    python scripts/bench_fleet.py [--json] [--hosts N] [--forks N] [--auth basic|ntlm|both]
                                  [--latency-ms N] [--big-hosts N] [--baseline-hosts N] [--quick]
                                  [--profile DIR] [--scale]

Everything runs on loopback (127.80.x.y). For each auth mode it starts the lab **in its own process**
(scripts/bench_lab.py: the real ``port80 lab serve`` code plus request counters), waits until it is
up, and runs ``port80 scan`` against it **as a separate process**:

* latency 0, N hosts, ``--forks F``: client CPU per host (user+sys of the port80 process from
  ``os.wait4``), peak RSS (``ru_maxrss``), requests per host (counted by the lab);
* latency L (default 1000 ms per HTTP request), N hosts: wall time, to check that hosts overlap;
* baseline 1 on a few hosts of the same lab: scripts/naive_audit.py, a serial loop of pypsrp
  ``Client.execute_ps`` (one call per query, 6 queries per host); its time per host is scaled to N;
* baseline 2 on the same few hosts: ``port80 scan --forks 1``, scaled to N the same way;
* memory: the first auth mode's lab has ``--big-hosts`` (default 2000) hosts; a latency-0 scan of all
  of them gives the peak RSS compared with the N-host figure.

Each lab first gets one unmeasured scan of one host per bundle (``warm_up``: the emulator computes
a bundle's answers once and shares them; port80's own first-time costs stay in every measured run),
and port80's bytecode is compiled first, as ``pip install`` does (``precompile``).

Plus, in this process: parse + analyse a synthetic 5 MB ``netsh http show servicestate`` of an IIS
host with thousands of sites (real shapes from the corpus, repeated), and the same at 10x the size.

Prints a table, the targets with PASS/FAIL, and one JSON line (with ``--json`` it is the last line
of stdout). Exit code: 0 when every target holds, 1 when one fails, 2 when the benchmark could not run.
Only healthy demo-fleet bundles are served (see ``healthy_profiles``); no fault is injected.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bench_lab import raise_nofile  # scripts/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
FLEET = ROOT / "remote" / "lab" / "fleet" / "profiles"
# a real capture, copied into the repository (tests/fixtures/SOURCES.md names where it comes from)
CORPUS_SERVICESTATE = [ROOT / "tests" / "fixtures" / "servicestate" / "htb-flight-iis-winrm.txt"]
PY = sys.executable
# loopback only, away from `port80 lab serve`'s default 127.0.1.1; one /16 per run (by pid), so two
# benchmarks (e.g. the smoke test next to a full run) do not collide; 2000 hosts fit in 127.X.0-7.*
BASE_ADDRESS = f"127.{80 + os.getpid() % 100}.0.1"

# the issue's targets table
TARGET_REQUESTS = {"basic": 7, "ntlm": 10, "kerberos": 7}
TARGET_OVERLAP = 1.3
TARGET_CPU_MS = 30.0
TARGET_RSS_MB = 300.0
TARGET_RSS_GROWTH = 1.2
TARGET_FEWER_REQUESTS = 5.0
TARGET_SS_S = 1.0
TARGET_SS_SCALING = 12.0
ISSUE_PARAMS = {"hosts": 200, "forks": 200, "latency_ms": 1000, "big_hosts": 2000, "servicestate_mb": 5.0}

JSON_KEYS = ["hosts", "forks", "auth", "latency_ms", "wall_s", "requests_per_host", "client_cpu_ms_per_host",
             "peak_rss_mb", "errors", "ratios", "baseline", "runs", "servicestate", "targets", "all_pass"]


# CPU pinning (on by default with >= 2 CPUs, --no-pin turns it off): the lab (the load generator,
# one Python process, so about one core at most) on one CPU, the measured client on another, so
# the client's CPU time is not inflated by sharing caches and run queues with the lab.
PIN = {"lab": None, "client": None}


def set_pinning(on: bool) -> None:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if on and len(cpus) >= 2:
        PIN["lab"], PIN["client"] = {cpus[0]}, set(cpus[1:])
    else:
        PIN["lab"] = PIN["client"] = None


def _pin(which: str):
    cpus = PIN[which]
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def port80_cmd() -> list[str]:
    exe = Path(PY).parent / "port80"
    return [str(exe)] if exe.exists() else [PY, "-m", "remote"]


@dataclass
class Client:
    """The ``port80`` that is measured: this checkout's, or a reference install (``--compare-client``),
    e.g. an older commit's, which may predate ``--no-history`` (it kept no history then)."""
    cmd: list[str]
    has_history: bool = True
    name: str = "this checkout"

    @classmethod
    def this(cls) -> "Client":
        return cls(port80_cmd())

    @classmethod
    def reference(cls, exe: Path) -> "Client":
        if not exe.is_file() or not os.access(exe, os.X_OK):
            raise RuntimeError(f"--compare-client {exe}: not an executable file")
        out = subprocess.run([str(exe), "scan", "--help"], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, COLUMNS="200"))
        if out.returncode != 0:
            raise RuntimeError(f"--compare-client {exe}: `scan --help` exited {out.returncode}")
        return cls([str(exe)], has_history="--no-history" in out.stdout, name=str(exe))


# --------------------------------------------------------------------------------------------------
# profiles: only healthy hosts


def healthy_profiles(dest: Path, src: Path = FLEET) -> list[str]:
    """Copy the demo fleet's healthy bundles (no lab fault, expected scan status ``ok``) to ``dest``."""
    expected: dict[str, dict] = {}
    exp = src / "EXPECTED.json"
    if exp.is_file():
        expected = {e["host"]: e for e in json.loads(exp.read_text(encoding="utf-8"))}
    names = []
    for d in sorted(p for p in src.iterdir() if (p / "host.json").is_file()):
        meta = json.loads((d / "host.json").read_text(encoding="utf-8"))
        lab = meta.get("lab") if isinstance(meta.get("lab"), dict) else {}
        e = expected.get(d.name)
        if lab.get("fault") or (e is not None and (e.get("fault") or (e.get("scan") or {}).get("status") != "ok")):
            continue
        shutil.copytree(d, dest / d.name)
        names.append(d.name)
    if not names:
        raise RuntimeError(f"{src}: no healthy bundle")
    return names


# --------------------------------------------------------------------------------------------------
# the lab, in its own process


class Lab:
    """scripts/bench_lab.py as a child process; ``take_stats()`` returns and resets the counters."""

    def __init__(self, workdir: Path, profiles: Path, hosts: int, auth: str, latency_ms: float):
        self.dir = workdir
        self.args = [PY, str(SCRIPTS / "bench_lab.py"), "--state-dir", str(workdir), "--profiles", str(profiles),
                     "--hosts", str(hosts), "--auth", auth, "--latency-ms", str(latency_ms),
                     "--base-address", BASE_ADDRESS]
        self.hosts, self.auth, self.latency_ms = hosts, auth, latency_ms
        self.proc: Optional[subprocess.Popen] = None
        self.ready: dict = {}
        self.seq = 0
        self.started_s = 0.0
        self._ps = None

    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 300.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        self._log = open(self.dir / "lab.log", "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=str(self.dir), start_new_session=True, preexec_fn=_pin("lab"))
        ready = self.dir / "ready.json"
        deadline = time.monotonic() + timeout
        while not ready.is_file():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the lab exited ({self.proc.returncode}): {self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the lab was not up within {timeout:g} s: {self.tail()}")
            time.sleep(0.1)
        self.ready = json.loads(ready.read_text(encoding="utf-8"))
        self.started_s = time.perf_counter() - t0
        try:
            import psutil

            self._ps = psutil.Process(self.proc.pid)
        except Exception:
            self._ps = None

    def tail(self) -> str:
        try:
            return (self.dir / "lab.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def cpu_s(self) -> float:
        if self._ps is None:
            return float("nan")
        t = self._ps.cpu_times()
        return t.user + t.system

    def sys_s(self) -> float:
        return self._ps.cpu_times().system if self._ps is not None else float("nan")

    def take_stats(self, timeout: float = 120.0) -> dict:
        """Per-host counters since the last call (the lab writes them on SIGUSR1, then resets them)."""
        assert self.proc is not None
        want = self.seq + 1
        path = self.dir / "stats.json"
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                if doc.get("seq", 0) >= want:
                    self.seq = doc["seq"]
                    return doc
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"no stats from the lab: {self.tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        p = self.proc
        if p is None:
            return
        try:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        finally:
            self.proc = None
            self._log.close()

    def inventory(self, names: Optional[list[str]] = None) -> Path:
        """The lab's inventory, or a copy holding only ``names``."""
        inv = Path(self.ready["inventory"])
        if names is None:
            return inv
        keep = set(names)
        out, section = [], None
        for line in inv.read_text(encoding="utf-8").splitlines():
            s = line.strip()
            if s.startswith("["):
                section = s
            elif section and ":" not in section and s and not s.startswith("#") and s.split()[0] not in keep:
                continue
            out.append(line)
        path = self.dir / f"inventory-{len(names)}.ini"
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        return path


def requests_of(stats: dict, names: list[str]) -> dict:
    per = stats["hosts"]
    reqs = [per[n]["requests"] for n in names if n in per]
    lab_errors = 0
    for n in names:
        s = per.get(n, {})
        lab_errors += s.get("tls_failures", 0)
        lab_errors += sum(v for k, v in s.get("status", {}).items() if int(k) >= 500)
    tls_wait = max((per[n].get("tls_wait_ms_max", 0) for n in names if n in per), default=0)
    tls_failures = sum(per[n].get("tls_failures", 0) for n in names if n in per)
    return {"requests_per_host": round(sum(reqs) / max(1, len(reqs)), 2), "requests_max": max(reqs, default=0),
            "lab_errors": lab_errors, "actions": stats["total"].get("actions", {}),
            "lab_tls_wait_ms_max": tls_wait, "lab_tls_failures": tls_failures}


# --------------------------------------------------------------------------------------------------
# measured child processes


@dataclass
class Measured:
    rc: int
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    user_s: float = 0.0
    sys_s: float = 0.0
    stdout: str = ""
    stderr: str = ""


def run_measured(cmd: list[str], env: dict, timeout: float, cwd: Path, wrap: Optional[list[str]] = None) -> Measured:
    """Run ``cmd``; wall time, and user+sys CPU and peak RSS of exactly that process (``os.wait4``)."""
    out_f = tempfile.TemporaryFile()
    err_f = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen((wrap or []) + cmd, env=env, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=out_f,
                         stderr=err_f, preexec_fn=_pin("client"))
    deadline = time.monotonic() + timeout
    status, ru = None, None
    hwm_kb = 0
    try:
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            hwm_kb = max(hwm_kb, _vm_hwm_kb(p.pid))
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.02)
    except BaseException:
        if p.poll() is None:
            p.kill()
            p.wait()
        raise
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    # Peak RSS: wait4's ru_maxrss covers the child's whole life, but Linux carries the parent's RSS
    # over at fork+exec, so this process stays small (the servicestate part runs in a child of its
    # own; "bench_rss_mb" in the JSON shows it) and the child's own VmHWM, sampled, backs it up.
    return Measured(rc=p.returncode, wall_s=wall, cpu_s=ru.ru_utime + ru.ru_stime,
                    maxrss_mb=max(hwm_kb, ru.ru_maxrss) / 1024.0,
                    user_s=ru.ru_utime, sys_s=ru.ru_stime,
                    stdout=out_f.read().decode(errors="replace"), stderr=err_f.read().decode(errors="replace"))


def _vm_rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` now (``VmRSS``, kB; 0 if gone)."""
    return _proc_status_kb(pid, "VmRSS:")


def _vm_hwm_kb(pid: int) -> int:
    """Peak resident set size of ``pid`` so far (``VmHWM``, kB; 0 if gone). A wrapper such as
    py-spy is measured as itself, not its child."""
    return _proc_status_kb(pid, "VmHWM:")


def _proc_status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def scan(lab: Lab, names: list[str], forks: int, workdir: Path, tag: str, timeout: float = 900.0,
         wrap: Optional[list[str]] = None, env_extra: Optional[dict] = None, client: Optional["Client"] = None) -> dict:
    """``port80 scan`` of ``names`` on ``lab`` as a separate process; one run's measurements."""
    inv = lab.inventory(names if len(names) < len(lab.ready["hosts"]) else None)
    ev = workdir / f"scan-{tag}"
    report = workdir / f"report-{tag}.json"
    env = dict(os.environ, PORT80_PASSWORD=lab.ready["password"])
    if lab.ready.get("krb5_conf"):
        env["KRB5_CONFIG"] = lab.ready["krb5_conf"]
    env.update(env_extra or {})
    client = client or Client.this()
    cmd = client.cmd + ["scan", "-i", str(inv)] + (["--no-history"] if client.has_history else []) + [
        "--forks", str(forks), "--timeout", "600", "--evidence-dir", str(ev), "--format", "json", "-o", str(report)]
    lab.take_stats()  # reset
    lab_cpu0, lab_sys0 = lab.cpu_s(), lab.sys_s()
    m = run_measured(cmd, env, timeout, workdir, wrap=wrap)
    lab_cpu, lab_sys = lab.cpu_s() - lab_cpu0, lab.sys_s() - lab_sys0
    stats = lab.take_stats()
    not_ok, seen = [], 0
    try:
        doc = json.loads(report.read_text(encoding="utf-8"))
        for h in doc.get("hosts", []):
            seen += 1
            if h.get("status") != "ok":
                line = f"{h.get('host')}: {h.get('status')} {h.get('error') or ''}".strip()
                seen_by_lab = stats["hosts"].get(str(h.get("host")))
                if seen_by_lab and len(not_ok) < 5:  # what the lab saw of it: connections, answers, actions
                    line += (f" [lab: {seen_by_lab.get('connections')} connection(s), status {seen_by_lab.get('status')}, "
                             f"{seen_by_lab.get('actions')}]")
                not_ok.append(line)
    except (OSError, ValueError) as e:
        not_ok.append(f"no report ({e}); rc {m.rc}: {m.stderr[-500:]}")
    missing = len(names) - seen if seen else 0
    req = requests_of(stats, names)
    errors = len(not_ok) + max(0, missing) + req["lab_errors"] + (1 if m.rc not in (0,) and not not_ok else 0)
    shutil.rmtree(ev, ignore_errors=True)  # thousands of bundles: keep the temp folder small
    n = len(names)
    return {
        "tag": tag, "what": "port80 scan", "hosts": n, "forks": forks, "auth": lab.auth, "latency_ms": lab.latency_ms,
        "wall_s": round(m.wall_s, 3), "requests_per_host": req["requests_per_host"], "requests_max": req["requests_max"],
        "client_cpu_ms_per_host": round(m.cpu_s * 1000 / n, 2), "client_cpu_s": round(m.cpu_s, 3),
        "client_sys_ms_per_host": round(m.sys_s * 1000 / n, 2),
        "peak_rss_mb": round(m.maxrss_mb, 1), "lab_cpu_ms_per_host": round(lab_cpu * 1000 / n, 2),
        "lab_sys_ms_per_host": round(lab_sys * 1000 / n, 2),
        "errors": errors, "error_samples": not_ok[:5], "lab_errors": req["lab_errors"], "rc": m.rc,
        "lab_tls_failures": req["lab_tls_failures"], "lab_tls_wait_ms_max": req["lab_tls_wait_ms_max"],
        "actions": req["actions"],
    }


def naive(lab: Lab, names: list[str], workdir: Path, timeout: float = 900.0) -> dict:
    """Baseline 1 (scripts/naive_audit.py) on ``names``, as a separate process."""
    r = lab.ready
    cfg = {"hosts": [[n] + r["addresses"][n] for n in names], "ssl": r["scheme"] == "https", "auth": r["auth"],
           "user": r["user"], "ca": r["ca"]}
    path = workdir / f"naive-{lab.auth}.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    env = dict(os.environ, PORT80_PASSWORD=r["password"])
    lab.take_stats()
    m = run_measured([PY, str(SCRIPTS / "naive_audit.py"), str(path)], env, timeout, workdir)
    stats = lab.take_stats()
    req = requests_of(stats, names)
    try:
        out = json.loads(m.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"failed": len(names), "wall_s": m.wall_s, "problems": [m.stderr[-500:]]}
    n = len(names)
    return {
        "tag": f"baseline1-{lab.auth}", "what": "serial Client.execute_ps x6 per host", "hosts": n, "forks": 1,
        "auth": lab.auth, "latency_ms": lab.latency_ms, "wall_s": round(m.wall_s, 3),
        "s_per_host": round(out.get("wall_s", m.wall_s) / n, 3),
        "requests_per_host": req["requests_per_host"], "requests_max": req["requests_max"],
        "client_cpu_ms_per_host": round(m.cpu_s * 1000 / n, 2), "peak_rss_mb": round(m.maxrss_mb, 1),
        "errors": int(out.get("failed", 0)) + req["lab_errors"], "error_samples": out.get("problems", [])[:3],
        "lab_errors": req["lab_errors"], "actions": req["actions"],
    }


# --------------------------------------------------------------------------------------------------
# servicestate: parse + analyse a big IIS host


def _corpus_servicestate() -> str:
    for p in CORPUS_SERVICESTATE:
        if p.is_file():
            return p.read_text(encoding="utf-8", errors="replace")
    raise FileNotFoundError(f"{CORPUS_SERVICESTATE[0]}: the servicestate sample is missing from this clone")


def big_servicestate(target_bytes: int) -> tuple[str, int]:
    """An IIS host's ``netsh http show servicestate`` (session view) with thousands of sites, built by
    repeating the DefaultAppPool URL group and request queue blocks of htb-flight-iis-winrm.txt with
    changing group ids, pool names, log folders, host names and ports. Every other site shares
    DefaultAppPool (one queue with thousands of URLs); the others get their own pool, half of them with
    a running worker process."""
    src = _corpus_servicestate().replace("\r\n", "\n")
    lines = src.split("\n")
    i_group = next(i for i, l in enumerate(lines) if l.strip().startswith("URL group ID:") and
                   "DefaultAppPool" in "\n".join(lines[i:i + 3]))
    i_req = next(i for i, l in enumerate(lines) if l.startswith("Request queues:"))
    i_dap = next(i for i, l in enumerate(lines) if i > i_req and l.strip() == "Request queue name: DefaultAppPool")
    head = "\n".join(lines[:i_group])
    group = "\n".join(lines[i_group:i_req]).rstrip("\n")
    mid = "\n".join(lines[i_req:i_dap])
    queue = "\n".join(lines[i_dap:]).rstrip("\n")
    gid = re.search(r"URL group ID:\s*(\S+)", group).group(1)
    url = re.search(r"^\s*(HTTPS?://\S+)\s*$", group, re.M | re.I).group(1)
    groups, queues = [head], [mid]
    size, i = len(head) + len(mid), 0
    while size < target_bytes:
        i += 1
        shared = i % 2 == 1
        pool = "DefaultAppPool" if shared else f"Site{i:05d}Pool"
        port = 80 if i % 5 else 8000 + i % 1000
        g = (group.replace(gid, f"FF{i:014X}").replace("DefaultAppPool", pool)
             .replace("W3SVC1", f"W3SVC{i}").replace(url, f"HTTP://site{i:05d}.contoso.test:{port}/"))
        groups.append(g)
        size += len(g) + 1
        if not shared:
            q = queue.replace("DefaultAppPool", pool)
            if i % 4 == 0:
                q = q.replace("attached: 0", "attached: 1") + f"\n            {10000 + i}"
            queues.append(q + "\n")
            size += len(q) + 2
    queues.append(queue + "\n")
    return "\n".join(groups) + "\n" + "\n".join(queues), i


def clear_memos() -> int:
    """Empty the parsers' and the analysis' memo caches (``functools.lru_cache`` on pure functions of a
    line, a URL, an image name: what hosts of a fleet share). A benchmark that parses the same text
    twice would otherwise time the second pass from the caches. Returns how many caches it emptied."""
    n = 0
    for name, mod in list(sys.modules.items()):
        if name == "remote" or name.startswith("remote."):
            for v in list(vars(mod).values()):
                if callable(getattr(v, "cache_clear", None)) and callable(getattr(v, "cache_info", None)):
                    v.cache_clear()
                    n += 1
    return n


def time_servicestate(text: str, repeat: int) -> tuple[float, dict]:
    from remote.analysis.verdicts import Evidence, analyze_evidence
    from remote.parsers.servicestate import parse_servicestate

    best, info = float("inf"), {}
    for _ in range(repeat):
        clear_memos()  # every repetition parses cold: a second pass of the same text would hit the caches
        gc.collect()
        t0 = time.perf_counter()
        ss = parse_servicestate(text)
        rep = analyze_evidence("iis-big", Evidence(servicestate=ss), [80])
        dt = time.perf_counter() - t0
        if dt < best:
            best = dt
            v = rep.ports[0]
            info = {"queues": len(ss.request_queues), "url_groups": len(ss.url_groups),
                    "registrations_port80": len(v.registrations), "holder": v.holder,
                    "warnings": len(ss.warnings)}
        del ss, rep
    return best, info


def bench_servicestate_child(mb: float, timeout: float = 600.0) -> dict:
    """``bench_servicestate`` in a child process: its 500 MB of parse results never inflate this one."""
    out = subprocess.run([PY, str(Path(__file__).resolve()), "--servicestate-only", str(mb)], capture_output=True,
                         text=True, timeout=timeout, cwd=str(ROOT))
    if out.returncode != 0:
        raise RuntimeError(f"servicestate benchmark failed: {out.stderr[-1500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_servicestate(mb: float, factor: int = 10) -> dict:
    small, sites = big_servicestate(int(mb * 1024 * 1024))
    t_small, info = time_servicestate(small, 3)
    del small
    big, sites_big = big_servicestate(int(mb * factor * 1024 * 1024))
    big_mb = len(big) / 1048576
    t_big, info_big = time_servicestate(big, 2)
    del big
    return {"mb": round(mb, 2), "sites": sites, "s": round(t_small, 3), "big_mb": round(big_mb, 1),
            "big_sites": sites_big, "big_s": round(t_big, 3), "scaling": round(t_big / t_small, 2),
            "factor": factor, "info": info, "info_big": info_big}


# --------------------------------------------------------------------------------------------------
# profile (py-spy)


IDLE_LEAVES = {"Condition.wait", "Event.wait", "Queue.get", "SSLSocket.read", "SocketIO.readinto", "SSLSocket.recv_into",
               "do_poll", "poll_wait_for_socket.<locals>.do_poll", "select", "sleep", "Thread._wait_for_tstate_lock",
               "_ModuleLock.acquire", "Lock.acquire", "wait_for_read", "BaseSelector.select", "EpollSelector.select"}


def summarize_folded(path: Path, top: int = 15) -> dict:
    """Self and inclusive sample shares per function from py-spy's ``--format raw`` (collapsed) output."""
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    area: dict[str, int] = {}
    total = 0
    idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        n_ = int(n)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        if frames[-1].split(" (")[0] in IDLE_LEAVES:  # blocked, not on CPU (py-spy cannot always tell here)
            idle += n_
            continue
        total += n_
        names = [re.sub(r"\s*\(([^()]*?):\d+\)$", r" (\1)", f) for f in frames]
        self_c[names[-1]] = self_c.get(names[-1], 0) + n_
        for f in set(names):
            incl[f] = incl.get(f, 0) + n_
        joined = " ".join(frames)
        if "parsers/" in joined or "analysis.py" in joined:
            a = "port80 parse+analyse"
        elif "bundle.py" in joined or "report.py" in joined or "json" in names[-1]:
            a = "port80 bundles/reports/json"
        elif "ssl.py" in joined or "do_handshake" in joined:
            a = "TLS (ssl)"
        elif "spnego" in joined or "ntlm" in joined.lower():
            a = "NTLM auth + message encryption (pyspnego)"
        elif "psrpcore" in joined or "pypsrp/serializer" in joined or "pypsrp/messages" in joined:
            a = "PSRP (de)serialization (pypsrp/psrpcore)"
        elif "xml" in joined or "ElementTree" in joined:
            a = "XML (SOAP envelopes)"
        elif "requests/" in joined or "urllib3" in joined or "http/client" in joined:
            a = "HTTP (requests/urllib3)"
        elif "<module>" in names[-1] or "_find_and_load" in joined:
            a = "imports (startup)"
        else:
            a = "other"
        area[a] = area.get(a, 0) + n_
    pct = lambda d: [(k, round(100.0 * v / max(1, total), 1)) for k, v in sorted(d.items(), key=lambda kv: -kv[1])]  # noqa: E731
    return {"samples": total, "idle_samples_dropped": idle, "areas": pct(area), "self": pct(self_c)[:top], "inclusive": pct(incl)[:top]}


def profile_scan(lab: Lab, names: list[str], forks: int, workdir: Path, outdir: Path) -> Optional[dict]:
    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    if not Path(spy).exists():
        log("py-spy not found: no profile")
        return None
    outdir.mkdir(parents=True, exist_ok=True)
    folded = outdir / f"port80-scan-{lab.auth}-latency0.folded"
    wrap = [spy, "record", "--format", "raw", "--rate", "250", "--output", str(folded), "--"]
    r = scan(lab, names, forks, workdir, f"profile-{lab.auth}", wrap=wrap)
    if not folded.is_file():
        log(f"py-spy wrote nothing (rc {r['rc']})")
        return None
    s = summarize_folded(folded)
    s["file"] = str(folded)
    (outdir / f"port80-scan-{lab.auth}-latency0.summary.json").write_text(json.dumps(s, indent=1), encoding="utf-8")
    return s


# --------------------------------------------------------------------------------------------------
# the benchmark


@dataclass
class Config:
    hosts: int
    forks: int
    auths: list[str]
    latency_ms: float
    big_hosts: int
    baseline_hosts: int
    servicestate_mb: float
    profile: Optional[Path] = None
    quick: bool = False
    notes: list[str] = field(default_factory=list)
    kerberos: bool = True
    compare: Optional[Client] = None
    compare_reps: int = 5


def precompile() -> None:
    """Write port80's bytecode, as ``pip install`` does at install time. An editable checkout run with
    PYTHONDONTWRITEBYTECODE=1 (set on some machines) would otherwise compile every module from source
    at each ``port80`` start (~50 ms of the measured wall time)."""
    import compileall

    compileall.compile_dir(str(ROOT / "remote"), quiet=1)


def run(cfg: Config, workdir: Path) -> dict:
    raise_nofile()
    precompile()
    t_start = time.perf_counter()
    runs: list[dict] = []
    profiles = workdir / "profiles"
    profiles.mkdir()
    healthy = healthy_profiles(profiles)
    log(f"healthy bundles: {', '.join(healthy)}")

    log(f"servicestate: {cfg.servicestate_mb:g} MB and 10x")
    ss = bench_servicestate_child(cfg.servicestate_mb)
    log(f"servicestate: {ss['mb']} MB {ss['s']} s, {ss['big_mb']} MB {ss['big_s']} s")

    per_auth: dict[str, dict] = {}
    big: Optional[dict] = None
    prof: dict[str, Any] = {}
    for ai, auth in enumerate(cfg.auths):
        res: dict[str, Any] = {}
        # memory (first auth mode only): N and big-N hosts scanned on the same lab, at the benchmark's
        # latency, where all the forks are truly in flight at once (at latency 0 a 200-host run ends
        # before 200 hosts are ever concurrent, so it would understate the figure at N)
        want_big = ai == 0 and cfg.big_hosts > cfg.hosts
        n0 = cfg.big_hosts if want_big and not cfg.latency_ms else cfg.hosts
        lab0 = Lab(workdir / f"lab-{auth}-0", profiles, n0, auth, 0)
        log(f"{auth}: lab with {n0} hosts, latency 0")
        with lab0:
            log(f"{auth}: lab up in {lab0.started_s:.1f} s")
            names = lab0.ready["hosts"]
            warm_up(lab0, names[:len(healthy)], workdir, f"{auth}-0")
            res["cpu"] = scan(lab0, names[:cfg.hosts], cfg.forks, workdir, f"{auth}-lat0-n{cfg.hosts}")
            runs.append(res["cpu"])
            log(f"{auth}: latency 0: {_brief(res['cpu'])}")
            if cfg.compare is not None:
                res["compare"] = compare_clients(lab0, names[:cfg.hosts], cfg, workdir, auth)
                runs.extend(res["compare"]["runs"])
            if cfg.profile is not None:
                prof[auth] = profile_scan(lab0, names[:cfg.hosts], cfg.forks, workdir, cfg.profile)
            if not cfg.latency_ms:
                res["overlap"] = res["cpu"]
                if want_big:
                    big = scan(lab0, names[:cfg.big_hosts], cfg.forks, workdir, f"{auth}-lat0-n{cfg.big_hosts}")
                    runs.append(big)
                    log(f"{auth}: latency 0, {cfg.big_hosts} hosts: {_brief(big)}")
                res["naive"] = naive(lab0, names[:cfg.baseline_hosts], workdir)
                res["forks1"] = scan(lab0, names[:cfg.baseline_hosts], 1, workdir, f"{auth}-lat0-forks1")
        if cfg.latency_ms:
            n1 = cfg.big_hosts if want_big else cfg.hosts
            lab1 = Lab(workdir / f"lab-{auth}-1", profiles, n1, auth, cfg.latency_ms)
            log(f"{auth}: lab with {n1} hosts, latency {cfg.latency_ms:g} ms")
            with lab1:
                names = lab1.ready["hosts"]
                warm_up(lab1, names[:len(healthy)], workdir, f"{auth}-1")
                res["overlap"] = scan(lab1, names[:cfg.hosts], cfg.forks, workdir,
                                      f"{auth}-lat{cfg.latency_ms:g}-n{cfg.hosts}")
                log(f"{auth}: latency {cfg.latency_ms:g}: {_brief(res['overlap'])}")
                runs.append(res["overlap"])
                small = max(1, cfg.hosts // 5)
                if small < cfg.hosts:  # the same with a fifth of the hosts: is the lab the bottleneck?
                    res["overlap_small"] = scan(lab1, names[:small], cfg.forks, workdir,
                                                f"{auth}-lat{cfg.latency_ms:g}-n{small}")
                    log(f"{auth}: latency {cfg.latency_ms:g}, {small} hosts: {_brief(res['overlap_small'])}")
                    runs.append(res["overlap_small"])
                if want_big:
                    big = scan(lab1, names[:cfg.big_hosts], cfg.forks, workdir,
                               f"{auth}-lat{cfg.latency_ms:g}-n{cfg.big_hosts}")
                    runs.append(big)
                    log(f"{auth}: latency {cfg.latency_ms:g}, {cfg.big_hosts} hosts: {_brief(big)}")
                log(f"{auth}: baseline 1 on {cfg.baseline_hosts} host(s)")
                res["naive"] = naive(lab1, names[:cfg.baseline_hosts], workdir)
                log(f"{auth}: baseline 2 (--forks 1) on {cfg.baseline_hosts} host(s)")
                res["forks1"] = scan(lab1, names[:cfg.baseline_hosts], 1, workdir,
                                     f"{auth}-lat{cfg.latency_ms:g}-forks1")
        runs.append(res["naive"])
        runs.append(res["forks1"])
        per_auth[auth] = res
    krb = kerberos_row(cfg, profiles, healthy, workdir) if cfg.kerberos else None
    if krb is not None:
        runs.append(krb["run"])
    doc = summarize(cfg, per_auth, big, ss, runs)
    if krb is not None:
        add_kerberos(doc, krb)
    doc["bench_s"] = round(time.perf_counter() - t_start, 1)
    doc["bench_rss_mb"] = round(_vm_hwm_kb(os.getpid()) / 1024.0, 1)
    if prof:
        doc["profile"] = prof
    return doc


def compare_clients(lab: Lab, names: list[str], cfg: Config, workdir: Path, auth: str) -> dict:
    """This checkout's client and the reference (``--compare-client``) on the same lab, the same hosts
    and forks, ``cfg.compare_reps`` times each, alternating (A B B A ...) so a drift of the machine
    hits both alike; compared by the median client CPU per host and the requests per host."""
    assert cfg.compare is not None
    clients = {"this": Client.this(), "reference": cfg.compare}
    got: dict[str, list[dict]] = {"this": [], "reference": []}
    for k in clients:  # each client's first start (bytecode, page cache) is not measured
        scan(lab, names, cfg.forks, workdir, f"cmp-warm-{k}-{auth}", client=clients[k])
    for i in range(cfg.compare_reps):
        for k in (("this", "reference") if i % 2 == 0 else ("reference", "this")):
            r = scan(lab, names, cfg.forks, workdir, f"cmp-{k}-{auth}-{i}", client=clients[k])
            r["what"] = f"port80 scan ({k})"
            got[k].append(r)
    med = {k: statistics.median(r["client_cpu_ms_per_host"] for r in rs) for k, rs in got.items()}
    req = {k: max(r["requests_per_host"] for r in rs) for k, rs in got.items()}
    log(f"{auth}: vs reference ({cfg.compare.name}), {cfg.compare_reps} runs each: client CPU median "
        f"{med['this']:.1f} vs {med['reference']:.1f} ms/host, requests/host {req['this']} vs {req['reference']}")
    return {"reference": cfg.compare.name, "reps": cfg.compare_reps, "cpu_median_ms": med, "requests_per_host": req,
            "errors": sum(r["errors"] for rs in got.values() for r in rs),
            "cpu_ms": {k: [r["client_cpu_ms_per_host"] for r in rs] for k, rs in got.items()},
            "runs": got["this"] + got["reference"]}


def _as_exchanges(log_path: Optional[str]) -> int:
    try:
        return sum(1 for line in Path(log_path or "").read_text(errors="replace").splitlines() if " AS_REQ " in line)
    except OSError:
        return -1


def kerberos_row(cfg: Config, profiles: Path, healthy: list[str], workdir: Path) -> dict:
    """Kerberos over HTTP with message encryption, latency 0, N hosts at --forks F: the lab's own MIT KDC
    (``port80 lab serve --auth kerberos``, NTLM off), port80 with a password and no ticket (its private
    credential cache). Measures requests per host, client CPU per host, errors, and the AS exchanges the
    KDC logged for the measured scan (one ticket for the whole fleet: <= 2 with pre-authentication); the
    user's default credential cache (KRB5CCNAME, a path that does not exist) must still not exist after."""
    lab = Lab(workdir / "lab-kerberos", profiles, cfg.hosts, "kerberos", 0)
    log(f"kerberos: lab with {cfg.hosts} hosts (its own KDC), latency 0")
    user_cc = workdir / "user-ccache-never-written"
    env = {"KRB5CCNAME": f"FILE:{user_cc}"}
    with lab:
        names = lab.ready["hosts"]
        warm_up(lab, names[:len(healthy)], workdir, "kerberos", env)
        as0 = _as_exchanges(lab.ready.get("kdc_log"))
        r = scan(lab, names[:cfg.hosts], cfg.forks, workdir, f"kerberos-lat0-n{cfg.hosts}", env_extra=env)
        as_n = _as_exchanges(lab.ready.get("kdc_log")) - as0
    log(f"kerberos: latency 0: {_brief(r)}, AS exchanges {as_n}")
    return {"run": r, "as_exchanges": as_n, "default_ccache_untouched": not user_cc.exists()}


def add_kerberos(doc: dict, krb: dict) -> None:
    r = krb["run"]
    doc["requests_per_host"]["kerberos"] = r["requests_per_host"]
    doc["client_cpu_ms_per_host"]["kerberos"] = r["client_cpu_ms_per_host"]
    doc["kerberos"] = {"as_exchanges": krb["as_exchanges"], "default_ccache_untouched": krb["default_ccache_untouched"],
                       "errors": r["errors"], "hosts": r["hosts"], "forks": r["forks"]}
    t = doc["targets"]
    t.append({"target": "requests/host kerberos (Kerberos/HTTP, encrypted)", "value": f"{r['requests_per_host']} "
              f"(max {r['requests_max']})", "limit": f"<= {TARGET_REQUESTS['kerberos']}",
              "pass": r["errors"] == 0 and 0 < r["requests_max"] <= TARGET_REQUESTS["kerberos"],
              "note": "1 auth leg (AP-REQ/AP-REP) + 5 WSMan"})
    t.append({"target": "client CPU/host kerberos, latency 0", "value": f"{r['client_cpu_ms_per_host']} ms",
              "limit": f"<= {TARGET_CPU_MS:g} ms", "pass": r["errors"] == 0 and r["client_cpu_ms_per_host"] <= TARGET_CPU_MS,
              "note": "" if r["errors"] == 0 else "not a measure: hosts failed"})
    t.append({"target": f"kerberos: AS exchanges for N={r['hosts']}, forks={r['forks']}",
              "value": krb["as_exchanges"], "limit": "<= 2",
              "pass": r["errors"] == 0 and 0 < krb["as_exchanges"] <= 2,
              "note": "one ticket per run, in port80's private credential cache" +
                      ("" if krb["default_ccache_untouched"] else "; the default ccache was WRITTEN")})
    t.append({"target": "kerberos: errors", "value": r["errors"], "limit": "0", "pass": r["errors"] == 0,
              "note": "; ".join(r["error_samples"][:2])})
    doc["all_pass"] = all(x["pass"] for x in t) and krb["default_ccache_untouched"]


def warm_up(lab: Lab, names: list[str], workdir: Path, tag: str, env_extra: Optional[dict] = None) -> None:
    """One unmeasured scan of one host per bundle (the lab gives host i bundle i mod the number of
    bundles). The lab is one Python process standing in for every host, and it computes what a
    bundle's hosts answer once, then shares it (remote/lab/engine/memo.py): without this, the measured run
    would include those first computations, which hundreds of hosts then wait for, a cost of the
    emulator and not of port80 (a real host answers from its own CPU). Counters are reset after."""
    r = scan(lab, names, max(1, len(names)), workdir, f"warmup-{tag}", env_extra=env_extra)
    if r["errors"]:
        log(f"warm-up {tag}: {r['errors']} error(s): {r['error_samples'][:3]}")


def _brief(r: dict) -> str:
    return (f"wall {r['wall_s']} s, {r['requests_per_host']} req/host, cpu {r['client_cpu_ms_per_host']} ms/host, "
            f"(sys {r.get('client_sys_ms_per_host')}), rss {r['peak_rss_mb']} MB, lab cpu {r.get('lab_cpu_ms_per_host')} ms/host "
            f"(sys {r.get('lab_sys_ms_per_host')}), "
            f"lab TLS wait max {r.get('lab_tls_wait_ms_max')} ms, errors {r['errors']}")  # noqa: E501


def summarize(cfg: Config, per_auth: dict, big: Optional[dict], ss: dict, runs: list[dict]) -> dict:
    lat_s = cfg.latency_ms / 1000.0
    doc: dict[str, Any] = {
        "pinned": {k: sorted(v) if v else None for k, v in PIN.items()},
        "hosts": cfg.hosts, "forks": cfg.forks, "auth": cfg.auths, "latency_ms": cfg.latency_ms,
        "big_hosts": cfg.big_hosts, "baseline_hosts": cfg.baseline_hosts, "quick": cfg.quick,
        "wall_s": {}, "requests_per_host": {}, "client_cpu_ms_per_host": {}, "peak_rss_mb": {}, "ratios": {},
        "baseline": {}, "errors": sum(r["errors"] for r in runs),
    }
    targets: list[dict] = []

    def target(name: str, value: Any, limit: str, ok: bool, note: str = "") -> None:
        targets.append({"target": name, "value": value, "limit": limit, "pass": bool(ok), "note": note})

    for auth, res in per_auth.items():
        cpu, ov, nv, f1 = res["cpu"], res["overlap"], res["naive"], res["forks1"]
        rph = max(r["requests_per_host"] for r in (cpu, ov))
        rmax = max(r["requests_max"] for r in (cpu, ov, f1))
        doc["wall_s"][auth] = ov["wall_s"]
        doc["requests_per_host"][auth] = rph
        doc["client_cpu_ms_per_host"][auth] = cpu["client_cpu_ms_per_host"]
        doc["peak_rss_mb"][auth] = cpu["peak_rss_mb"]
        naive_fleet_s = nv["s_per_host"] * cfg.hosts
        forks1_fleet_s = f1["wall_s"] / f1["hosts"] * cfg.hosts
        doc["baseline"][auth] = {
            "naive_requests_per_host": nv["requests_per_host"], "naive_s_per_host": nv["s_per_host"],
            "naive_fleet_s_scaled": round(naive_fleet_s, 1), "forks1_requests_per_host": f1["requests_per_host"],
            "forks1_s_per_host": round(f1["wall_s"] / f1["hosts"], 3), "forks1_fleet_s_scaled": round(forks1_fleet_s, 1),
            "port80_s_per_host": round(ov["wall_s"] / ov["hosts"], 4), "measured_on_hosts": nv["hosts"],
        }
        fewer = nv["requests_per_host"] / rph if rph else 0.0
        ideal = rph * lat_s
        doc["ratios"][auth] = {
            "fewer_requests_vs_baseline1": round(fewer, 2),
            "faster_vs_baseline1": round(naive_fleet_s / ov["wall_s"], 1) if ov["wall_s"] else None,
            "faster_vs_forks1": round(forks1_fleet_s / ov["wall_s"], 1) if ov["wall_s"] else None,
            "wall_over_ideal": round(ov["wall_s"] / ideal, 3) if ideal else None,
        }
        target(f"requests/host {auth} ({'Basic/HTTPS' if auth == 'basic' else 'NTLM/HTTP'})",
               f"{rph} (max {rmax})", f"<= {TARGET_REQUESTS[auth]}", rmax <= TARGET_REQUESTS[auth])
        if ideal:
            lab_s = ov["lab_cpu_ms_per_host"] * ov["hosts"] / 1000
            note = (f"lab CPU {lab_s:.1f} s, client CPU {ov['client_cpu_s']:.1f} s on "
                    f"{len(os.sched_getaffinity(0))} cores")
            sm = res.get("overlap_small")
            if sm:
                note += (f"; N={sm['hosts']}: {sm['wall_s']} s = {sm['wall_s'] / ideal:.2f} x ideal "
                         f"(lab CPU {sm['lab_cpu_ms_per_host'] * sm['hosts'] / 1000:.1f} s)")
            target(f"overlap {auth}: N={ov['hosts']}, forks={ov['forks']}, {cfg.latency_ms:g} ms",
                   f"{ov['wall_s']} s", f"<= {TARGET_OVERLAP} x {rph} x {lat_s:g} s = {TARGET_OVERLAP * ideal:.2f} s",
                   ov["wall_s"] <= TARGET_OVERLAP * ideal, note)
        target(f"client CPU/host {auth}, latency 0", f"{cpu['client_cpu_ms_per_host']} ms", f"<= {TARGET_CPU_MS:g} ms",
               cpu["client_cpu_ms_per_host"] <= TARGET_CPU_MS)
        cmp = res.get("compare")
        if cmp:
            med, req = cmp["cpu_median_ms"], cmp["requests_per_host"]
            doc.setdefault("compare", {})[auth] = {k: v for k, v in cmp.items() if k != "runs"}
            target(f"vs reference client {auth}: requests/host", f"{req['this']} vs {req['reference']}",
                   "<= the reference's", cmp["errors"] == 0 and req["this"] <= req["reference"],
                   f"same lab; {cmp['reference']}")
            target(f"vs reference client {auth}: client CPU/host (median of {cmp['reps']})",
                   f"{med['this']:.1f} vs {med['reference']:.1f} ms", "<= the reference's",
                   cmp["errors"] == 0 and med["this"] <= med["reference"],
                   "runs: " + ", ".join(f"{k} {v}" for k, v in cmp["cpu_ms"].items()))
        target(f"vs baseline 1 {auth}: requests/host", f"{nv['requests_per_host']} vs {rph} = {fewer:.1f}x fewer",
               f">= {TARGET_FEWER_REQUESTS:g}x", fewer >= TARGET_FEWER_REQUESTS,
               f"time/host {nv['s_per_host']} s vs {doc['baseline'][auth]['port80_s_per_host']} s "
               f"({nv['hosts']} host(s), scaled)")
    first = cfg.auths[0]
    if big is not None:
        ref = per_auth[first]["overlap"]  # N hosts on the same lab as the big run (same latency)
        small_rss = ref["peak_rss_mb"]
        growth = big["peak_rss_mb"] / small_rss if small_rss else 0
        doc["peak_rss_mb"][f"{first}_n{cfg.hosts}_lat{cfg.latency_ms:g}"] = small_rss
        doc["peak_rss_mb"][f"{first}_n{cfg.big_hosts}_lat{cfg.latency_ms:g}"] = big["peak_rss_mb"]
        doc["ratios"]["rss_growth"] = round(growth, 3)
        lat0 = per_auth[first]["cpu"]["peak_rss_mb"]
        target(f"memory: peak RSS N={cfg.big_hosts}, forks={cfg.forks} ({first}, {cfg.latency_ms:g} ms)",
               f"{big['peak_rss_mb']} MB", f"<= {TARGET_RSS_MB:g} MB", big["peak_rss_mb"] <= TARGET_RSS_MB)
        target(f"memory: N={cfg.big_hosts} vs N={cfg.hosts} ({cfg.latency_ms:g} ms)",
               f"{growth:.2f}x ({big['peak_rss_mb']} / {small_rss} MB)", f"<= {TARGET_RSS_GROWTH}x",
               growth <= TARGET_RSS_GROWTH,
               f"N={cfg.hosts} at latency 0 peaks at {lat0} MB: it ends before {cfg.forks} hosts are in flight")
    target("errors in every run", doc["errors"], "0", doc["errors"] == 0)
    target(f"servicestate {ss['mb']} MB ({ss['sites']} sites): parse + analyse", f"{ss['s']} s",
           f"< {TARGET_SS_S:g} s", ss["s"] < TARGET_SS_S)
    target(f"servicestate 10x ({ss['big_mb']} MB)", f"{ss['scaling']}x the time", f"<= {TARGET_SS_SCALING:g}x",
           ss["scaling"] <= TARGET_SS_SCALING)
    doc["ratios"]["servicestate_scaling"] = ss["scaling"]
    doc["servicestate"] = ss
    doc["runs"] = runs
    doc["notes"] = list(cfg.notes)
    doc["targets"] = targets
    doc["all_pass"] = all(t["pass"] for t in targets)
    return doc


def render(doc: dict) -> str:
    from tabulate import tabulate

    rows = []
    for r in doc["runs"]:
        rows.append([r["tag"], r["what"], r["auth"], r["hosts"], r["forks"], f"{r['latency_ms']:g}", r["wall_s"],
                     r["requests_per_host"], r["client_cpu_ms_per_host"], r["peak_rss_mb"],
                     r.get("lab_cpu_ms_per_host", ""), r["errors"]])
    out = [tabulate(rows, headers=["run", "what", "auth", "hosts", "forks", "latency ms", "wall s", "req/host",
                                   "client cpu ms/host", "peak rss MB", "lab cpu ms/host", "errors"])]
    out.append("")
    brows = []
    for auth, b in doc["baseline"].items():
        brows.append([auth, b["naive_requests_per_host"], doc["requests_per_host"][auth],
                      f"{doc['ratios'][auth]['fewer_requests_vs_baseline1']}x", b["naive_s_per_host"],
                      b["forks1_s_per_host"], b["port80_s_per_host"], b["naive_fleet_s_scaled"], b["forks1_fleet_s_scaled"],
                      doc["wall_s"][auth]])
    out.append(tabulate(brows, headers=["auth", "baseline1 req/host", "port80 req/host", "fewer", "baseline1 s/host",
                                        "forks=1 s/host", "port80 s/host", f"baseline1 N={doc['hosts']} s (scaled)",
                                        f"forks=1 N={doc['hosts']} s (scaled)", f"port80 N={doc['hosts']} s"]))
    ss = doc["servicestate"]
    out.append("")
    out.append(f"servicestate: {ss['mb']} MB ({ss['sites']} sites) {ss['s']} s; {ss['big_mb']} MB ({ss['big_sites']} "
               f"sites) {ss['big_s']} s = {ss['scaling']}x the time for ~{ss['factor']}x the input")
    out.append("")
    out.append(tabulate([["PASS" if t["pass"] else "FAIL", t["target"], t["value"], t["limit"], t["note"]]
                         for t in doc["targets"]], headers=["", "target", "measured", "limit", "note"]))
    for n in doc.get("notes", []):
        out.append(f"note: {n}")
    prof = doc.get("profile") or {}
    for auth, s in prof.items():
        if s:
            out.append("")
            out.append(f"profile of port80 scan ({auth}, latency 0; py-spy, {s['samples']} on-CPU samples; {s['file']}):")
            out.append("  by area:   " + ", ".join(f"{k} {v}%" for k, v in s["areas"]))
            out.append("  self time: " + ", ".join(f"{k} {v}%" for k, v in s["self"][:8]))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# --scale: 10,000 hosts, 1,000 in flight (issue 15)

# Targets of the --scale rows. Basic/HTTPS is the issue's bar; NTLM/HTTP costs one request and an
# NTLM exchange more per host, so its wall and CPU targets are 1.2x Basic's (its request ratio, 6/5).
# With the faithful lab (pool open in two Receives, as real Windows answers: one request more per
# host, 6 Basic / 7 NTLM) the ideal wall grows from 50/60 s to 60/70 s; the targets stay as they are.
SCALE_PARAMS = {"hosts": 10000, "forks": 1000, "latency_ms": 1000}
SCALE_TARGETS = {  # auth -> (wall s, client CPU ms/host, peak RSS MB)
    "basic": (150.0, 15.0, 500.0),
    "ntlm": (180.0, 18.0, 500.0),
}


def run_scale(cfg: Config, workdir: Path) -> dict:
    """One lab of ``cfg.hosts`` hosts per auth mode (in its own process), one warm-up, one measured
    ``port80 scan --forks cfg.forks`` of every host at ``cfg.latency_ms`` per request."""
    raise_nofile()
    precompile()
    t_start = time.perf_counter()
    profiles = workdir / "profiles"
    profiles.mkdir()
    healthy = healthy_profiles(profiles)
    runs: list[dict] = []
    labs: dict[str, dict] = {}
    for auth in cfg.auths:
        lab = Lab(workdir / f"lab-{auth}-scale", profiles, cfg.hosts, auth, cfg.latency_ms)
        log(f"{auth}: lab with {cfg.hosts} hosts, latency {cfg.latency_ms:g} ms")
        with lab:
            lab_rss_up = _vm_rss_kb(lab.ready["pid"]) / 1024.0
            log(f"{auth}: lab up in {lab.started_s:.1f} s, {lab_rss_up:.0f} MB (nofile {lab.ready.get('nofile')})")
            names = lab.ready["hosts"]
            warm_up(lab, names[:len(healthy)], workdir, f"{auth}-scale")
            r = scan(lab, names[:cfg.hosts], cfg.forks, workdir, f"{auth}-scale-lat{cfg.latency_ms:g}-n{cfg.hosts}",
                     timeout=3600.0)
            log(f"{auth}: scale: {_brief(r)}")
            runs.append(r)
            labs[auth] = {"started_s": round(lab.started_s, 1), "rss_up_mb": round(lab_rss_up, 1),
                          "peak_rss_mb": round(_vm_hwm_kb(lab.ready["pid"]) / 1024.0, 1)}
            log(f"{auth}: lab peak RSS {labs[auth]['peak_rss_mb']} MB")
    targets: list[dict] = []
    for r in runs:
        wall_t, cpu_t, rss_t = SCALE_TARGETS[r["auth"]]
        ideal = r["requests_per_host"] * cfg.latency_ms / 1000.0 * cfg.hosts / max(1, cfg.forks)
        name = f"{r['auth']} N={r['hosts']}, forks={r['forks']}, {cfg.latency_ms:g} ms"
        targets.append({"target": f"scale wall {name}", "value": f"{r['wall_s']} s", "limit": f"<= {wall_t:g} s",
                        "pass": r["wall_s"] <= wall_t, "note": f"ideal {ideal:.0f} s ({r['requests_per_host']} req/host); "
                        f"lab CPU {r['lab_cpu_ms_per_host']} ms/host"})
        targets.append({"target": f"scale client CPU/host {name}", "value": f"{r['client_cpu_ms_per_host']} ms",
                        "limit": f"<= {cpu_t:g} ms", "pass": r["client_cpu_ms_per_host"] <= cpu_t,
                        "note": f"sys {r['client_sys_ms_per_host']} ms"})
        targets.append({"target": f"scale peak RSS {name}", "value": f"{r['peak_rss_mb']} MB", "limit": f"<= {rss_t:g} MB",
                        "pass": r["peak_rss_mb"] <= rss_t, "note": ""})
        targets.append({"target": f"scale errors {name}", "value": r["errors"], "limit": "0", "pass": r["errors"] == 0,
                        "note": "; ".join(r["error_samples"][:2])})
    off = [f"{k}={getattr(cfg, k)}" for k, v in SCALE_PARAMS.items() if getattr(cfg, k) != v]
    return {"mode": "scale", "hosts": cfg.hosts, "forks": cfg.forks, "auth": cfg.auths, "latency_ms": cfg.latency_ms,
            "pinned": {k: sorted(v) if v else None for k, v in PIN.items()}, "labs": labs, "runs": runs,
            "targets": targets, "all_pass": all(t["pass"] for t in targets),
            "notes": (["not the issue's parameters: " + ", ".join(off)] if off else []),
            "bench_s": round(time.perf_counter() - t_start, 1)}


def render_scale(doc: dict) -> str:
    from tabulate import tabulate

    rows = [[r["tag"], r["auth"], r["hosts"], r["forks"], f"{r['latency_ms']:g}", r["wall_s"], r["requests_per_host"],
             r["client_cpu_ms_per_host"], r["client_sys_ms_per_host"], r["peak_rss_mb"], r.get("lab_cpu_ms_per_host", ""),
             r["errors"]] for r in doc["runs"]]
    out = [tabulate(rows, headers=["run", "auth", "hosts", "forks", "latency ms", "wall s", "req/host",
                                   "client cpu ms/host", "of it sys", "peak rss MB", "lab cpu ms/host", "errors"]), ""]
    out.append(tabulate([["PASS" if t["pass"] else "FAIL", t["target"], t["value"], t["limit"], t["note"]]
                         for t in doc["targets"]], headers=["", "target", "measured", "limit", "note"]))
    out += [f"lab {a}: {v['started_s']} s to start, {v.get('rss_up_mb')} MB when up, peak {v.get('peak_rss_mb')} MB"
            for a, v in doc.get("labs", {}).items()]
    out += [f"note: {n}" for n in doc.get("notes", [])]
    return "\n".join(out)


def parse_args(argv: Optional[list[str]]) -> tuple[argparse.Namespace, Config]:
    ap = argparse.ArgumentParser(description="Fleet-scan benchmark of port80 against the lab (loopback only).")
    ap.add_argument("--json", action="store_true", help="print the JSON line last on stdout (the table goes first)")
    ap.add_argument("--hosts", type=int, default=None, help="hosts of the CPU and overlap runs (default 200)")
    ap.add_argument("--forks", type=int, default=None, help="port80 --forks (default 200)")
    ap.add_argument("--auth", choices=["basic", "ntlm", "both"], default="both",
                    help="basic = Basic over HTTPS, ntlm = NTLM over HTTP with message encryption")
    ap.add_argument("--latency-ms", type=float, default=None, help="delay the lab adds to every HTTP request "
                    "in the overlap and baseline runs (default 1000)")
    ap.add_argument("--big-hosts", type=int, default=None, help="hosts of the memory run (default 2000; 0 = skip)")
    ap.add_argument("--baseline-hosts", type=int, default=None,
                    help="hosts the baselines are measured on, then scaled (default 2)")
    ap.add_argument("--servicestate-mb", type=float, default=None, help="size of the big servicestate (default 5)")
    ap.add_argument("--quick", action="store_true", help="a ~1-minute smoke run with small numbers")
    ap.add_argument("--scale", action="store_true", help="the 10,000-host rows instead: --hosts 10000 --forks 1000 "
                    "--latency-ms 1000 by default, Basic/HTTPS and NTLM/HTTP (about 10 minutes)")
    ap.add_argument("--profile", type=Path, default=None, help="also profile a latency-0 scan per auth mode with "
                    "py-spy; the collapsed stacks and a summary go to this folder")
    ap.add_argument("--no-kerberos", action="store_true", help="skip the Kerberos row (it needs the OS's MIT KDC: "
                    "krb5-kdc, krb5-admin-server)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the lab and the client to separate CPUs")
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--tmp", type=Path, default=None, help="where the temporary work folder goes (default: /dev/shm "
                    "when it is a tmpfs with room, else the system's temporary folder); see fast_tmp()")
    ap.add_argument("--compare-client", type=Path, default=None, metavar="PORT80",
                    help="a reference port80 executable (e.g. an older commit's install): both clients scan the "
                    "same lab at latency 0, alternately, --compare-reps times each; targets: requests and median "
                    "client CPU per host no worse than the reference's")
    ap.add_argument("--compare-reps", type=int, default=5, help="runs per client with --compare-client (default 5)")
    ap.add_argument("--servicestate-only", type=float, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    q = a.quick
    d = lambda v, full, quick: v if v is not None else (quick if q else full)  # noqa: E731
    if a.scale:
        cfg = Config(hosts=a.hosts or SCALE_PARAMS["hosts"], forks=a.forks or SCALE_PARAMS["forks"],
                     auths=["basic", "ntlm"] if a.auth == "both" else [a.auth],
                     latency_ms=SCALE_PARAMS["latency_ms"] if a.latency_ms is None else a.latency_ms,
                     big_hosts=0, baseline_hosts=1, servicestate_mb=0.0, quick=False)
        return a, cfg
    cfg = Config(hosts=d(a.hosts, 200, 20), forks=d(a.forks, 200, 20),
                 auths=["basic", "ntlm"] if a.auth == "both" else [a.auth], latency_ms=d(a.latency_ms, 1000.0, 300.0),
                 big_hosts=d(a.big_hosts, 2000, 100), baseline_hosts=d(a.baseline_hosts, 2, 1),
                 servicestate_mb=d(a.servicestate_mb, 5.0, 0.5), profile=a.profile, quick=q,
                 kerberos=not a.no_kerberos, compare_reps=max(1, a.compare_reps))
    if a.compare_client is not None:
        cfg.compare = Client.reference(a.compare_client)
    cfg.baseline_hosts = max(1, min(cfg.baseline_hosts, cfg.hosts))
    cfg.forks = max(1, cfg.forks)
    if cfg.big_hosts and cfg.big_hosts < cfg.hosts:
        cfg.big_hosts = cfg.hosts
    off = [f"{k}={getattr(cfg, k)}" for k, v in ISSUE_PARAMS.items() if getattr(cfg, k) != v]
    if off:
        cfg.notes.append("not the issue's parameters: " + ", ".join(off))
    return a, cfg


def machine_speed(iterations: int = 5_000_000) -> dict:
    """How fast this machine runs plain Python (the best of three timings of a fixed loop, pinned like
    the client), so CPU per host measured on two machines can be compared: the same code (commit 94bd348)
    measured 12.0 ms per host on the machine of the README's first table and 31 ms on a slower one."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    code = (f"import time\nbest = 1e9\nfor _ in range(3):\n    t = time.process_time()\n    s = 0\n"
            f"    for i in range({iterations}):\n        s += i\n    best = min(best, time.process_time() - t)\n"
            f"print(best)")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=300, preexec_fn=_pin("client"))
    try:
        loop_s = round(float(out.stdout.strip()), 3)
    except ValueError:
        loop_s = None
    return {"cpu": cpu, "cpus": os.cpu_count(), "loop_iterations": iterations, "loop_s": loop_s}


def fast_tmp(hosts: int) -> Optional[Path]:
    """Where the work folder goes: /dev/shm when it is a writable tmpfs with room for the run's evidence
    (about 150 kB per host, plus 300 MB), else None (the system's temporary folder).

    Why not the disk: every scan writes 14 files per host, and the benchmark deletes each run's
    evidence before the next. On ext4, creating files soon after many were deleted makes the inode
    allocator skip the recently freed inodes one by one (``recently_deleted``, seen with ``perf``): on
    the machine of the README's session-5 figures that cost ~10 ms of system CPU per host, more than
    a third of what port80 itself spends, and it varies with what ran on the disk minutes before.
    The benchmark measures port80; ``--tmp DIR`` puts the work folder on a disk to measure that too."""
    shm = Path("/dev/shm")
    try:
        if not (shm.is_dir() and os.access(shm, os.W_OK)):
            return None
        with open("/proc/mounts", encoding="ascii", errors="replace") as fh:
            if not any(ln.split()[1:3] == ["/dev/shm", "tmpfs"] for ln in fh if len(ln.split()) > 2):
                return None
        st = os.statvfs(shm)
    except OSError:
        return None
    return shm if st.f_bavail * st.f_frsize >= hosts * 150_000 + 300_000_000 else None


def _fs_type(path: Path) -> str:
    """The file system type of ``path`` (the longest mount point above it in /proc/mounts)."""
    best, fs = "", "unknown"
    try:
        real = str(path.resolve())
        with open("/proc/mounts", encoding="ascii", errors="replace") as fh:
            for ln in fh:
                f = ln.split()
                if len(f) > 2 and (real == f[1] or real.startswith(f[1].rstrip("/") + "/")) and len(f[1]) >= len(best):
                    best, fs = f[1], f[2]
    except OSError:
        pass
    return fs


def main(argv: Optional[list[str]] = None) -> int:
    try:
        args, cfg = parse_args(argv)
    except RuntimeError as e:
        log(f"error: {e}")
        return 2
    set_pinning(not args.no_pin)
    if args.servicestate_only is not None:  # the child of bench_servicestate_child
        print(json.dumps(bench_servicestate(args.servicestate_only)))
        return 0
    tmp = None
    if args.keep:
        workdir = args.keep
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
    else:
        parent = args.tmp if args.tmp is not None else fast_tmp(max(cfg.hosts, cfg.big_hosts))
        tmp = tempfile.mkdtemp(prefix="port80-bench-", dir=str(parent) if parent else None)
        workdir = Path(tmp)
    work_fs = _fs_type(workdir)
    log(f"work folder {workdir} ({work_fs}): evidence is written there")
    speed = machine_speed()
    log(f"machine: {speed['cpu']}, {speed['cpus']} CPU(s); a {speed['loop_iterations']:,}-iteration Python loop "
        f"takes {speed['loop_s']} s (CPU figures scale with it: compare runs on one machine)")
    try:
        doc = run_scale(cfg, workdir) if args.scale else run(cfg, workdir)
        doc["machine"] = speed
        doc["work_dir_fs"] = work_fs
    except (RuntimeError, OSError, KeyError, ValueError) as e:
        log(f"error: {e}")
        return 2
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(render_scale(doc) if args.scale else render(doc), flush=True)
    line = json.dumps(doc, separators=(",", ":"), default=str)
    if args.json:
        print(line)
    else:
        print("JSON: " + line)
    return 0 if doc["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
