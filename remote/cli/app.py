"""port80: who holds port 80 (and friends) on your Windows fleet, and why.

Exit codes: 0 every host scanned; 1 some hosts failed; 2 bad usage or input; 3 with --fail-if-held
when a requested port is held on a scanned host; 4 with --policy: a violation; 5 with --fail-on-drift:
something changed since the previous run; 6 no space left on the disk (what finished is kept).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence

import typer

from remote.report.sanitize import shown

if TYPE_CHECKING:  # imported where used (a command loads only what it needs)
    from remote.analysis.verdicts import HostReport
    from remote.inventory.model import HostConfig
    from remote.inventory.targets import FleetCredentials
    from remote.remoting.collect import ConnectionSpec
    from remote.runner.scan import Scan

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)

EXIT_OK, EXIT_FAILED_HOSTS, EXIT_USAGE, EXIT_HELD, EXIT_LOCAL = 0, 1, 2, 3, 6  # 4 policy, 5 drift: cli/audit.py

# --- options and helpers shared by the command modules (remote/cli/<group>.py) ------------------------

PortOpt = typer.Option(None, "--port", "-p", help="Port to audit (repeatable). Default: 80.")
FormatOpt = typer.Option("table", "--format", "-f", help="table | csv | json | jsonl | markdown | html")
OutputOpt = typer.Option(None, "--output", "-o", help="Write the report to this file instead of stdout.")
FailIfHeldOpt = typer.Option(False, "--fail-if-held", help="Exit 3 when a requested port is held on a scanned host.")
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


def fail(message: str, code: int = EXIT_USAGE) -> "typer.Exit":
    typer.echo(f"port80: error: {shown(message)}", err=True)
    return typer.Exit(code)


def port_list(port: Optional[List[int]]) -> list[int]:
    ports = list(dict.fromkeys(port or [80]))
    for p in ports:
        if not 0 < p < 65536:
            raise fail(f"--port {p}: not a TCP port (1-65535)")
    return ports


def emit(text: str, output: Optional[Path]) -> None:
    from remote.report.sanitize import terminal_text

    text = terminal_text(text)  # the last line of defence: no raw control character from host text
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as e:
        raise fail(f"{output}: cannot write ({e.strerror or e})")


def check_format(fmt: str) -> str:
    from remote.report.formats import FORMATS

    if fmt not in FORMATS:
        raise fail(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    return fmt


def fleet_exit_code(reports: Sequence[HostReport], fail_if_held: bool) -> int:
    from remote.runner.failures import FAILED

    if fail_if_held and any(
        r.status not in FAILED and any(p.holder not in ("free", "unknown") for p in r.ports) for r in reports
    ):
        return EXIT_HELD
    if any(r.status in FAILED for r in reports):
        return EXIT_FAILED_HOSTS
    return EXIT_OK



def render_report(reports: list[HostReport], fmt: str, ports: Optional[list[int]]) -> str:
    from remote.report.render import render

    return render(reports, fmt, ports)


def start_logging(verbose: int, secrets: list[str], users: Sequence[str] = ()) -> None:
    from remote.logs import setup_logging

    setup_logging(verbose, secrets, users)


def load_targets(inventory: Path, limit: Optional[str], shard: Optional[str], user: Optional[str],
                  no_cert_validation: bool, listing: bool = False) -> tuple[list[HostConfig], list[ConnectionSpec]]:
    """Hosts and their ConnectionSpecs, or a one-line error (exit 2). ``listing`` (`port80 inventory`):
    a CA file missing on this machine is a warning, not an error, so the settings can still be shown."""
    from remote.inventory.ansible_ini import InventoryError, parse_shard
    from remote.inventory.ansible_ini import shard as take_shard
    from remote.inventory.targets import MissingCAFile, Overrides, TargetError, to_spec

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
    ov = Overrides(user=user, cert_validation=False if no_cert_validation else None)
    specs: list[ConnectionSpec] = []
    missing_ca: dict[tuple[str, Optional[str]], list[str]] = {}  # listing: (file:line, CA file) -> hosts
    try:
        for h in hosts:
            try:
                specs.append(to_spec(h, ov))
            except MissingCAFile:
                if not listing:
                    raise
                missing_ca.setdefault((f"{h.source}:{h.ca_cert_line or h.line}", h.ca_cert), []).append(h.name)
                specs.append(to_spec(h, ov, check_files=False))
    except TargetError as e:
        raise fail(str(e))
    for (where, ca), names in missing_ca.items():
        typer.echo(f"port80: warning: {shown(where)}: ansible_psrp_ca_cert {shown(repr(ca))}: no such file on this "
                   f"machine (a scan stops here) (hosts: {shown(', '.join(names))})", err=True)
    for h in hosts:
        if h.scheme == "http" and h.encryption == "never":
            typer.echo(f"port80: warning: {h.name}: message encryption is off over plain HTTP", err=True)
    return hosts, specs


def credentials(hosts: list[HostConfig], user: Optional[str], password_file: Optional[Path]) -> FleetCredentials:
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


def default_evidence_dir(prefix: str = "port80-scan") -> Path:
    from datetime import datetime

    return Path(f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")


def check_fleet_options(forks: int, timeout: float) -> None:
    if forks < 1:
        raise fail("--forks must be at least 1")
    if timeout <= 0:
        raise fail("--timeout must be positive")


def run_fleet(specs: list[ConnectionSpec], creds: FleetCredentials, ports: list[int], evidence_dir: Path, forks: int,
              timeout: float, resume: bool, mode: str = "scan", cluster: Optional[str] = None,
              segments: Optional[dict[str, str]] = None, batch: int = 0,
              max_output_mb: Optional[float] = None) -> tuple[Scan, list[HostReport]]:
    from remote.runner.cluster import ClusterError
    from remote.runner.scan import Scan, ScanOptions

    check_fleet_options(forks, timeout)
    if batch < 0:
        raise fail("--batch must be 0 (= --forks) or more")
    if max_output_mb is not None and max_output_mb <= 0:
        raise fail("--max-output-mb must be positive")
    if not cluster:
        check_forks_fit(forks)
    opts = ScanOptions(ports=ports, evidence_dir=evidence_dir, forks=forks, timeout=timeout, resume=resume,
                       progress=sys.stderr.isatty(), mode=mode, cluster=cluster, segments=segments or {}, batch=batch,
                       max_output_mb=max_output_mb)
    scan = Scan(creds.apply_users(specs), creds.password_for, opts, secrets=creds.secrets())
    try:
        reports = scan.run()
    except ClusterError as e:
        raise fail(str(e))
    except OSError as e:
        raise fail(f"{evidence_dir}: {e.strerror or e}", local_exit(e))
    return scan, reports


def check_forks_fit(forks: int) -> None:
    """Raise the open-file limit as far as allowed; one line when --forks cannot fit in it."""
    from remote.runner.limits import ForksTooHigh, fit_forks

    try:
        fit_forks(forks)
    except ForksTooHigh as e:
        raise fail(str(e))


def host_segments(hosts: Sequence[HostConfig]) -> dict[str, str]:
    """host -> port80_segment (inventory variable), checked as a Dask resource name."""
    from remote.runner.cluster import SEGMENT_VAR, check_segment

    out: dict[str, str] = {}
    for h in hosts:
        try:
            seg = check_segment(h.name, h.vars.get(SEGMENT_VAR))
        except ValueError as e:
            raise fail(str(e))
        if seg:
            out[h.name] = seg
    return out


def local_exit(e: OSError) -> int:
    """A full disk is its own exit code (EXIT_LOCAL); other unwritable folders are bad input (2)."""
    from remote.runner.failures import DISK_FULL_ERRNOS

    return EXIT_LOCAL if e.errno in DISK_FULL_ERRNOS else EXIT_USAGE


def command_line(args: list[str]) -> str:
    """A port80 command line to copy (each word quoted for a POSIX shell when it needs it)."""
    import shlex

    return shown(shlex.join(["port80", *args]))


def resume_command(evidence_dir: Path) -> str:
    """This very command line, with --resume and --evidence-dir added when missing."""
    args = list(sys.argv[1:])
    if "--resume" not in args:
        args.append("--resume")
    if not any(a == "--evidence-dir" or a.startswith("--evidence-dir=") for a in args):
        args += ["--evidence-dir", str(evidence_dir)]
    return command_line(args)


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


# --- the commands: one module per group registers its commands on ``app`` (order = `port80 --help`) ---
# A new command group is a new module here: it is found and imported (these first, in this order; the
# rest by name), and registers its commands on ``app`` when imported.
_FIRST = ("analyze", "scan", "check", "inventory", "fix", "demo", "explain")
for _group in (*_FIRST, *sorted({m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])}
                               - {*_FIRST, "app", "audit"})):
    importlib.import_module(f"remote.cli.{_group}")
importlib.import_module("remote.cli.audit").register(app)  # history, diff, policy, report
