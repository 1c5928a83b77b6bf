"""``port80 jea``: write a least-privilege JEA endpoint for port80 (remote/remoting/jea.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from remote.cli.app import app


@app.command("jea")
def jea(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the .psrc, .pssc and INSTALL.txt into."),
    group: str = typer.Option("BUILTIN\\Remote Management Users", "--group",
                              help="Who may connect (RoleDefinitions), e.g. 'CORP\\Port80-Auditors'."),
    name: str = typer.Option("Port80Audit", "--name", help="Session configuration / role capability name."),
) -> None:
    """Write a JEA endpoint exposing exactly the read-only commands port80 runs (NoLanguage, virtual account)."""
    import re

    from remote.remoting import jea as jea_files

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        typer.echo(f"port80: error: --name {name!r}: letters, digits, '.', '_' and '-' only", err=True)
        raise typer.Exit(2)
    if not group.strip() or "'" in group or "\n" in group:
        typer.echo(f"port80: error: --group {group!r} is not a group name", err=True)
        raise typer.Exit(2)
    try:
        files = jea_files.write(out, name=name, group=group.strip())
    except OSError as e:
        typer.echo(f"port80: error: {out}: {e.strerror or e}", err=True)
        raise typer.Exit(2)
    for f in files:
        typer.echo(f"wrote {f}")
    typer.echo(f"install: see {out / 'INSTALL.txt'}; then set ansible_psrp_configuration_name={name}")
