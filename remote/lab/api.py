"""The seam between the lab's protocol server (WSMan/PSRP, remote/lab/protocol/server.py …) and its
Windows emulation (remote/lab/engine/host.py, machine.py; the PowerShell engine in script.py, natives.py, cmdlets.py).

The server decodes CREATE_PIPELINE (via psrpcore) into ``Statement``s and asks the host to run
them; the host answers what Windows would answer, from its evidence bundle and its (mutable) state.
Nothing here does IO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class Command:
    """One command of a pipeline as PSRP carries it (psrpcore ``Command``)."""

    text: str  # cmdlet / native command name, or the whole script when ``is_script``
    is_script: bool = False
    parameters: list[tuple[Optional[str], Any]] = field(default_factory=list)  # (None, arg) = positional


Statement = list[Command]  # commands joined by pipes; a pipeline may hold several statements


@dataclass
class ErrorSpec:
    """An error record, as PowerShell would write it."""

    message: str
    fully_qualified_error_id: str = "NativeCommandError"
    category: int = 0  # System.Management.Automation.ErrorCategory value (e.g. 13 = ObjectNotFound)
    exception_type: str = "System.Management.Automation.RemoteException"
    target: Optional[str] = None  # TargetObject (e.g. the unknown command name)
    command_name: Optional[str] = None  # InvocationInfo.MyCommand (which command raised it)


@dataclass
class Execution:
    """What running a pipeline produced.

    ``output`` items are ``str`` or psrpcore objects (e.g. ``psrpcore.types.PSCustomObject`` with
    ``PSObject.type_names`` set like the real ones), in the order Windows would emit them.
    ``failed`` means the pipeline ends in state Failed with ``failure`` as its reason (e.g. an
    unknown command: CommandNotFoundException); otherwise it ends Completed, possibly with
    non-terminating ``errors``.
    """

    output: list[Any] = field(default_factory=list)
    errors: list[ErrorSpec] = field(default_factory=list)
    failed: bool = False
    failure: Optional[ErrorSpec] = None
    changed_state: bool = False  # True when the pipeline changed the emulated host (service, iplisten)
    exit_code: Optional[int] = None  # set by `exit N`: the server sends the host call SetShouldExit(N)


def canonical_key(statements: list[Statement]) -> str:
    """One canonical text for a pipeline: ``|`` joins commands, ``; `` joins statements,
    ``-Name value`` for named parameters, list values comma-joined, whitespace collapsed.
    The ``add_cmdlet`` and ``add_script`` forms of the same simple command line give the same key."""
    parts = []
    for st in statements:
        cmds = []
        for c in st:
            words = [c.text]
            for name, value in c.parameters:
                if isinstance(value, (list, tuple)):
                    value = ",".join(str(v) for v in value)
                elif isinstance(value, bool) and name:
                    words.append(f"-{name}" + ("" if value else ":$false"))
                    continue
                words.append(f"-{name} {value}" if name else str(value))
            cmds.append(" ".join(words))
        parts.append(" | ".join(cmds))
    return " ".join("; ".join(parts).split())


@dataclass
class RawClixml:
    """An ``Execution.output`` item given as the exact CLIXML a real host sent for one object
    (``<Obj RefId="0">…</Obj>``, as ``[PSSerializer]::Serialize($o, 1)`` prints it). The protocol
    server sends it byte for byte, so captured objects keep their real type names (a psrpcore
    deserialize/serialize round trip would turn them into ``Deserialized.*``).

    Added by the protocol-server side (remote/lab/engine/shell.py) for the engine (host.py/commands.py):
    optional to use; plain ``str`` and psrpcore objects work as before."""

    xml: str
