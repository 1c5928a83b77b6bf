"""One emulated Windows host of the lab: an evidence bundle brought to life.

``LabHost.from_bundle(folder)`` reads the bundle (the only IO here); ``run(statements)`` answers a
PSRP pipeline through the engine in ``commands.py``; state-changing commands (Stop-Service,
netsh http add iplisten, iisreset…) mutate the ``Machine`` and every evidence text is re-rendered
from it, keeping the exact line shapes of the original. When the state is back to the original,
every text is the original, byte for byte.

The machine model (what Windows does when a service stops):
* a service's process ends when none of its services runs any more (a shared svchost lives on);
  a restarted service gets its original PID back (deterministic; a never-run one gets a new PID);
* an HTTP.sys request queue belongs to services: host.json ``lab.owners`` (URL or queue name →
  service names) when given; else the services in its worker/controller processes — for an IIS
  application pool (a controller process hosting W3SVC) that is W3SVC alone, because stopping
  W3SVC removes the sites' URL registrations. A queue disappears from ``netsh http show
  servicestate`` when all its owners are stopped, and comes back when one is started; queue worker
  processes (w3wp.exe) end with their queue;
* netstat's PID 4 rows of a port that HTTP.sys served (a port in some registration) disappear
  when no live registration remains on it; rows of ended processes disappear;
* the IP listen list (``netsh http add|delete iplisten``) decides which addresses HTTP.sys binds:
  empty → 0.0.0.0 and [::]; otherwise exactly the listed addresses;
* URL reservations (urlacl) persist whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any, Optional

from remote.lab import api
from remote.lab.engine import commands as cmd
from remote.lab.engine.memo import SharedMemo
# The machine model lives in machine.py (state) and httpsys.py (servicestate/iplisten texts);
# these names stay importable from here.
from remote.lab.engine.httpsys import (Queue, parse_iplisten, parse_queues, render_iplisten,  # noqa: F401
                                       render_requestq, render_session, split_keep)
from remote.lab.engine.machine import FILES, Machine, default_psversion  # noqa: F401
from remote.evidence.textio import decode_text

HOST_FILE = "host.json"
# Read-only pipelines run on an unchanged machine give the same Execution on every host made from the same
# bundle (the engine is deterministic: no clock, no randomness). A fleet lab serves hundreds of hosts from
# a dozen bundles in one process, so such results are shared by content: (profile digest, exact pipeline).
_RUN_MEMO = SharedMemo(256)
_KEYS: "dict[int, tuple[list, str]]" = {}  # id(statements) -> (statements, exact text): the protocol side
# hands every host the same statements object for the same pipeline


def _pipeline_key(statements: list) -> str:
    got = _KEYS.get(id(statements))
    if got is not None and got[0] is statements:
        return got[1]
    key = repr([[(c.text, c.is_script, c.parameters) for c in st] for st in statements])
    if len(_KEYS) < 256:
        _KEYS[id(statements)] = (statements, key)
    return key


ENGINE_FAULTS = ("not_elevated",)  # fault kinds the engine implements (the protocol server does the rest)


def _fault_items(spec: Any) -> list:
    if spec is None or spec == {} or spec == []:
        return []
    if isinstance(spec, (str, dict)):
        return [spec]
    return list(spec)


def _fault_kind(item: Any) -> str:
    kind = item if isinstance(item, str) else (item.get("kind", "") if isinstance(item, dict) else "")
    return str(kind).strip().lower().replace("-", "_")


class _Shared:
    """What every host made from one bundle shares, computed once: host.json, the fault split, the
    pristine machine (parsed texts; never changed: a host that changes state works on its own copy),
    $PSVersionTable and the profile digest that keys the shared pipeline results."""

    def __init__(self, name: str, texts: dict[str, Optional[str]], meta: dict) -> None:
        self.meta = meta
        lab = meta.get("lab") if isinstance(meta.get("lab"), dict) else {}
        self.fault_spec = lab.get("fault") or {}
        items = _fault_items(self.fault_spec)
        self.engine_faults = [i for i in items if _fault_kind(i) in ENGINE_FAULTS]
        server = [i for i in items if _fault_kind(i) not in ENGINE_FAULTS]
        faults: Any
        if isinstance(self.fault_spec, dict) or isinstance(self.fault_spec, str):
            faults = server[0] if server else {}
        else:
            faults = server
        if isinstance(faults, str):
            faults = {"kind": faults}
        self.faults = faults
        self.machine = Machine(texts, meta, name)
        not_elevated = any(_fault_kind(i) == "not_elevated" for i in items)
        self.elevated = bool(lab.get("elevated", True)) and not not_elevated
        self.machine.elevated = self.elevated
        ps = default_psversion(str(meta.get("os_version") or ""))
        if isinstance(lab.get("psversion"), dict):
            ps.update(lab["psversion"])
        self.psversion = ps
        self.profile = hashlib.sha256(json.dumps(
            [self.machine.hostname, sorted((k, v) for k, v in texts.items() if v is not None), meta, self.elevated,
             [repr(i) for i in self.engine_faults], self.psversion], sort_keys=True, default=repr,
        ).encode("utf-8", "surrogatepass")).digest()


class LabHost:
    """An emulated Windows host: ``run`` answers pipelines, thread-safe and deterministic.

    ``faults`` is host.json ``lab.fault`` for the protocol server (its kinds: refuse, auth, hang,
    hang_receive, slow, latency, wsman_fault, garbage, reset, http500); the engine's own kind
    ``not_elevated`` is taken out of it (it shows as ``elevated`` False and in ``engine_faults``) so
    that the server's fault parser never meets a kind it does not know. ``fault_spec`` keeps the
    value exactly as host.json gives it."""

    def __init__(self, name: str, bundle_dir: Optional[Path], texts: dict[str, Optional[str]], meta: dict,
                 *, shared: Optional["_Shared"] = None):
        sh = shared if shared is not None else _Shared(name, texts, meta)
        self._shared = sh
        self.name = name
        self.bundle_dir = bundle_dir
        self.meta = sh.meta
        self.fault_spec = sh.fault_spec
        self.engine_faults = sh.engine_faults
        self.faults: Any = sh.faults
        self.elevated = sh.elevated
        self.hostname = sh.machine.hostname
        self.psversion = sh.psversion
        self._profile = sh.profile
        self._own: Optional[Machine] = None  # this host's machine, once it differs from the bundle's (copy-on-write)
        self.command_log: list[dict] = []
        self._lock = threading.RLock()

    def twin(self, name: str) -> "LabHost":
        """Another host made from the same bundle (what ``from_bundle(self.bundle_dir, name)`` gives), sharing
        the parsed bundle and its pristine machine: a fleet of 10,000 hosts from a dozen bundles parses a
        dozen. The twin's state is its own (copy-on-write: its machine is copied at its first change)."""
        sh = self._shared
        same = bool(sh.meta.get("hostname") or sh.meta.get("host"))  # else the machine is named after the host
        return LabHost(name, self.bundle_dir, sh.machine.orig, sh.meta, shared=sh if same else None)

    @property
    def machine(self) -> Machine:
        """This host's own machine (made now if it had none: whoever asks for it may change it)."""
        with self._lock:
            if self._own is None:
                self._own = self._shared.machine.clone()
            return self._own

    def _view(self) -> Machine:
        """The machine to read: the host's own once it has one, else the bundle's pristine one."""
        own = self._own
        return own if own is not None else self._shared.machine

    @classmethod
    def from_bundle(cls, path: Path, name: Optional[str] = None) -> "LabHost":
        path = Path(path)
        meta: dict = {}
        hp = path / HOST_FILE
        if hp.is_file():
            loaded = json.loads(decode_text(hp.read_bytes()))
            if isinstance(loaded, dict):
                meta = loaded
        texts: dict[str, Optional[str]] = {}
        for kind, fname in FILES.items():
            fp = path / fname
            texts[kind] = decode_text(fp.read_bytes()) if fp.is_file() else None
        return cls(name or path.name, path, texts, meta)

    def run(self, statements: list[api.Statement]) -> api.Execution:
        with self._lock:
            own = self._own
            memo_key = None
            if own is None or not own.changed():
                memo_key = (self._profile, _pipeline_key(statements))
            if memo_key is None:
                ex = cmd.run_statements(own, statements)
            else:
                ex = _RUN_MEMO.get_or_compute(
                    memo_key, lambda: self._run_unchanged(statements),
                    keep=lambda e: (not e.changed_state and (self._own is None or not self._own.changed())
                                    and all(type(x) in (str, bool) for x in e.output)))
            self.command_log.append({"key": api.canonical_key(statements), "changed_state": ex.changed_state,
                                     "failed": ex.failed, "time": time.time()})
            return ex

    def _run_unchanged(self, statements: list[api.Statement]) -> api.Execution:
        """Run on a machine in its original state: the host's own, else a copy of the bundle's pristine one,
        kept as the host's own only when the pipeline changed it (the pristine one is never written)."""
        if self._own is not None:
            return cmd.run_statements(self._own, statements)
        m = self._shared.machine.clone()
        ex = cmd.run_statements(m, statements)
        if ex.changed_state or m.changed():
            self._own = m
        return ex

    def snapshot(self) -> dict[str, str]:
        """The bundle's texts as the host would print them now (after any state change)."""
        with self._lock:
            return self._view().snapshot()

    def __repr__(self) -> str:
        return f"LabHost({self.name!r}, hostname={self.hostname!r}, elevated={self.elevated})"

