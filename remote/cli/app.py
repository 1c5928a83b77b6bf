"""port80: who holds port 80 (and friends) on your Windows fleet, and why.

Exit codes: 0 every host scanned; 1 some hosts failed; 2 bad usage or input; 3 with --fail-if-held
when a requested port is held on a scanned host; 4 with --policy: a violation; 5 with --fail-on-drift:
something changed since the previous run; 6 no space left on the disk (what finished is kept).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from remote import __version__
from remote.cli import audit as audit_cli
from remote.report.sanitize import json_text, shown
from remote.evidence.kinds import KINDS

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)


def _mount_lab() -> None:
    from remote.lab.cli import lab_app

    app.add_typer(lab_app, name="lab", help="Emulated Windows hosts (real WinRM/PSRP on loopback) from evidence bundles.")

EXIT_OK, EXIT_FAILED_HOSTS, EXIT_USAGE, EXIT_HELD, EXIT_LOCAL = 0, 1, 2, 3, 6  # 4 policy, 5 drift: cli/audit.py

PortOpt = typer.Option(None, "--port", "-p", help="Port to audit (repeatable). Default: 80.")
FormatOpt = typer.Option("table", "--format", "-f", help="table | csv | json | jsonl | markdown | html")
OutputOpt = typer.Option(None, "--output", "-o", help="Write the report to this file instead of stdout.")
FailIfHeldOpt = typer.Option(False, "--fail-if-held", help="Exit 3 when a requested port is held on a scanned host.")


def fail(message: str, code: int = EXIT_USAGE) -> "typer.Exit":
    typer.echo(f"port80: error: {shown(message)}", err=True)
    return typer.Exit(code)


def _ports(port: Optional[List[int]]) -> list[int]:
    ports = list(dict.fromkeys(port or [80]))
    for p in ports:
        if not 0 < p < 65536:
            raise fail(f"--port {p}: not a TCP port (1-65535)")
    return ports


def _emit(text: str, output: Optional[Path]) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as e:
        raise fail(f"{output}: cannot write ({e.strerror or e})")


def _format(fmt: str) -> str:
    from remote.report.formats import FORMATS

    if fmt not in FORMATS:
        raise fail(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    return fmt


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"port80 {__version__}")


@app.command("parse")
def parse_cmd(
    kind: str = typer.Argument(..., help=" | ".join(k for k in KINDS if KINDS[k].parser)),
    file: Path = typer.Argument(..., help="A file holding that command's output (any Windows encoding)."),
) -> None:
    """Parse one command's output and print the records as JSON."""
    from remote.evidence.textio import decode_text
    from remote.parsers.records import to_dict

    if kind not in KINDS or not KINDS[kind].parser:
        raise fail(f"unknown kind {kind!r} (choose from {', '.join(k for k in KINDS if KINDS[k].parser)})")
    try:
        data = file.read_bytes()
    except OSError as e:
        raise fail(f"{file}: cannot read ({e.strerror or e})")
    result = to_dict(KINDS[kind].parse(decode_text(data)))
    typer.echo(json_text(json.dumps(result, indent=2, ensure_ascii=False)))


@app.command()
def analyze(
    paths: List[Path] = typer.Argument(..., help="Evidence bundle folders, or folders of bundle folders."),
    port: Optional[List[int]] = PortOpt,
    fmt: str = FormatOpt,
    output: Optional[Path] = OutputOpt,
    fail_if_held: bool = FailIfHeldOpt,
    db: Optional[Path] = audit_cli.DbOpt,
    no_history: bool = audit_cli.NoHistoryOpt,
    fail_on_drift: bool = audit_cli.FailOnDriftOpt,
    policy: Optional[Path] = audit_cli.PolicyOpt,
    show_all: bool = audit_cli.ShowAllOpt,
) -> None:
    """Re-analyse evidence bundles offline and print the fleet report."""
    from remote.analysis.verdicts import analyze_bundle
    from remote.evidence.bundle import BundleError, find_bundles, read_bundle

    ports = _ports(port)
    fmt = _format(fmt)
    try:
        dirs = find_bundles(paths)
    except BundleError as e:
        raise fail(str(e))
    audit = audit_cli.AuditRun("analyze", audit_cli.source_key_for_paths(paths), db=db, no_history=no_history,
                               policy=policy, fail_on_drift=fail_on_drift, options={"ports": ports},
                               evidence_dir=",".join(str(p) for p in paths))
    reports = [analyze_bundle(read_bundle(d), ports) for d in dirs]
    audit.finish(reports)
    _emit(audit.render(reports, fmt, ports, show_all), output)
    raise typer.Exit(audit.exit_code(_exit_code(reports, fail_if_held)))


def _exit_code(reports, fail_if_held: bool) -> int:
    from remote.analysis.verdicts import FAILED_STATUSES

    if fail_if_held and any(
        r.status not in FAILED_STATUSES and any(p.holder not in ("free", "unknown") for p in r.ports) for r in reports
    ):
        return EXIT_HELD
    if any(r.status in FAILED_STATUSES for r in reports):
        return EXIT_FAILED_HOSTS
    return EXIT_OK


# --- fleet commands --------------------------------------------------------------------------------

InventoryOpt = typer.Option(..., "--inventory", "-i", help="Ansible INI inventory file.")
LimitOpt = typer.Option(None, "--limit", "-l", help="Ansible host pattern: groups, host globs, !exclude, &intersect.")
UserOpt = typer.Option(None, "--user", "-u", help="User name (default: PORT80_USER, then ansible_user).")
PasswordFileOpt = typer.Option(None, "--password-file", help="File whose first line is the password "
                               "(default: PORT80_PASSWORD, then a prompt on a terminal).")
ForksOpt = typer.Option(32, "--forks", help="Hosts scanned at once.")
TimeoutOpt = typer.Option(120.0, "--timeout", help="Per-host deadline in seconds, enforced by port80.")
VerboseOpt = typer.Option(0, "--verbose", "-v", count=True, help="-v details per host, -vv protocol debug.")
NoVerifyOpt = typer.Option(False, "--no-cert-validation",
                           help="Do not validate TLS certificates (insecure; prefer ansible_psrp_ca_cert).")


def _setup_logging(verbose: int, secrets: list[str]) -> None:
    from remote.logs import setup_logging

    setup_logging(verbose, secrets)


def _load_targets(inventory: Path, limit: Optional[str], shard: Optional[str], user: Optional[str],
                  no_cert_validation: bool):
    from remote.inventory.ansible_ini import InventoryError, parse_shard
    from remote.inventory.ansible_ini import shard as take_shard
    from remote.inventory.targets import Overrides, TargetError, to_spec

    from remote.inventory.ansible_cli import load_any  # INI, or any source through ansible-inventory

    try:
        inv = load_any(inventory)
        hosts = inv.hosts(limit)
        if shard:
            k, n = parse_shard(shard)
            hosts = take_shard(hosts, k, n)
    except InventoryError as e:
        raise fail(str(e))
    except OSError as e:
        raise fail(f"{inventory}: cannot read ({e.strerror or e})")
    except ValueError as e:
        raise fail(str(e))
    for w in inv.warnings:
        typer.echo(f"port80: warning: {shown(w)}", err=True)
    if not hosts:
        raise fail(f"{inventory}: no host matches" + (f" --limit {limit}" if limit else ""))
    if no_cert_validation:
        typer.echo("port80: warning: TLS certificate validation is off (--no-cert-validation)", err=True)
    try:
        specs = [to_spec(h, Overrides(user=user, cert_validation=False if no_cert_validation else None)) for h in hosts]
    except TargetError as e:
        raise fail(str(e))
    for h in hosts:
        if h.scheme == "http" and h.encryption == "never":
            typer.echo(f"port80: warning: {h.name}: message encryption is off over plain HTTP", err=True)
    return hosts, specs


def _credentials(hosts, user: Optional[str], password_file: Optional[Path]):
    from remote.inventory.credentials import CredentialsError, resolve_credentials

    from remote.inventory.targets import FleetCredentials

    try:
        creds = FleetCredentials(resolve_credentials(user, password_file, interactive=sys.stdin.isatty(),
                                                     hosts=hosts), hosts)
    except CredentialsError as e:
        raise fail(str(e))
    for w in creds.warnings:
        typer.echo(f"port80: warning: {shown(w)}", err=True)
    return creds


def _default_evidence_dir(prefix: str = "port80-scan") -> Path:
    from datetime import datetime

    return Path(f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")


def _check_fleet_options(forks: int, timeout: float) -> None:
    if forks < 1:
        raise fail("--forks must be at least 1")
    if timeout <= 0:
        raise fail("--timeout must be positive")


def run_fleet(specs, creds, ports, evidence_dir: Path, forks: int, timeout: float, resume: bool,
              mode: str = "scan", cluster: Optional[str] = None, segments: Optional[dict] = None, batch: int = 0):
    from remote.runner.cluster import ClusterError
    from remote.runner.scan import Scan, ScanOptions

    _check_fleet_options(forks, timeout)
    if batch < 0:
        raise fail("--batch must be 0 (= --forks) or more")
    if not cluster:
        _check_forks_fit(forks)
    opts = ScanOptions(ports=ports, evidence_dir=evidence_dir, forks=forks, timeout=timeout, resume=resume,
                       progress=sys.stderr.isatty(), mode=mode, cluster=cluster, segments=segments or {}, batch=batch)
    scan = Scan(creds.apply_users(specs), creds.password_for, opts, secrets=creds.secrets())
    try:
        reports = scan.run()
    except ClusterError as e:
        raise fail(str(e))
    except OSError as e:
        raise fail(f"{evidence_dir}: {e.strerror or e}", _local_exit(e))
    return scan, reports


def _check_forks_fit(forks: int) -> None:
    """Raise the open-file limit as far as allowed; one line when --forks cannot fit in it."""
    from remote.runner.limits import ForksTooHigh, fit_forks

    try:
        fit_forks(forks)
    except ForksTooHigh as e:
        raise fail(str(e))


def _segments(hosts) -> dict:
    """host -> port80_segment (inventory variable), checked as a Dask resource name."""
    from remote.runner.cluster import SEGMENT_VAR, check_segment

    out = {}
    for h in hosts:
        try:
            seg = check_segment(h.name, (getattr(h, "vars", None) or {}).get(SEGMENT_VAR))
        except ValueError as e:
            raise fail(str(e))
        if seg:
            out[h.name] = seg
    return out


def _local_exit(e: OSError) -> int:
    """A full disk is its own exit code (EXIT_LOCAL); other unwritable folders are bad input (2)."""
    from remote.runner.failures import DISK_FULL_ERRNOS

    return EXIT_LOCAL if e.errno in DISK_FULL_ERRNOS else EXIT_USAGE


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
    db: Optional[Path] = audit_cli.DbOpt,
    no_history: bool = audit_cli.NoHistoryOpt,
    fail_on_drift: bool = audit_cli.FailOnDriftOpt,
    policy: Optional[Path] = audit_cli.PolicyOpt,
    show_all: bool = audit_cli.ShowAllOpt,
) -> None:
    """Scan the inventory's hosts over WinRM/PSRP, keep their evidence, print the fleet report."""
    ports = _ports(port)
    fmt = _format(fmt)
    if resume and evidence_dir is None:
        raise fail("--resume needs --evidence-dir (the folder of the scan to resume)")
    hosts, specs = _load_targets(inventory, limit, shard, user, no_cert_validation)
    creds = _credentials(hosts, user, password_file)
    _setup_logging(verbose, creds.secrets())
    evidence_dir = evidence_dir or _default_evidence_dir()
    audit = audit_cli.AuditRun(
        "scan", audit_cli.source_key_for_inventory(inventory, limit, shard), db=db, no_history=no_history,
        policy=policy, fail_on_drift=fail_on_drift, inventory=str(inventory.resolve()), evidence_dir=str(evidence_dir),
        options={"ports": ports, "limit": limit, "shard": shard, "forks": forks, "timeout": timeout, "resume": resume})
    from remote.runner import signals

    with signals.stop_signals():  # SIGTERM/SIGHUP end a scan as Ctrl-C does: reports for what finished
        scan_, reports = run_fleet(specs, creds, ports, evidence_dir, forks, timeout, resume, cluster=cluster,
                                   segments=_segments(hosts) if cluster else None, batch=batch)
        try:
            paths = scan_.write_reports()
        except OSError as e:
            audit.finish(reports, interrupted=True)
            raise fail(f"{evidence_dir}: cannot write the reports ({e.strerror or e}); results.jsonl has every "
                       f"finished host: {_resume_command(evidence_dir)}", _local_exit(e))
    audit.finish(reports, interrupted=scan_.interrupted or scan_.disk_full is not None)
    _emit(audit.render(reports, fmt, ports, show_all), output)
    typer.echo(f"evidence: {evidence_dir}  report: {paths['csv']}, {paths['json']}", err=True)
    if scan_.interrupted:
        typer.echo(f"port80: interrupted ({signals.signal_name()}): {len(reports)} of {len(specs)} hosts finished; "
                   f"to continue: {_resume_command(evidence_dir)}", err=True)
        raise typer.Exit(signals.exit_code())
    if scan_.disk_full is not None:
        local = sum(1 for r in reports if r.status == "local")
        typer.echo(f"port80: error: {evidence_dir}: no space left on the device ({local} host(s) not stored); "
                   f"free space, then: {_resume_command(evidence_dir)}", err=True)
        raise typer.Exit(EXIT_LOCAL)
    raise typer.Exit(audit.exit_code(_exit_code(reports, fail_if_held)))


def _command_line(args: list[str]) -> str:
    """A port80 command line to copy (each word quoted for a POSIX shell when it needs it)."""
    import shlex

    return shown(shlex.join(["port80", *args]))


def _resume_command(evidence_dir: Path) -> str:
    """This very command line, with --resume and --evidence-dir added when missing."""
    args = list(sys.argv[1:])
    if "--resume" not in args:
        args.append("--resume")
    if not any(a == "--evidence-dir" or a.startswith("--evidence-dir=") for a in args):
        args += ["--evidence-dir", str(evidence_dir)]
    return _command_line(args)


def render_report(reports, fmt, ports):
    from remote.report.render import render

    return render(reports, fmt, ports)


@app.command()
def check(
    inventory: Path = InventoryOpt,
    limit: Optional[str] = LimitOpt,
    user: Optional[str] = UserOpt,
    password_file: Optional[Path] = PasswordFileOpt,
    forks: int = ForksOpt,
    timeout: float = typer.Option(30.0, "--timeout", help="Per-host deadline in seconds."),
    fmt: str = FormatOpt,
    output: Optional[Path] = OutputOpt,
    no_cert_validation: bool = NoVerifyOpt,
    verbose: int = VerboseOpt,
) -> None:
    """Per host: is WinRM reachable, do the credentials work, is the session elevated."""
    import tempfile

    fmt = _format(fmt)
    hosts, specs = _load_targets(inventory, limit, None, user, no_cert_validation)
    creds = _credentials(hosts, user, password_file)
    _setup_logging(verbose, creds.secrets())
    with tempfile.TemporaryDirectory(prefix="port80-check-") as tmp:
        _, reports = run_fleet(specs, creds, [], Path(tmp), forks, timeout, False, mode="check")
    if fmt == "table":
        from tabulate import tabulate

        rows = [[shown(x) for x in (r.host, r.address, r.status, r.os_version or "", r.error or "")] for r in reports]
        _emit(tabulate(rows, headers=["HOST", "ADDRESS", "STATUS", "OS", "DETAIL"], disable_numparse=True) + "\n",
              output)
    else:
        _emit(render_report(reports, fmt, []), output)
    raise typer.Exit(_exit_code(reports, False))


@app.command("inventory")
def inventory_cmd(
    inventory: Path = InventoryOpt,
    limit: Optional[str] = LimitOpt,
    fmt: str = typer.Option("table", "--format", "-f", help="table | json"),
) -> None:
    """List the resolved hosts and their connection settings (never secrets)."""
    from tabulate import tabulate

    hosts, specs = _load_targets(inventory, limit, None, None, False)
    if fmt == "json":
        typer.echo(json.dumps([h.to_dict() for h in hosts], indent=2, ensure_ascii=False))
        return
    rows = []
    for h, s in zip(hosts, specs):
        cert = "ignore" if s.cert_validation is False else (s.cert_validation if isinstance(s.cert_validation, str) else "validate")
        rows.append([h.name, f"{s.scheme}://{s.address}:{s.port}", s.auth, s.user or "", cert,
                     s.encryption, ",".join(h.groups)])
    typer.echo(tabulate(rows, headers=["HOST", "ENDPOINT", "AUTH", "USER", "CERT", "ENCRYPTION", "GROUPS"]))
    typer.echo(f"{len(hosts)} hosts")


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

    fmt = _format(fmt)
    try:
        reports = merge_results(results)
    except (OSError, ValueError) as e:
        raise fail(str(e))
    ports = list(dict.fromkeys(port or [p.port for r in reports for p in r.ports] or [80]))
    _emit(render_report(reports, fmt, ports), output)
    raise typer.Exit(_exit_code(reports, fail_if_held))


# --- remediation -----------------------------------------------------------------------------------


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
    _ports([port])
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
    hosts, specs = _load_targets(inventory, limit, None, user, no_cert_validation)
    try:
        rm.parse_iplisten_args(iplisten or [], [h.name for h in hosts])
    except ValueError as e:
        raise fail(str(e))
    creds = _credentials(hosts, user, password_file)
    _setup_logging(verbose, creds.secrets())
    specs = creds.apply_users(specs)
    _check_fleet_options(forks, timeout)
    _check_forks_fit(forks)
    evidence_dir = evidence_dir or _default_evidence_dir("port80-undo" if undo else "port80-fix")
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
                typer.echo(f"port80: warning: {undo}: {shown(w)}", err=True)
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
        _emit(rr.render_plans(plans, fmt), output)
        typer.echo(f"evidence: {evidence_dir}  (dry run: nothing changed; add --apply to make these changes)", err=True)
        raise typer.Exit(EXIT_FAILED_HOSTS if scan_failed else EXIT_OK)
    todo = [p for p in plans if p.actions]
    typer.echo(rr.render_plans(plans, "table", title="undo" if undo else "plan"), err=True, nl=False)
    if not todo:
        _emit(rr.render_outcomes(plans, {}, fmt, title="undo" if undo else "apply"), output)
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
        _emit(rr.render_outcomes(plans, stop.outcomes, fmt, title="undo" if undo else "apply",
                                 journal=str(opts.journal_path)), output)
        typer.echo(f"port80: interrupted ({signals.signal_name()}) while changing hosts: the table above says "
                   f"what was done; journal: {opts.journal_path}", err=True)
        typer.echo("to undo what was done: " + _command_line(
            ["fix", "--undo", str(opts.journal_path), "-i", str(inventory)] + (["--limit", limit] if limit else [])
            + (["--user", user] if user else []) + (["--password-file", str(password_file)] if password_file else [])
            + (["--yes"] if yes else [])), err=True)
        raise typer.Exit(signals.exit_code())
    _emit(rr.render_outcomes(plans, outcomes, fmt, title="undo" if undo else "apply", journal=str(opts.journal_path)),
          output)
    typer.echo(f"evidence: {evidence_dir}  journal: {opts.journal_path}", err=True)
    bad = scan_failed or any(o.status != "ok" or not rm.verified_ok(o.verified or "") for o in outcomes.values())
    raise typer.Exit(EXIT_FAILED_HOSTS if bad else EXIT_OK)


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
    from remote.cli.demo import run_demo

    ports = _ports(port)
    fmt = _format(fmt)
    if auth not in ("basic", "ntlm"):
        raise fail("--auth: basic or ntlm")
    _setup_logging(verbose, [])
    out = out or _default_evidence_dir("port80-demo")
    typer.echo(f"port80 demo: starting the lab's demo fleet ({auth}) and scanning it...", err=True)
    scan_, reports, inv = run_demo(out, ports, auth=auth, timeout=timeout, progress=sys.stderr.isatty())
    _emit(render_report(reports, fmt, ports), None)
    typer.echo(f"\ninventory: {inv}\nevidence:  {scan_.dir}  (one folder per host; results.jsonl)\n"
               f"report:    {scan_.dir / 'report.csv'}  {scan_.dir / 'report.json'}\n"
               f"re-analyse offline: port80 analyze {scan_.dir}", err=True)


# --- explain (issue 13; moves to remote/cli/explain.py with the CLI split) ------------------------------


@app.command()
def explain(
    host: str = typer.Argument(..., help="The host to explain (inventory name, hostname or bundle folder name)."),
    paths: Optional[List[Path]] = typer.Argument(None, help="Scan folders or evidence bundles (default: .)."),
    port: int = typer.Option(80, "--port", "-p", help="The port to explain."),
) -> None:
    """One host and port in plain sentences: who holds it, the evidence lines, why, and how to free it."""
    from remote.analysis.verdicts import analyze_bundle
    from remote.evidence.bundle import BundleError, find_bundles, read_bundle
    from remote.report.explain import explain as explain_text

    try:
        dirs = find_bundles(paths or [Path(".")])
    except BundleError as e:
        raise fail(str(e))
    want = host.casefold()
    found = []
    for d in dirs:
        b = read_bundle(d)
        names = {str(x).casefold() for x in (b.host, b.meta.get("host"), b.meta.get("hostname"), d.name) if x}
        if want in names:
            found.append(b)
    if not found:
        raise fail(f"{host}: no evidence bundle for this host in {', '.join(str(p) for p in paths or ['.'])}")
    if len(found) > 1:
        raise fail(f"{host}: {len(found)} bundles match ({', '.join(str(b.path) for b in found)}); name one folder")
    b = found[0]
    report = analyze_bundle(b, [port])
    typer.echo(explain_text(report, port, b.texts), nl=False)


_mount_lab()
audit_cli.register(app)  # history, diff, policy, report (remote/cli/audit.py)


def main() -> None:
    """Entry point: no traceback ever reaches the user; -v/-vv logging shows the detail."""
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        from remote.runner.signals import exit_code

        typer.echo("port80: interrupted", err=True)
        sys.exit(exit_code())
    except Exception as e:  # a bug or an unforeseen environment problem: one line, not a traceback
        import logging

        logging.getLogger("port80").debug("internal error", exc_info=True)
        msg = shown(" ".join(str(e).split())[:300])
        typer.echo(f"port80: error: {type(e).__name__}: {msg}", err=True)
        sys.exit(EXIT_FAILED_HOSTS)


# --- jea (issue 12): `port80 jea` lives in remote/cli/jea.py ----------------------------------------------
from remote.cli import jea as _jea  # noqa: E402,F401  (registers the command on ``app``)
