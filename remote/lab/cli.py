"""``port80 lab``: emulated Windows hosts speaking real WinRM/PSRP on loopback (mounted by remote/cli/app.py).

    port80 lab serve [--profiles DIR] [--hosts N] [--tls/--no-tls] [--auth basic|ntlm|negotiate|kerberos] [--latency-ms N]
                     [--inventory-out FILE] [--base-address 127.0.1.1] [--port N] [--user U]
                     [--fault HOST=KIND[:ARG]]...
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional

import typer

from remote.lab.protocol.auth import PASSWORD_ENV, lab_password
from remote.lab.protocol.faults import FaultError, parse_fault_option
from remote.runner.limits import gil_handoff

if TYPE_CHECKING:  # the servers load when the lab starts, not with every port80 command
    from remote.lab.fleet.server import LabFleet

lab_app = typer.Typer(
    name="lab",
    help="The lab: emulated Windows hosts (real WinRM/PSRP servers on loopback) serving evidence bundles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def serve_lab(
    profiles: Optional[Path] = None,
    hosts: Optional[int] = None,
    tls: Optional[bool] = None,
    auth: str = "basic",
    latency_ms: float = 0.0,
    inventory_out: Path = Path("lab-inventory.ini"),
    base_address: Optional[str] = "127.0.1.1",
    port: Optional[int] = None,
    user: str = "auditor",
    password: Optional[str] = None,
    faults: Optional[List[str]] = None,
    allow_unencrypted: bool = False,
    stop: Optional[threading.Event] = None,
    duration: Optional[float] = None,
    echo: Callable[[str], None] = print,
    on_ready: Optional[Callable[[LabFleet], None]] = None,
    jea: Optional[Path] = None,
) -> int:
    """Serve the lab until Ctrl-C / SIGTERM / ``stop`` is set / ``duration`` seconds; returns an exit code."""
    from remote.lab.fleet.server import LabError, LabFleet

    fault_map: dict = {}
    for text in faults or []:
        try:
            name, spec = parse_fault_option(text)
        except FaultError as e:
            echo(f"port80 lab: error: {e}")
            return 2
        fault_map.setdefault(name, []).append(spec)
    try:
        fleet = LabFleet(
            profiles, hosts, tls_enabled=tls, auth=auth, user=user, password=lab_password(password),
            latency_ms=latency_ms, base_address=base_address, port=port, faults=fault_map,
            allow_unencrypted=allow_unencrypted, jea=jea,
        )
        fleet.start()
    except (LabError, ValueError) as e:
        echo(f"port80 lab: error: {e}")
        return 2
    stop = stop or threading.Event()
    restore = _on_sigterm(stop)
    try:
        with gil_handoff():  # a thread per connection: remote/runner/limits.py says why
            inv = fleet.write_inventory(inventory_out).resolve()
            _banner(fleet, inv, echo)
            if on_ready is not None:
                on_ready(fleet)
            try:
                stop.wait(duration) if duration is not None else _wait(stop)
            except KeyboardInterrupt:
                pass
            echo("port80 lab: stopping")
    finally:
        fleet.stop()
        restore()
    return 0


def _wait(stop: threading.Event) -> None:
    while not stop.wait(0.5):  # short waits keep the main thread responsive to Ctrl-C
        pass


def _on_sigterm(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return lambda: signal.signal(signal.SIGTERM, previous)


def _banner(fleet: LabFleet, inventory: Path, echo: Callable[[str], None]) -> None:
    mode = f"{fleet.auth} over {fleet.scheme.upper()}" + (" with message encryption" if not fleet.tls and
                                                           fleet.auth != "basic" else "")
    echo(f"port80 lab: {len(fleet.hosts)} emulated Windows hosts from {fleet.profiles} ({mode})")
    shown = fleet.hosts[:12]
    for h in shown:
        extra = f"  [fault: {h.faults.describe()}]" if h.faults else ""
        echo(f"  {h.name:<28} {h.url}{extra}")
    if len(fleet.hosts) > len(shown):
        echo(f"  ... and {len(fleet.hosts) - len(shown)} more (see the inventory)")
    if fleet.ca_path:
        echo(f"CA certificate: {fleet.ca_path}")
    if getattr(fleet, "jea_endpoint", None) is not None:
        echo(f"JEA endpoint:   {fleet.jea_endpoint.name} (NoLanguage; the inventory sets ansible_psrp_configuration_name)")
    echo(f"inventory:      {inventory}")
    echo(f"user:           {fleet.user}    password: {fleet.password}"
         f"  (lab value; set {PASSWORD_ENV} to change it)")
    kdc = getattr(fleet, "kdc", None)
    if kdc is not None:
        echo(f"Kerberos realm: {kdc.realm}, KDC {kdc.address}:{kdc.port} (log {kdc.log_path}); service principals "
             f"HTTP/<host>.{kdc.realm.lower()}" + ("; NTLM is turned off" if fleet.auth == "kerberos" else ""))
        echo("scan it with a ticket (no password asked):")
        echo(f"  export KRB5_CONFIG={kdc.krb5_conf}")
        echo(f"  kinit {fleet.user}@{kdc.realm}    # password above")
        echo(f"  port80 scan -i {inventory}")
        echo("or without a ticket (port80 gets its own, in a private cache):")
    else:
        echo("scan it with:")
    echo(f"  PORT80_PASSWORD='{fleet.password}' port80 scan -i {inventory}")
    echo("Ctrl-C stops the lab.")


@lab_app.callback()
def _lab() -> None:
    """The lab: emulated Windows hosts serving evidence bundles over real WinRM/PSRP on loopback."""


@lab_app.command("serve")
def serve(
    profiles: Optional[Path] = typer.Option(None, "--profiles", help="Folder of evidence bundles (one per host). "
                                            "Default: the shipped demo fleet."),
    hosts: Optional[int] = typer.Option(None, "--hosts", "-n", help="Number of hosts (bundles are cycled under "
                                        "distinct names when more than bundles). Default: one per bundle."),
    tls: Optional[bool] = typer.Option(None, "--tls/--no-tls", help="HTTPS on 5986 (default with --auth basic) "
                                       "or HTTP on 5985 (default with --auth ntlm: message encryption)."),
    auth: str = typer.Option("basic", "--auth", help="basic | ntlm | negotiate | kerberos (what the inventory says; "
                             "every listener accepts Basic and NTLM, like a Windows host with both enabled; "
                             "negotiate and kerberos start the lab's own MIT KDC (OS package krb5-kdc) and accept "
                             "Kerberos too; kerberos turns NTLM off)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Milliseconds added to every request."),
    inventory_out: Path = typer.Option(Path("lab-inventory.ini"), "--inventory-out", "-o",
                                       help="Where to write the Ansible INI inventory."),
    base_address: str = typer.Option("127.0.1.1", "--base-address", help="First host's loopback address; "
                                     "host N gets base+N-1 (IPv4). ::1 = all on ::1, distinct ports."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default 5986/5985; 0 = ephemeral)."),
    user: str = typer.Option("auditor", "--user", help="Lab user name (also accepted as LAB\\USER)."),
    password: Optional[str] = typer.Option(None, "--password", envvar=PASSWORD_ENV, show_default=False,
                                           help=f"Lab password (default: the documented lab value; env "
                                                f"{PASSWORD_ENV})."),
    fault: List[str] = typer.Option([], "--fault", help="HOST=KIND[:ARG] (repeatable): refuse, auth, hang, "
                                    "hang_receive, slow:SECONDS, latency:MS, wsman_fault:ACTION[:CODE[:MESSAGE]], "
                                    "garbage, reset, http500."),
    allow_unencrypted: bool = typer.Option(False, "--allow-unencrypted", help="Accept Basic over plain HTTP "
                                           "(Windows' AllowUnencrypted=true)."),
    jea: Optional[Path] = typer.Option(None, "--jea", help="Folder written by `port80 jea`: every host also serves "
                                       "that JEA session configuration (NoLanguage, only the role's commands)."),
    duration: Optional[float] = typer.Option(None, "--duration", hidden=True, help="Stop after N seconds."),
) -> None:
    """Serve a folder of bundles as emulated Windows hosts until Ctrl-C; writes an inventory to scan."""
    code = serve_lab(profiles=profiles, hosts=hosts, tls=tls, auth=auth, latency_ms=latency_ms,
                     inventory_out=inventory_out, base_address=base_address, port=port, user=user,
                     password=password, faults=fault, allow_unencrypted=allow_unencrypted, duration=duration,
                     echo=lambda s: typer.echo(s), jea=jea)
    if code:
        raise typer.Exit(code)


if __name__ == "__main__":  # python -m remote.lab.cli serve ...
    sys.exit(lab_app())
