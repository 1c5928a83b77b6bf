"""`port80 analyze`, `port80 parse`, `port80 version`: offline, from evidence on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from remote import __version__
from remote.cli import audit as audit_cli
from remote.cli.app import (
    FailIfHeldOpt,
    FormatOpt,
    OutputOpt,
    PortOpt,
    app,
    check_format,
    emit,
    fail,
    fleet_exit_code,
    port_list,
)
from remote.evidence.kinds import KINDS
from remote.report.sanitize import json_text


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

    ports = port_list(port)
    fmt = check_format(fmt)
    try:
        dirs = find_bundles(paths)
    except BundleError as e:
        raise fail(str(e))
    audit = audit_cli.AuditRun("analyze", audit_cli.source_key_for_paths(paths), db=db, no_history=no_history,
                               policy=policy, fail_on_drift=fail_on_drift, options={"ports": ports},
                               evidence_dir=",".join(str(p) for p in paths))
    reports = [analyze_bundle(read_bundle(d), ports) for d in dirs]
    audit.finish(reports)
    emit(audit.render(reports, fmt, ports, show_all), output)
    raise typer.Exit(audit.exit_code(fleet_exit_code(reports, fail_if_held)))
