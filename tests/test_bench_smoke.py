"""Smoke test of scripts/bench_fleet.py: the whole benchmark with tiny numbers (3 hosts, latency 0).

It checks that the pieces work together (lab in its own process, request counters, port80 scan and
the baseline as separate processes, the servicestate generator) and that the JSON line is complete
and error-free. It asserts no timing: speed is measured by the script, never by tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "scripts" / "bench_fleet.py"


def _reference_client(tmp_path: Path) -> Path:
    """A reference port80 for --compare-client: this checkout again, through a wrapper script, so the
    comparison path runs for real (the README runs it against an older commit's install)."""
    exe = tmp_path / "ref-port80"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m remote "$@"\n', encoding="utf-8")
    exe.chmod(0o755)
    return exe


def test_bench_smoke_json_line(tmp_path):
    cmd = [sys.executable, str(BENCH), "--json", "--quick", "--hosts", "3", "--forks", "3", "--latency-ms", "0",
           "--big-hosts", "4", "--baseline-hosts", "1", "--auth", "basic", "--servicestate-mb", "0.02",
           "--keep", str(tmp_path / "work"), "--compare-client", str(_reference_client(tmp_path)),
           "--compare-reps", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=str(tmp_path))
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1 = a target missed: fine at these sizes
    lines = proc.stdout.strip().splitlines()
    doc = json.loads(lines[-1])  # --json: the JSON line is the last line of stdout
    for key in ("hosts", "forks", "auth", "latency_ms", "wall_s", "requests_per_host", "client_cpu_ms_per_host",
                "peak_rss_mb", "errors", "ratios", "baseline", "runs", "servicestate", "targets", "all_pass"):
        assert key in doc, key
    assert doc["hosts"] == 3 and doc["forks"] == 3 and doc["auth"] == ["basic"]
    assert doc["errors"] == 0, [r.get("error_samples") for r in doc["runs"]]
    for r in doc["runs"]:
        assert r["errors"] == 0
        assert r["requests_per_host"] > 0  # the lab counted them
    basic = doc["requests_per_host"]["basic"]
    assert doc["baseline"]["basic"]["naive_requests_per_host"] > basic  # the serial script needs more round trips
    assert {"fewer_requests_vs_baseline1", "faster_vs_baseline1", "faster_vs_forks1"} <= set(doc["ratios"]["basic"])
    assert doc["servicestate"]["info"]["holder"] == "http.sys"
    assert all({"target", "value", "limit", "pass"} <= set(t) for t in doc["targets"])
    assert "PASS" in proc.stdout or "FAIL" in proc.stdout
    # --compare-client: both clients ran on the same lab, the same requests per host, targets reported
    cmp = doc["compare"]["basic"]
    assert cmp["reps"] == 1 and cmp["errors"] == 0
    assert cmp["requests_per_host"]["this"] == cmp["requests_per_host"]["reference"] == basic
    assert all(len(v) == 1 and v[0] > 0 for v in cmp["cpu_ms"].values())
    assert sum(1 for t in doc["targets"] if t["target"].startswith("vs reference client basic")) == 2
    assert sum(1 for r in doc["runs"] if r["what"] == "port80 scan (reference)") == 1
    # the Kerberos row (the lab's own KDC): one ticket for the run, the default ccache untouched
    assert doc["requests_per_host"]["kerberos"] > 0
    assert 1 <= doc["kerberos"]["as_exchanges"] <= 2 and doc["kerberos"]["default_ccache_untouched"]


def test_bench_compare_client_not_executable(tmp_path):
    """A --compare-client that is no program: exit 2, one line naming it, no traceback."""
    bad = tmp_path / "nope"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--compare-client", str(bad)], capture_output=True,
                          text=True, timeout=60, cwd=str(tmp_path))
    assert proc.returncode == 2
    assert f"--compare-client {bad}: not an executable file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bench_scale_smoke_json_line(tmp_path):
    """--scale with tiny numbers: the lab in its own process (its start time and memory reported), one scan,
    the lab's CPU and TLS counters in the row, 0 errors."""
    cmd = [sys.executable, str(BENCH), "--json", "--scale", "--hosts", "4", "--forks", "4", "--latency-ms", "0",
           "--auth", "basic", "--keep", str(tmp_path / "work")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=str(tmp_path))
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["mode"] == "scale" and doc["hosts"] == 4 and doc["auth"] == ["basic"]
    (r,) = doc["runs"]
    assert r["errors"] == 0 and r["requests_per_host"] > 0, r.get("error_samples")
    assert r["lab_tls_failures"] == 0 and r["lab_tls_wait_ms_max"] >= 0 and r["lab_cpu_ms_per_host"] == \
        r["lab_cpu_ms_per_host"]  # a number, not nan: psutil (the bench extra) is there
    lab = doc["labs"]["basic"]
    assert lab["started_s"] > 0 and 0 < lab["rss_up_mb"] <= lab["peak_rss_mb"]
    assert "lab basic:" in proc.stdout
