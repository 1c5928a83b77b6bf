"""`port80 demo`: the lab's demo fleet in-process, scanned by the real collector over real sockets.

The path is the one a user's scan takes: the lab writes an Ansible inventory, port80 reads it,
resolves connection specs (HTTPS + certificate validation against the lab's CA), scans with
pypsrp, writes the evidence bundles and reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from remote.inventory.ansible_ini import load_inventory
from remote.runner.scan import Scan, ScanOptions
from remote.inventory.targets import to_spec


def run_demo(out_dir: Path, ports: list[int], auth: str = "basic", timeout: float = 15.0, forks: int = 32,
             profiles: Optional[Path] = None, progress: bool = False):
    """Start the lab, scan it, write reports under ``out_dir``. Returns (scan, reports, inventory path)."""
    from remote.lab.fixture import lab_fleet

    out_dir = Path(out_dir)
    inv_path = out_dir / "lab-inventory.ini"
    with lab_fleet(profiles, tls=(auth == "basic"), auth=auth, inventory=inv_path) as fleet:
        hosts = load_inventory(inv_path).hosts()
        specs = [to_spec(h) for h in hosts]
        password = fleet.password
        opts = ScanOptions(ports=ports, evidence_dir=out_dir / "evidence", forks=forks, timeout=timeout,
                           progress=progress)
        scan = Scan(specs, lambda spec: password, opts, secrets=[password])
        reports = scan.run()
        state_changing = [
            (h.name, entry) for h in fleet.hosts for entry in list(getattr(h, "command_log", []) or [])
            if entry.get("changed_state")
        ]
    if state_changing:  # a scan must be read-only: this would be a bug in the collector
        raise RuntimeError(f"the scan changed state on {state_changing[0][0]}: {state_changing[0][1].get('key')}")
    scan.write_reports()
    return scan, reports, inv_path
