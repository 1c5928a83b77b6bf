"""The lab in-process, for tests and scripts: ``with lab_fleet(...) as fleet:``.

Defaults differ from ``port80 lab serve`` where tests need it: every host listens on 127.0.0.1 on
an ephemeral port (parallel test runs never clash), Basic over HTTPS with a per-run CA.

    from remote.lab.fixture import lab_fleet

    with lab_fleet(hosts=3, faults={"web-01": {"kind": "hang"}}, inventory=tmp_path / "inv.ini") as fleet:
        kw = fleet.client_kwargs(fleet.hosts[0])   # pypsrp WSMan(**kw)
        ...
        fleet.stats()["hosts"]["web-01"]["actions"]
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from remote.lab import api
from remote.lab.protocol.faults import FaultSpec
from remote.lab.fleet.server import LabFleet


@contextmanager
def lab_fleet(
    profiles: Optional[Path] = None,
    hosts: Optional[int] = None,
    *,
    tls: Optional[bool] = None,
    auth: str = "basic",
    user: str = "auditor",
    password: Optional[str] = None,
    latency_ms: float = 0.0,
    faults: Optional[dict[str, FaultSpec]] = None,
    base_address: Optional[str] = None,
    port: Optional[int] = None,
    allow_unencrypted: bool = False,
    inventory: Optional[Path] = None,
    workdir: Optional[Path] = None,
    host_factory: Optional[Callable[[Path, Optional[str]], Any]] = None,
    jea: Optional[Path] = None,
) -> Iterator[LabFleet]:
    """Start a lab fleet (default: the shipped demo fleet), optionally write its inventory, stop it on exit."""
    fleet = LabFleet(
        profiles,
        hosts,
        tls_enabled=tls,
        auth=auth,
        user=user,
        password=password,
        latency_ms=latency_ms,
        base_address=base_address,
        port=port,
        faults=faults,
        allow_unencrypted=allow_unencrypted,
        workdir=workdir,
        host_factory=host_factory,
        jea=jea,
    )
    with fleet:
        if inventory is not None:
            fleet.write_inventory(Path(inventory))
        yield fleet


Answer = Union[api.Execution, Callable[[list[api.Statement]], api.Execution], str, list]


class ScriptedHost:
    """A minimal host for protocol-level tests (not the Windows emulation of remote/lab/engine/host.py).

    ``answers`` maps a canonical pipeline key (``api.canonical_key``, compared case-insensitively)
    to an ``Execution``, a callable taking the statements, a string or a list of outputs. A
    multi-statement pipeline is answered statement by statement; ``Write-Output -InputObject X``
    echoes X; ``Invoke-Expression -Command S | Out-String -Stream`` (``Client.execute_ps``) answers S's
    text line by line; anything else fails like an unknown command (CommandNotFoundException).
    """

    def __init__(self, name: str = "scripted", answers: Optional[dict[str, Answer]] = None,
                 faults: Optional[dict] = None, psversion: Optional[dict] = None,
                 bundle_dir: Optional[Path] = None) -> None:
        self.name = name
        self.bundle_dir = bundle_dir or Path(".")
        self.faults = faults or {}
        self.psversion = psversion or {}
        self.command_log: list[dict] = []
        self._answers = {k.lower(): v for k, v in (answers or {}).items()}
        self._lock = threading.Lock()

    @classmethod
    def from_bundle(cls, path: Path, name: Optional[str] = None) -> "ScriptedHost":
        """Answers the bundle's text evidence to ``<command> | Out-String`` (e.g. ``netstat.exe -ano | Out-String``)."""
        from remote.evidence.bundle import read_bundle
        from remote.evidence.kinds import KINDS, Native

        b = read_bundle(Path(path))
        answers: dict[str, Answer] = {}
        for kind, text in b.texts.items():
            command = KINDS[kind].command
            if text is not None and isinstance(command, Native):
                answers[command.statement] = text
        lab = b.meta.get("lab") if isinstance(b.meta.get("lab"), dict) else {}
        return cls(name or b.host, answers, faults=lab.get("fault") or {}, psversion=lab.get("psversion") or {},
                   bundle_dir=Path(path))

    def _one(self, statement: api.Statement) -> api.Execution:
        key = api.canonical_key([statement])
        low = key.lower()
        if low in self._answers:
            return _as_execution(self._answers[low], [statement])
        if low.startswith("write-output -inputobject "):
            return api.Execution(output=[key[len("write-output -inputobject "):]])
        prefix, suffix = "invoke-expression -command ", " | out-string -stream"
        if low.startswith(prefix) and low.endswith(suffix):
            inner = key[len(prefix):len(key) - len(suffix)]
            a = self._answers.get(inner.lower() + " | out-string")
            if isinstance(a, str):
                return api.Execution(output=a.splitlines())
        name = statement[0].text.split()[0] if statement and statement[0].text.split() else key
        return api.Execution(failed=True, failure=api.ErrorSpec(
            message=f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
                    "operable program. Check the spelling of the name, or if a path was included, verify that the "
                    "path is correct and try again.",
            fully_qualified_error_id="CommandNotFoundException", category=13, target=name,
            exception_type="System.Management.Automation.CommandNotFoundException"))

    def run(self, statements: list[api.Statement]) -> api.Execution:
        key = api.canonical_key(statements)
        whole = self._answers.get(key.lower())
        if whole is not None:
            out = _as_execution(whole, statements)
        else:
            out = api.Execution()
            for st in statements:
                one = self._one(st)
                out.output.extend(one.output)
                out.errors.extend(one.errors)
                if one.failed:
                    out.failed, out.failure = True, one.failure
                    break
        with self._lock:
            self.command_log.append({"key": key, "changed_state": False})
        return out


def _as_execution(a: Answer, statements: list[api.Statement]) -> api.Execution:
    if isinstance(a, api.Execution):
        return a
    if callable(a):
        return a(statements)
    return api.Execution(output=list(a) if isinstance(a, list) else [a])
