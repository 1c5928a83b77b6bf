"""Client CPU of *finishing* a host in ``port80 scan``: parse its evidence, analyse, write its bundle, and
its results.jsonl row. In-process, no lab, no network: what ``Scan._finish`` + ``Scan.record`` cost.

    python scripts/bench_finish.py [--reps 30] [--runs 5] [--port 80] [--work-dir /dev/shm/...] [--json]

Input: the healthy hosts of the demo fleet (``remote/lab/fleet/profiles``, every bundle whose host.json has no
``lab.fault``), with the texts a scan through the lab receives for them: the bundle's files, and for a
collected kind the bundle lacks, what the lab answers for it (``sslcert``/``excludedportrange`` empty
listings, empty IIS tables).

Stages (ms of CPU, ``time.process_time()``, per host, averaged over the hosts): ``parse:<kind>`` for every
evidence kind (``KINDS[kind].analyse``: its parser, or its cheaper checker), ``analyse``
(``analyze_evidence`` on the parsed evidence), ``record`` (the results.jsonl line: ``host_to_dict`` +
``json.dumps`` + the sanitizers ``Scan.record`` applies),
``write`` (``write_bundle`` into a new folder under ``--work-dir``; use tmpfs: on ext4 file creation
after deletions costs ~10 ms/host of system CPU), and ``finish`` = the whole ``write_bundle`` →
``analyze_bundle`` → record path as ``Scan`` runs it. Each stage runs ``--reps`` times per host per run;
``--runs`` runs, the median printed (and the spread: min–max).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from remote.analysis.verdicts import analyze_bundle, analyze_evidence, parse_evidence  # noqa: E402
from remote.evidence.bundle import Bundle, read_bundle, write_bundle  # noqa: E402
from remote.evidence.kinds import COLLECTED, COMMANDS, FILES, KINDS, PARSED  # noqa: E402
from remote.evidence.textio import valid_unicode  # noqa: E402
from remote.lab.engine.natives import SSLCERT_EMPTY, _excluded_empty  # noqa: E402
from remote.lab.fleet import demo_fleet_dir  # noqa: E402
from remote.report.render import host_to_dict  # noqa: E402
from remote.report.sanitize import json_text  # noqa: E402

# what the lab answers for a collected kind the bundle has no file for (remote/lab/engine/natives.py)
LAB_DEFAULTS = {"sslcert": SSLCERT_EMPTY, "excludedportrange": _excluded_empty("tcp"),
                "excludedportrange6": _excluded_empty("tcp"), "iis_sites": "", "iis_apppools": ""}


def healthy_hosts() -> list[Bundle]:
    hosts = []
    for d in sorted(p for p in demo_fleet_dir().iterdir() if p.is_dir() and not p.name.startswith("_")):
        b = read_bundle(d)
        if (b.meta.get("lab") or {}).get("fault"):
            continue
        texts: dict[str, Optional[str]] = {}
        for kind in COLLECTED:
            if kind not in FILES:
                continue
            t = b.texts.get(kind)
            texts[kind] = t if t is not None else LAB_DEFAULTS.get(kind, "")
        # host.json as a scan writes it (remote/remoting/collect.py's _meta, then Scan._finish's additions)
        meta = {"host": d.name, "address": "127.0.0.1", "collected_at": "2026-12-06T04:29:20+00:00",
                "commands": {k: COMMANDS[k] for k in texts if k in COMMANDS},
                "hostname": b.meta.get("hostname"), "os_version": b.meta.get("os_version"),
                "os_caption": b.meta.get("os_caption"), "elevated": True,
                "status": "ok", "elapsed_s": 0.962, "groups": ["lab"]}
        hosts.append(Bundle(host=d.name, texts=texts, meta=meta))
    return hosts


def record_line(report: Any) -> str:
    """What ``Scan.record`` writes (its common path: nothing to replace)."""
    line, _ = valid_unicode(json_text(json.dumps(host_to_dict(report), ensure_ascii=False)))
    return line


def timed(fn: Callable[[], Any], reps: int) -> float:
    t = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t) / reps * 1000


def one_run(hosts: list[Bundle], ports: list[int], reps: int, work: Path) -> dict[str, float]:
    acc: dict[str, float] = {}

    def add(stage: str, ms: float) -> None:
        acc[stage] = acc.get(stage, 0.0) + ms / len(hosts)

    for b in hosts:
        for kind in PARSED:
            text = b.texts.get(kind)
            if text is not None:
                parse = KINDS[kind].analyse  # what the scan runs (the checker where a kind has one)
                add(f"parse:{kind}", timed(lambda parse=parse, text=text: parse(text), reps))
        ev = parse_evidence(b.texts)
        add("analyse", timed(lambda b=b, ev=ev: analyze_evidence(b.host, ev, ports), reps))
        report = analyze_evidence(b.host, ev, ports)
        add("record", timed(lambda report=report: record_line(report), reps))
        # write / finish: a new folder each time (deleting the old ones is not timed)
        for stage in ("write", "finish"):
            spent = 0.0
            for i in range(reps):
                target = work / f"{b.host}-{stage}-{i}"
                t = time.process_time()
                written = write_bundle(target, b)
                if stage == "finish":
                    rep = analyze_bundle(written, ports)
                    rep.host = b.host
                    record_line(rep)
                spent += time.process_time() - t
            shutil.rmtree(work)
            work.mkdir()
            add(stage, spent / reps * 1000)
    acc["parse (all kinds)"] = sum(v for k, v in acc.items() if k.startswith("parse:"))
    return acc


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=30, help="repetitions of each stage per host per run")
    ap.add_argument("--runs", type=int, default=5, help="runs; the median is reported")
    ap.add_argument("--port", type=int, action="append", help="port(s) audited (default: 80)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="where bundles are written (default: a temporary folder under /dev/shm if present)")
    ap.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = ap.parse_args(argv)
    ports = args.port or [80]
    hosts = healthy_hosts()
    base = args.work_dir or (Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    work = Path(tempfile.mkdtemp(prefix="bench-finish-", dir=base))
    try:
        one_run(hosts, ports, 2, work)  # warm-up: imports, caches
        runs = [one_run(hosts, ports, args.reps, work) for _ in range(args.runs)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stages = list(runs[0])
    med = {s: statistics.median(r[s] for r in runs) for s in stages}
    if args.json:
        print(json.dumps({"hosts": len(hosts), "ports": ports, "reps": args.reps, "runs": args.runs,
                          "ms_per_host": {s: round(v, 4) for s, v in med.items()}}, indent=2))
        return 0
    print(f"{len(hosts)} healthy demo hosts, ports {ports}, {args.reps} reps x {args.runs} runs; "
          "CPU ms per host (median, min-max):")
    for s in stages:
        vals = [r[s] for r in runs]
        print(f"  {s:24s} {med[s]:8.3f}   ({min(vals):.3f}-{max(vals):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
