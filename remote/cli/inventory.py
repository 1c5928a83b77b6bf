"""`port80 inventory`: the resolved hosts and connection settings (never secrets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from remote.cli.app import InventoryOpt, LimitOpt, app, load_targets


@app.command("inventory")
def inventory_cmd(
    inventory: Path = InventoryOpt,
    limit: Optional[str] = LimitOpt,
    fmt: str = typer.Option("table", "--format", "-f", help="table | json"),
) -> None:
    """List the resolved hosts and their connection settings (never secrets)."""
    from tabulate import tabulate

    hosts, specs = load_targets(inventory, limit, None, None, False, listing=True)
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
