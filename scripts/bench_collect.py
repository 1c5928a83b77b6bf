"""Client CPU of collecting one host (``remote.remoting.collect.collect``, what ``port80 scan`` calls per
host), serially, in this process, against the lab served in another process (scripts/bench_lab.py).

    python scripts/bench_collect.py [--auth basic|ntlm|kerberos] [--hosts 50] [--reps 5]
                                    [--lab-cpu 0] [--cpu 1] [--profile FILE.prof] [--state-dir DIR]

Starts the lab on the demo fleet's healthy bundles (pinned to CPU ``--lab-cpu`` with taskset when available), waits for it, then collects
every lab host once per repetition (one warm-up repetition first, not counted), timing
``time.process_time()`` of this process only (pinned to ``--cpu``): the lab's CPU is not in it. The
garbage collector's gen-0 threshold is the one ``port80 scan`` runs with (remote/runner/fleet.py). For
Kerberos every repetition starts from a new private credential cache, as a scan does: its AS exchange
and one TGS exchange per host are in the figure. Prints
ms of client CPU per host for each repetition, their median and minimum (on a shared machine the
minimum is the steadier figure: other load only adds), as one JSON line at the end.
Basic runs over HTTPS, NTLM and Kerberos over HTTP with message encryption (the lab's defaults), as
the benchmark rows of scripts/bench_fleet.py. ``--profile`` writes a cProfile of the measured
repetitions (timer: ``time.process_time``). The lab's state (and its KDC for Kerberos) goes to a
temporary folder on /dev/shm when there is one (file creation on ext4 after deletions is slow here).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _start_lab(args: argparse.Namespace, state: Path) -> subprocess.Popen:
    sys.path.insert(0, str(HERE))
    from bench_fleet import healthy_profiles  # the demo fleet's bundles without faults

    profiles = state / "profiles"
    profiles.mkdir()
    healthy_profiles(profiles)
    cmd = [sys.executable, str(HERE / "bench_lab.py"), "--state-dir", str(state), "--hosts", str(args.hosts),
           "--profiles", str(profiles),
           "--auth", args.auth, "--base-address", args.base_address]
    if args.lab_cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(args.lab_cpu), *cmd]
    lab = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(state / "lab.log", "w"))
    ready = state / "ready.json"
    deadline = time.monotonic() + 180
    while not ready.exists():
        if lab.poll() is not None or time.monotonic() > deadline:
            lab.kill()
            sys.exit("bench_collect: the lab did not start:\n" + (state / "lab.log").read_text()[-2000:])
        time.sleep(0.2)
    return lab


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--auth", default="basic", choices=["basic", "ntlm", "kerberos"])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lab-cpu", type=int, default=0)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--base-address", default="127.93.0.1")
    ap.add_argument("--profile", type=Path, default=None)
    ap.add_argument("--state-dir", type=Path, default=None)
    args = ap.parse_args(argv)

    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {args.cpu})
        except OSError:
            pass
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmp = Path(tempfile.mkdtemp(prefix="port80-bench-collect-", dir=shm))
    state = args.state_dir or tmp
    lab = _start_lab(args, state)
    try:
        info = json.loads((state / "ready.json").read_text())
        if info.get("krb5_conf"):
            os.environ["KRB5_CONFIG"] = info["krb5_conf"]
            os.environ["KRB5CCNAME"] = "FILE:" + str(tmp / "user-ccache")  # never the user's own cache

        from remote.inventory.ansible_ini import load_inventory
        from remote.inventory.targets import to_spec
        from remote.remoting.collect import collect

        inv = load_inventory(info["inventory"])
        specs = [to_spec(h) for h in inv.hosts()]
        password = info["password"]

        from remote.remoting import kerberos

        def one_rep() -> float:
            if info.get("krb5_conf"):
                kerberos.forget()  # as a scan starts: one AS exchange, then one TGS exchange per host
            t0 = time.process_time()
            for spec in specs:
                got = collect(spec, password, on_evidence=lambda c: None)
                if got.meta.get("errors"):
                    sys.exit(f"bench_collect: {spec.name}: {got.meta['errors']}")
            return (time.process_time() - t0) * 1000 / len(specs)

        # the garbage collector as the fleet runner sets it while a scan runs (remote/runner/fleet.py)
        from remote.runner.fleet import GC_GEN0

        gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])
        one_rep()  # warm-up: imports, memoized messages, the Kerberos TGT
        prof = None
        if args.profile:
            import cProfile

            prof = cProfile.Profile(time.process_time)
            prof.enable()
        reps = [one_rep() for _ in range(args.reps)]
        if prof is not None:
            prof.disable()
            prof.dump_stats(str(args.profile))
        for i, ms in enumerate(reps):
            print(f"rep {i}: {ms:.2f} ms/host", file=sys.stderr)
        print(json.dumps({"auth": args.auth, "hosts": len(specs), "reps": [round(r, 2) for r in reps],
                          "median_ms_per_host": round(statistics.median(reps), 2),
                          "min_ms_per_host": round(min(reps), 2)}))
    finally:
        lab.send_signal(signal.SIGTERM)
        try:
            lab.wait(30)
        except subprocess.TimeoutExpired:
            lab.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
