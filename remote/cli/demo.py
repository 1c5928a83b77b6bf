"""`port80 demo`: the lab's demo fleet in-process, scanned by the real collector over real sockets.

The path is the one a user's scan takes: the lab writes an Ansible inventory, port80 reads it,
resolves connection specs (HTTPS + certificate validation against the lab's CA), scans with
pypsrp, writes the evidence bundles and reports.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from remote.cli.app import (
    FormatOpt,
    PortOpt,
    VerboseOpt,
    app,
    check_format,
    default_evidence_dir,
    emit,
    fail,
    port_list,
    render_report,
    start_logging,
)

if TYPE_CHECKING:  # imported where used
    from remote.analysis.verdicts import HostReport
    from remote.runner.scan import Scan


def run_demo(out_dir: Path, ports: list[int], auth: str = "basic", timeout: float = 15.0, forks: int = 32,
             profiles: Optional[Path] = None, progress: bool = False) -> tuple[Scan, list[HostReport], Path]:
    """Start the lab, scan it, write reports under ``out_dir``. Returns (scan, reports, inventory path)."""
    from remote.inventory.ansible_ini import load_inventory
    from remote.inventory.targets import to_spec
    from remote.lab.fixture import lab_fleet
    from remote.runner.scan import Scan, ScanOptions

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
            (h.name, entry) for h in fleet.hosts for entry in list(h.command_log)
            if entry.get("changed_state")
        ]
    if state_changing:  # a scan must be read-only: this would be a bug in the collector
        raise RuntimeError(f"the scan changed state on {state_changing[0][0]}: {state_changing[0][1].get('key')}")
    scan.write_reports()
    return scan, reports, inv_path


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, "--out", help="Where evidence and reports go (default: ./port80-demo-<timestamp>)."),
    port: Optional[List[int]] = PortOpt,
    auth: str = typer.Option("basic", "--auth", help="basic (over HTTPS, CA-validated) | ntlm (over HTTP, encrypted)"),
    timeout: float = typer.Option(8.0, "--timeout", help="Per-host deadline in seconds (the demo has a hung host)."),
    fmt: str = FormatOpt,
    verbose: int = VerboseOpt,
) -> None:
    """Start the lab's demo fleet, scan it over real WinRM/PSRP sockets, print the fleet report."""
    ports = port_list(port)
    fmt = check_format(fmt)
    if auth not in ("basic", "ntlm"):
        raise fail("--auth: basic or ntlm")
    start_logging(verbose, [])
    out = out or default_evidence_dir("port80-demo")
    typer.echo(f"port80 demo: starting the lab's demo fleet ({auth}) and scanning it...", err=True)
    scan_, reports, inv = run_demo(out, ports, auth=auth, timeout=timeout, progress=sys.stderr.isatty())
    emit(render_report(reports, fmt, ports), None)
    typer.echo(f"\ninventory: {inv}\nevidence:  {scan_.dir}  (one folder per host; results.jsonl)\n"
               f"report:    {scan_.dir / 'report.csv'}  {scan_.dir / 'report.json'}\n"
               f"re-analyse offline: port80 analyze {scan_.dir}", err=True)
