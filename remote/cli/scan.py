"""`port80 scan` and `port80 merge`: audit the inventory's hosts; join the results of several runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer

from remote.cli import audit as audit_cli
from remote.cli.app import (
    EXIT_LOCAL,
    FailIfHeldOpt,
    ForksOpt,
    FormatOpt,
    InventoryOpt,
    LimitOpt,
    NoVerifyOpt,
    OutputOpt,
    PasswordFileOpt,
    PortOpt,
    TimeoutOpt,
    UserOpt,
    VerboseOpt,
    app,
    check_format,
    credentials,
    default_evidence_dir,
    emit,
    fail,
    fleet_exit_code,
    host_segments,
    load_targets,
    local_exit,
    port_list,
    render_report,
    resume_command,
    run_fleet,
    start_logging,
)


@app.command()
def scan(
    inventory: Path = InventoryOpt,
    limit: Optional[str] = LimitOpt,
    port: Optional[List[int]] = PortOpt,
    user: Optional[str] = UserOpt,
    password_file: Optional[Path] = PasswordFileOpt,
    forks: int = ForksOpt,
    timeout: float = TimeoutOpt,
    evidence_dir: Optional[Path] = typer.Option(None, "--evidence-dir", help="Where bundles and results go "
                                                "(default: ./port80-scan-<timestamp>)."),
    resume: bool = typer.Option(False, "--resume", help="Skip hosts already in EVIDENCE_DIR/results.jsonl."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: scan only the K-th of N stable slices."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Run the hosts on this Dask scheduler's workers "
                                          "(tcp://HOST:8786; pip install \"port80[dask]\"; docs/scale.md)."),
    batch: int = typer.Option(0, "--batch", help="With --cluster: hosts per Dask task (default: --forks)."),
    fmt: str = FormatOpt,
    output: Optional[Path] = OutputOpt,
    fail_if_held: bool = FailIfHeldOpt,
    no_cert_validation: bool = NoVerifyOpt,
    verbose: int = VerboseOpt,
    max_output_mb: Optional[float] = typer.Option(None, "--max-output-mb", help="Per-host cap on what a host may "
                                                  "send while it is scanned, in MB (default 16); over it the host "
                                                  "is partial, with the reason."),
    db: Optional[Path] = audit_cli.DbOpt,
    no_history: bool = audit_cli.NoHistoryOpt,
    fail_on_drift: bool = audit_cli.FailOnDriftOpt,
    policy: Optional[Path] = audit_cli.PolicyOpt,
    show_all: bool = audit_cli.ShowAllOpt,
) -> None:
    """Scan the inventory's hosts over WinRM/PSRP, keep their evidence, print the fleet report."""
    ports = port_list(port)
    fmt = check_format(fmt)
    if resume and evidence_dir is None:
        raise fail("--resume needs --evidence-dir (the folder of the scan to resume)")
    hosts, specs = load_targets(inventory, limit, shard, user, no_cert_validation)
    if port:  # --port on the command line wins over the inventory's port80_ports (as Ansible's -e does)
        specs = [replace(s, ports=None) for s in specs]
    creds = credentials(hosts, user, password_file)
    start_logging(verbose, creds.secrets(), creds.users(specs))
    evidence_dir = evidence_dir or default_evidence_dir()
    audit = audit_cli.AuditRun(
        "scan", audit_cli.source_key_for_inventory(inventory, limit, shard), db=db, no_history=no_history,
        policy=policy, fail_on_drift=fail_on_drift, inventory=str(inventory.resolve()), evidence_dir=str(evidence_dir),
        options={"ports": ports, "limit": limit, "shard": shard, "forks": forks, "timeout": timeout, "resume": resume})
    from remote.runner import signals

    with signals.stop_signals():  # SIGTERM/SIGHUP end a scan as Ctrl-C does: reports for what finished
        scan_, reports = run_fleet(specs, creds, ports, evidence_dir, forks, timeout, resume, cluster=cluster,
                                   segments=host_segments(hosts) if cluster else None, batch=batch,
                                   max_output_mb=max_output_mb)
        try:
            paths = scan_.write_reports()
        except OSError as e:
            audit.finish(reports, interrupted=True)
            raise fail(f"{evidence_dir}: cannot write the reports ({e.strerror or e}); results.jsonl has every "
                       f"finished host: {resume_command(evidence_dir)}", local_exit(e))
    audit.finish(reports, interrupted=scan_.interrupted or scan_.disk_full is not None)
    emit(audit.render(reports, fmt, scan_.audited_ports(), show_all), output)
    typer.echo(f"evidence: {evidence_dir}  report: {paths['csv']}, {paths['json']}", err=True)
    if scan_.interrupted:
        typer.echo(f"port80: interrupted ({signals.signal_name()}): {len(reports)} of {len(specs)} hosts finished; "
                   f"to continue: {resume_command(evidence_dir)}", err=True)
        raise typer.Exit(signals.exit_code())
    if scan_.disk_full is not None:
        local = sum(1 for r in reports if r.status == "local")
        typer.echo(f"port80: error: {evidence_dir}: no space left on the device ({local} host(s) not stored); "
                   f"free space, then: {resume_command(evidence_dir)}", err=True)
        raise typer.Exit(EXIT_LOCAL)
    raise typer.Exit(audit.exit_code(fleet_exit_code(reports, fail_if_held)))


@app.command()
def merge(
    results: List[Path] = typer.Argument(..., help="results.jsonl files (or scan folders) from several runs/shards."),
    port: Optional[List[int]] = PortOpt,
    fmt: str = FormatOpt,
    output: Optional[Path] = OutputOpt,
    fail_if_held: bool = FailIfHeldOpt,
) -> None:
    """Join the results of several scans (e.g. --shard runners) into one fleet report."""
    from remote.runner.scan import merge_results

    fmt = check_format(fmt)
    try:
        reports = merge_results(results)
    except (OSError, ValueError) as e:
        raise fail(str(e))
    ports = list(dict.fromkeys(port or [p.port for r in reports for p in r.ports] or [80]))
    emit(render_report(reports, fmt, ports), output)
    raise typer.Exit(fleet_exit_code(reports, fail_if_held))
