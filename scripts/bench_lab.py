"""The lab, in its own process, for scripts/bench_fleet.py: ``port80 lab serve`` plus request counters.

    python scripts/bench_lab.py --state-dir DIR [--profiles DIR] [--hosts N] [--auth basic|ntlm|kerberos]
                                [--latency-ms N] [--base-address 127.80.0.1]

Runs the real lab (``remote.lab.cli.serve_lab``: the code behind ``port80 lab serve``) until SIGINT or
SIGTERM. When it is up it writes ``DIR/ready.json`` (inventory path, password, host count, pid). On
SIGUSR1 it writes the per-host request counters to ``DIR/stats.json`` (atomically, with a sequence
number) and resets them, so one lab serves several measured runs. On exit it writes them once more.

Why a wrapper and not ``port80 lab serve`` itself: the lab prints its counters nowhere yet; when
``port80 lab serve`` gains a ``--stats-out FILE`` option this file can shrink to that.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path


def raise_nofile() -> int:
    """Raise the open-file limit to its hard maximum (thousands of listeners and connections)."""
    from remote.runner.limits import raise_nofile as raise_to_hard

    return raise_to_hard()


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state-dir", type=Path, required=True)
    ap.add_argument("--profiles", type=Path, default=None)
    ap.add_argument("--hosts", type=int, default=None)
    ap.add_argument("--auth", default="basic", choices=["basic", "ntlm", "kerberos"])
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--base-address", default="127.80.0.1",
                    help="first host's loopback address (default: away from port80 lab serve's 127.0.1.1)")
    args = ap.parse_args(argv)

    # a background job of a non-interactive shell starts with SIGINT ignored: stop on SIGINT anyway
    signal.signal(signal.SIGINT, signal.default_int_handler)
    nofile = raise_nofile()
    if args.hosts and nofile < 2 * args.hosts + 64:
        print(f"bench_lab: open-file limit {nofile} is low for {args.hosts} hosts", file=sys.stderr)

    from remote.lab.cli import serve_lab

    state = args.state_dir
    state.mkdir(parents=True, exist_ok=True)
    stats_path = state / "stats.json"
    fleet_box: dict = {}
    seq = [0]
    lock = threading.Lock()

    def dump() -> None:
        fleet = fleet_box.get("fleet")
        if fleet is None:
            return
        with lock:
            seq[0] += 1
            doc = fleet.stats()
            doc["seq"] = seq[0]
            fleet.reset_stats()
            _write_json(stats_path, doc)

    def on_usr1(*_):
        dump()

    def on_ready(fleet) -> None:
        fleet_box["fleet"] = fleet
        signal.signal(signal.SIGUSR1, on_usr1)
        _write_json(state / "ready.json", {
            "pid": os.getpid(), "inventory": str((state / "inventory.ini").resolve()),
            "password": fleet.password, "user": fleet.user, "hosts": [h.name for h in fleet.hosts],
            "addresses": {h.name: [h.address, h.port] for h in fleet.hosts},
            "scheme": fleet.scheme, "auth": fleet.auth, "ca": str(fleet.ca_path) if fleet.ca_path else None,
            "nofile": nofile,
            # --auth kerberos: the lab's KDC (its krb5.conf for the client, its log for the AS exchanges)
            "krb5_conf": str(fleet.kdc.krb5_conf) if getattr(fleet, "kdc", None) else None,
            "kdc_log": str(fleet.kdc.log_path) if getattr(fleet, "kdc", None) else None,
        })

    try:
        code = serve_lab(profiles=args.profiles, hosts=args.hosts, auth=args.auth, latency_ms=args.latency_ms,
                         inventory_out=state / "inventory.ini", base_address=args.base_address,
                         echo=lambda s: print(s, file=sys.stderr, flush=True), on_ready=on_ready)
    except KeyboardInterrupt:
        code = 0
    dump()
    return code


if __name__ == "__main__":
    sys.exit(main())
