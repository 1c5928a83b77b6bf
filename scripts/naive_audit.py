"""Baseline 1 for scripts/bench_fleet.py: the straightforward audit script a user would write.

A serial loop over the hosts; per host, one pypsrp ``Client.execute_ps`` per query (six queries:
netstat, servicestate, urlacl, iplisten, services, processes). Each ``execute_ps`` opens its own
RunspacePool, runs one pipeline and closes the pool. Nothing is parsed or analysed: this only
fetches the raw text, so the comparison favours the baseline.

    PORT80_PASSWORD=... python scripts/naive_audit.py HOSTS.json

HOSTS.json: {"hosts": [[name, address, port], ...], "ssl": true, "auth": "basic", "user": "auditor",
"ca": "/path/ca.pem" | null}. Prints one JSON line: hosts, ok, failed, wall_s, per-host seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time

QUERIES = {
    "netstat": "netstat.exe -ano",
    "servicestate": "netsh.exe http show servicestate view=requestq",
    "urlacl": "netsh.exe http show urlacl",
    "iplisten": "netsh.exe http show iplisten",
    "services": "Get-CimInstance -ClassName Win32_Service | "
                "Select-Object -Property Name,DisplayName,State,StartMode,ProcessId | ConvertTo-Json",
    "processes": "Get-Process | Select-Object -Property Id,ProcessName,Path | ConvertTo-Json",
}


def audit_host(address: str, port: int, cfg: dict, password: str) -> dict:
    from pypsrp.client import Client

    client = Client(address, port=port, username=cfg["user"], password=password, ssl=cfg["ssl"],
                    auth=cfg["auth"], cert_validation=cfg.get("ca") or True, no_proxy=True,
                    encryption="auto" if cfg["ssl"] or cfg["auth"] != "basic" else "never",
                    connection_timeout=30, read_timeout=60)
    out = {}
    errors = []
    for kind, script in QUERIES.items():
        text, streams, had_errors = client.execute_ps(script)
        out[kind] = text
        if had_errors:
            errors.append(kind)
    return {"bytes": sum(len(t) for t in out.values()), "errors": errors, "empty": [k for k, t in out.items() if not t]}


def main(argv: list[str]) -> int:
    cfg = json.loads(open(argv[1], encoding="utf-8").read())
    password = os.environ["PORT80_PASSWORD"]
    started = time.perf_counter()
    per_host = []
    ok = failed = 0
    problems = []
    for name, address, port in cfg["hosts"]:
        t0 = time.perf_counter()
        try:
            r = audit_host(address, port, cfg, password)
            if r["errors"] or r["empty"]:
                failed += 1
                problems.append(f"{name}: errors in {r['errors']}, empty {r['empty']}")
            else:
                ok += 1
        except Exception as e:  # a baseline: count it and go on
            failed += 1
            problems.append(f"{name}: {type(e).__name__}: {e}"[:300])
        per_host.append(round(time.perf_counter() - t0, 3))
    print(json.dumps({"hosts": len(cfg["hosts"]), "ok": ok, "failed": failed,
                      "wall_s": round(time.perf_counter() - started, 3), "per_host_s": per_host,
                      "problems": problems}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
