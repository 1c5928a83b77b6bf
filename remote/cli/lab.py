"""`port80 lab`: the lab's own command group (remote/lab/cli.py), mounted on the port80 app."""

from __future__ import annotations

from remote.cli.app import app
from remote.lab.cli import lab_app

app.add_typer(lab_app, name="lab", help="Emulated Windows hosts (real WinRM/PSRP on loopback) from evidence bundles.")
