"""`port80 check`: per host, is WinRM reachable, do the credentials work, is the session elevated."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from remote.cli.app import (
    ForksOpt,
    FormatOpt,
    InventoryOpt,
    LimitOpt,
    NoVerifyOpt,
    OutputOpt,
    PasswordFileOpt,
    UserOpt,
    VerboseOpt,
    app,
    check_format,
    credentials,
    emit,
    fleet_exit_code,
    load_targets,
    render_report,
    run_fleet,
    start_logging,
)
from remote.report.sanitize import shown


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

    fmt = check_format(fmt)
    hosts, specs = load_targets(inventory, limit, None, user, no_cert_validation)
    creds = credentials(hosts, user, password_file)
    start_logging(verbose, creds.secrets(), creds.users(specs))
    with tempfile.TemporaryDirectory(prefix="port80-check-") as tmp:
        _, reports = run_fleet(specs, creds, [], Path(tmp), forks, timeout, False, mode="check")
    if fmt == "table":
        from tabulate import tabulate

        rows = [[shown(x) for x in (r.host, r.address, r.status, r.os_version or "", r.error or "")] for r in reports]
        emit(tabulate(rows, headers=["HOST", "ADDRESS", "STATUS", "OS", "DETAIL"], disable_numparse=True) + "\n",
              output)
    else:
        emit(render_report(reports, fmt, []), output)
    raise typer.Exit(fleet_exit_code(reports, False))
