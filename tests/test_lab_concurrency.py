"""200 concurrent plain pypsrp clients (threads) against 200 lab hosts: zero errors."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from remote.lab.fixture import ScriptedHost, lab_fleet

N = 200
NETSTAT = "".join(f"  TCP    0.0.0.0:{p:<5}          0.0.0.0:0              LISTENING       {p * 7}\r\n"
                  for p in range(80, 140))


def _bundles(tmp: Path, k: int = 5) -> Path:
    root = tmp / "b"
    for i in range(k):
        d = root / f"node-{i:02d}"
        d.mkdir(parents=True)
        (d / "host.json").write_text(json.dumps({"host": f"node-{i:02d}"}), encoding="utf-8")
    return root


def _factory(path: Path, name):
    name = name or path.name
    return ScriptedHost(name, {"netstat.exe -ano | Out-String": f"{name}\r\n{NETSTAT}"})


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", [dict(auth="basic", tls=True), dict(auth="ntlm", tls=False)],
                         ids=["basic-https", "ntlm-http"])
def test_200_clients_200_hosts(tmp_path, mode):
    errors: list[tuple[str, BaseException]] = []
    results: dict[str, list] = {}
    with lab_fleet(_bundles(tmp_path), hosts=N, host_factory=_factory, **mode) as fleet:
        assert len({h.name for h in fleet.hosts}) == N  # bundles cycled under distinct names
        start = threading.Barrier(N + 1)

        def client(h):
            try:
                start.wait(30)
                kw = fleet.client_kwargs(h)
                wsman = WSMan(**kw, read_timeout=60, operation_timeout=20, reconnection_retries=0,
                              max_envelope_size=512000)
                with RunspacePool(wsman) as pool:
                    ps = PowerShell(pool)
                    ps.add_cmdlet("netstat.exe").add_argument("-ano").add_cmdlet("Out-String")
                    results[h.name] = ps.invoke()
            except BaseException as e:  # noqa: BLE001
                errors.append((h.name, e))

        threads = [threading.Thread(target=client, args=(h,), daemon=True) for h in fleet.hosts]
        for t in threads:
            t.start()
        start.wait(30)
        t0 = time.monotonic()
        for t in threads:
            t.join(100)
        elapsed = time.monotonic() - t0
        stats = fleet.stats()
    assert not errors, errors[:5]
    assert len(results) == N
    assert all(out == [f"{name}\r\n{NETSTAT}"] for name, out in results.items())
    # pool open in two Receives (real-message-flow-summary.txt); NTLM: blank POST + 2 auth legs
    per_session = 6 if mode["auth"] == "basic" else 9
    assert stats["total"]["requests"] == per_session * N and stats["total"]["actions"]["Create"] == N
    assert all(s["requests"] == per_session for s in stats["hosts"].values())
    print(f"\n{N} hosts / {N} client threads ({mode}): {elapsed:.1f} s, {N / elapsed:.0f} sessions/s")


@pytest.mark.timeout(60)
def test_many_listeners_start_and_stop_fast(tmp_path):
    """600 listeners (one accept thread for all): start and stop in well under a few seconds."""
    t0 = time.monotonic()
    with lab_fleet(_bundles(tmp_path), hosts=600, host_factory=_factory, tls=False, auth="ntlm") as fleet:
        started = time.monotonic() - t0
        kw = fleet.client_kwargs(fleet.hosts[-1])
        with RunspacePool(WSMan(**kw, read_timeout=10, operation_timeout=5)) as pool:
            ps = PowerShell(pool)
            ps.add_script("netstat.exe -ano | Out-String")
            assert ps.invoke()[0].startswith(fleet.hosts[-1].name)
        t1 = time.monotonic()
    assert started < 10 and time.monotonic() - t1 < 5
