"""`port80 fix`: free a port (plan, --apply with a journal and verification, --undo)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from remote.cli.app import (
    EXIT_FAILED_HOSTS,
    EXIT_OK,
    ForksOpt,
    InventoryOpt,
    LimitOpt,
    NoVerifyOpt,
    OutputOpt,
    PasswordFileOpt,
    TimeoutOpt,
    UserOpt,
    VerboseOpt,
    app,
    check_fleet_options,
    check_forks_fit,
    command_line,
    credentials,
    default_evidence_dir,
    emit,
    fail,
    load_targets,
    port_list,
    start_logging,
)
from remote.report.sanitize import shown


@app.command()
def fix(
    inventory: Path = InventoryOpt,
    limit: Optional[str] = LimitOpt,
    port: int = typer.Option(80, "--port", "-p", help="The port to free."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="disable-services (stop and disable the "
                                           "services behind the HTTP.sys registrations) | iplisten (restrict "
                                           "HTTP.sys to the --iplisten addresses)."),
    iplisten: Optional[List[str]] = typer.Option(None, "--iplisten", help="ADDR (every host) or HOST=ADDR: an "
                                                 "address for HTTP.sys's IP listen list (repeatable)."),
    apply: bool = typer.Option(False, "--apply", help="Make the changes (default: print the plan only)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation before changing hosts."),
    force_service: Optional[List[str]] = typer.Option(None, "--force-service", help="Allow stopping this service "
                                                      "although the knowledge base marks it critical, or choose it "
                                                      "among the services of a shared process (repeatable). Never "
                                                      "WinRM or what remoting depends on."),
    journal: Optional[Path] = typer.Option(None, "--journal", help="Journal file (JSONL) of every change "
                                           "(default: EVIDENCE_DIR/journal.jsonl)."),
    undo: Optional[Path] = typer.Option(None, "--undo", help="Restore, newest first, what this journal says "
                                        "was changed (also after a partial apply), then verify."),
    user: Optional[str] = UserOpt,
    password_file: Optional[Path] = PasswordFileOpt,
    forks: int = ForksOpt,
    timeout: float = TimeoutOpt,
    evidence_dir: Optional[Path] = typer.Option(None, "--evidence-dir", help="Where the scans, plan and journal go "
                                                "(default: ./port80-fix-<timestamp>)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | markdown | json"),
    output: Optional[Path] = OutputOpt,
    no_cert_validation: bool = NoVerifyOpt,
    verbose: int = VerboseOpt,
) -> None:
    """Free a port: plan from a fresh scan (dry run), or --apply with a journal and verification, or --undo.

    Exit codes: 0 planned (dry run) or changed and verified; 1 a host could not be scanned, an action
    failed, the port is not free after the change, or the confirmation was declined; 2 bad usage,
    including --apply/--undo without --yes when not on a terminal."""
    from remote.remediation import plan as rm
    from remote.remediation import render as rr
    from remote.remediation.apply import Fixer, FixOptions

    if fmt not in rm.FORMATS:
        raise fail(f"--format {fmt}: choose from {', '.join(rm.FORMATS)}")
    port_list([port])
    if undo is not None:
        if strategy or iplisten or apply:
            raise fail("--undo takes the changes from the journal: no --strategy, --iplisten or --apply")
        if not undo.is_file():
            raise fail(f"--undo {undo}: no such journal")
    elif strategy not in rm.STRATEGIES:
        raise fail(f"--strategy: choose from {', '.join(rm.STRATEGIES)}")
    elif strategy == "iplisten" and not iplisten:
        raise fail("--strategy iplisten needs at least one --iplisten ADDR")
    changing = apply or undo is not None
    if changing and not yes and not sys.stdin.isatty():
        raise fail("refusing to change hosts without confirmation: not on a terminal; pass --yes")
    hosts, specs = load_targets(inventory, limit, None, user, no_cert_validation)
    try:
        rm.parse_iplisten_args(iplisten or [], [h.name for h in hosts])
    except ValueError as e:
        raise fail(str(e))
    creds = credentials(hosts, user, password_file)
    start_logging(verbose, creds.secrets(), creds.users(specs))
    specs = creds.apply_users(specs)
    check_fleet_options(forks, timeout)
    check_forks_fit(forks)
    evidence_dir = evidence_dir or default_evidence_dir("port80-undo" if undo else "port80-fix")
    opts = FixOptions(port=port, strategy=strategy or "undo", iplisten=list(iplisten or []),
                      force_services=list(force_service or []), evidence_dir=evidence_dir, journal=journal,
                      forks=forks, timeout=timeout, progress=sys.stderr.isatty())
    if undo is not None and opts.journal_path.resolve() == undo.resolve():
        raise fail("the undo run needs its own journal: choose another --journal or --evidence-dir")
    fixer = Fixer(specs, creds.password_for, opts, secrets=creds.secrets())
    try:
        if undo is not None:
            plans, warnings = fixer.undo_plan(undo)
            for w in warnings:
                typer.echo(f"port80: warning: {undo}:{shown(w)}", err=True)
            if warnings and not plans:
                raise fail(f"{undo}: no readable change in this journal ({len(warnings)} unreadable line(s))")
        else:
            from remote.runner.signals import stop_signals

            with stop_signals():  # SIGTERM during the scan: as Ctrl-C, nothing changed yet
                plans = fixer.plan()
    except OSError as e:
        raise fail(f"{evidence_dir}: {e.strerror or e}")
    if fixer.interrupted:
        from remote.runner.signals import exit_code

        typer.echo("port80: interrupted during the scan: nothing changed", err=True)
        raise typer.Exit(exit_code())
    scan_failed = any(p.reason.startswith("not scanned") for p in plans)
    if not changing:
        emit(rr.render_plans(plans, fmt), output)
        typer.echo(f"evidence: {evidence_dir}  (dry run: nothing changed; add --apply to make these changes)", err=True)
        raise typer.Exit(EXIT_FAILED_HOSTS if scan_failed else EXIT_OK)
    todo = [p for p in plans if p.actions]
    typer.echo(rr.render_plans(plans, "table", title="undo" if undo else "plan"), err=True, nl=False)
    if not todo:
        emit(rr.render_outcomes(plans, {}, fmt, title="undo" if undo else "apply"), output)
        typer.echo("nothing to change", err=True)
        raise typer.Exit(EXIT_FAILED_HOSTS if scan_failed else EXIT_OK)
    n = sum(len(p.actions) for p in todo)
    if not yes and not typer.confirm(f"{'Undo' if undo else 'Apply'} {n} changes on {len(todo)} hosts?", default=False):
        typer.echo("port80: not confirmed: nothing changed", err=True)
        raise typer.Exit(EXIT_FAILED_HOSTS)
    from remote.remediation.apply import Interrupted
    from remote.runner import signals

    try:
        with signals.stop_signals():
            outcomes = fixer.apply(plans, mode="undo" if undo else "apply", undoes=undo)
    except OSError as e:
        raise fail(f"{opts.journal_path}: {e.strerror or e}")
    except Interrupted as stop:  # what was done, the journal and the exact undo command
        emit(rr.render_outcomes(plans, stop.outcomes, fmt, title="undo" if undo else "apply",
                                 journal=str(opts.journal_path)), output)
        typer.echo(f"port80: interrupted ({signals.signal_name()}) while changing hosts: the table above says "
                   f"what was done; journal: {opts.journal_path}", err=True)
        typer.echo("to undo what was done: " + command_line(
            ["fix", "--undo", str(opts.journal_path), "-i", str(inventory)] + (["--limit", limit] if limit else [])
            + (["--user", user] if user else []) + (["--password-file", str(password_file)] if password_file else [])
            + (["--yes"] if yes else [])), err=True)
        raise typer.Exit(signals.exit_code())
    emit(rr.render_outcomes(plans, outcomes, fmt, title="undo" if undo else "apply", journal=str(opts.journal_path)),
          output)
    typer.echo(f"evidence: {evidence_dir}  journal: {opts.journal_path}", err=True)
    bad = scan_failed or any(o.status != "ok" or not (o.verified is not None and o.verified.ok) for o in outcomes.values())
    raise typer.Exit(EXIT_FAILED_HOSTS if bad else EXIT_OK)
