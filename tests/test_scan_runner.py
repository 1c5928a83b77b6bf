"""The fleet runner with the real pypsrp client over real loopback sockets, against endpoints that
misbehave at the TCP level (no lab needed): deadlines, classification, streaming, resume, merge."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from remote.remoting.collect import ConnectionSpec
from remote.runner.scan import Scan, ScanOptions, load_results, merge_results


class Silent:
    """Accepts TCP connections and never answers (a hung WinRM service)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                return

    def close(self):
        self.stop = True
        for c in self.conns:
            c.close()
        self.sock.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


@pytest.fixture
def silent():
    s = Silent()
    yield s
    s.close()


def spec(name, port, **kw) -> ConnectionSpec:
    return ConnectionSpec(name=name, address="127.0.0.1", port=port, scheme="http", auth="basic", user="u",
                          encryption="never", **kw)


def test_deadline_and_classes(tmp_path: Path, silent):
    targets = [spec("hung", silent.port, read_timeout=60), spec("refused", free_port())]
    opts = ScanOptions(ports=[80], evidence_dir=tmp_path, forks=4, timeout=2.0)
    t0 = time.monotonic()
    reports = {r.host: r for r in Scan(targets, lambda s: "pw-secret", opts, secrets=["pw-secret"]).run()}
    elapsed = time.monotonic() - t0
    assert reports["hung"].status == "timeout"
    assert reports["refused"].status == "unreachable"
    assert elapsed < 2.0 + 3.0  # the deadline plus a few seconds, whatever pypsrp's own timeouts say
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(l)["host"] for l in lines) == ["hung", "refused"]
    assert "pw-secret" not in (tmp_path / "results.jsonl").read_text()
    host_json = json.loads((tmp_path / "hung" / "host.json").read_text())
    assert host_json["status"] == "timeout"


def test_hung_host_never_delays_the_others(tmp_path: Path, silent):
    targets = [spec("hung", silent.port)] + [spec(f"r{i}", free_port()) for i in range(6)]
    opts = ScanOptions(ports=[80], evidence_dir=tmp_path, forks=2, timeout=3.0)
    finished = []
    scan = Scan(targets, lambda s: "x", opts)
    orig = scan.record

    def record(report, fh):
        finished.append((report.host, time.monotonic()))
        orig(report, fh)

    scan.record = record  # type: ignore[method-assign]
    t0 = time.monotonic()
    scan.run()
    times = dict(finished)
    assert all(times[f"r{i}"] - t0 < 2.5 for i in range(6))  # refused hosts end while "hung" still runs
    assert times["hung"] - t0 >= 3.0


def test_resume_skips_finished_hosts_and_merge_joins(tmp_path: Path):
    a, b = spec("a", free_port()), spec("b", free_port())
    opts = ScanOptions(ports=[80], evidence_dir=tmp_path / "s1", forks=2, timeout=5)
    Scan([a], lambda s: None, opts).run()
    opts2 = ScanOptions(ports=[80], evidence_dir=tmp_path / "s1", forks=2, timeout=5, resume=True)
    scan = Scan([a, b], lambda s: None, opts2)
    reports = scan.run()
    assert [r.host for r in reports] == ["a", "b"]
    assert [r.host for r in load_results(tmp_path / "s1" / "results.jsonl")] == ["a", "b"]  # a not re-run
    other = ScanOptions(ports=[80], evidence_dir=tmp_path / "s2", forks=1, timeout=5)
    Scan([spec("c", free_port())], lambda s: None, other).run()
    merged = merge_results([tmp_path / "s1", tmp_path / "s2" / "results.jsonl"])
    assert sorted(r.host for r in merged) == ["a", "b", "c"]


def test_torn_last_line_is_skipped(tmp_path: Path):
    f = tmp_path / "results.jsonl"
    f.write_text('{"host": "a", "status": "ok", "ports": []}\n{"host": "b", "sta')
    assert [r.host for r in load_results(f)] == ["a"]


def test_a_host_that_breaks_analysis_does_not_stop_the_fleet(tmp_path: Path, monkeypatch):
    import remote.analysis.verdicts as analysis_mod
    from remote.remoting.collect import Collected

    calls = []

    def boom(bundle, ports):
        calls.append(bundle.host)
        raise RuntimeError("parser bug")

    monkeypatch.setattr(analysis_mod, "analyze_bundle", boom)  # remote.runner.scan imports it when a host is done
    s = Scan([spec("a", free_port()), spec("b", free_port())], lambda s: None,
             ScanOptions(ports=[80], evidence_dir=tmp_path, forks=2, timeout=5))
    # feed a successful collection straight into the finishing step (the part under test)
    rep = s.finish_host(spec("ok-host", 1), Collected(texts={"netstat": "x"}, meta={}), None, 0.1)
    assert rep.status == "local" and "parser bug" in rep.error  # port80's failure, not the host's: --resume re-runs it
    assert (tmp_path / "ok-host" / "netstat.txt").read_text() == "x"  # the evidence is kept
