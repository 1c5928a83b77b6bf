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


class LabHost:
    """An emulated Windows host: ``run`` answers pipelines, thread-safe and deterministic.

    ``faults`` is host.json ``lab.fault`` for the protocol server (its kinds: refuse, auth, hang,
    hang_receive, slow, latency, wsman_fault, garbage, reset, http500); the engine's own kind
    ``not_elevated`` is taken out of it (it shows as ``elevated`` False and in ``engine_faults``) so
    that the server's fault parser never meets a kind it does not know. ``fault_spec`` keeps the
    value exactly as host.json gives it."""

    def __init__(self, name: str, bundle_dir: Optional[Path], texts: dict[str, Optional[str]], meta: dict):
        self.name = name
        self.bundle_dir = bundle_dir
        self.meta = meta
        lab = meta.get("lab") if isinstance(meta.get("lab"), dict) else {}
        self.fault_spec = lab.get("fault") or {}
        items = _fault_items(self.fault_spec)
        self.engine_faults = [i for i in items if _fault_kind(i) in ENGINE_FAULTS]
        server = [i for i in items if _fault_kind(i) not in ENGINE_FAULTS]
        if isinstance(self.fault_spec, dict) or isinstance(self.fault_spec, str):
            self.faults: Any = server[0] if server else {}
        else:
            self.faults = server
        if isinstance(self.faults, str):
            self.faults = {"kind": self.faults}
        self.machine = Machine(texts, meta, name)
        not_elevated = any(_fault_kind(i) == "not_elevated" for i in items)
        self.elevated = bool(lab.get("elevated", True)) and not not_elevated
        self.machine.elevated = self.elevated
        self.hostname = self.machine.hostname
        ps = default_psversion(str(meta.get("os_version") or ""))
        if isinstance(lab.get("psversion"), dict):
            ps.update(lab["psversion"])
        self.psversion = ps
        self.command_log: list[dict] = []
        self._lock = threading.RLock()
        self._profile = hashlib.sha256(json.dumps(
            [self.machine.hostname, sorted((k, v) for k, v in texts.items() if v is not None), meta, self.elevated,
             [repr(i) for i in self.engine_faults], self.psversion], sort_keys=True, default=repr,
        ).encode("utf-8", "surrogatepass")).digest()

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
            memo_key = None
            if not self.machine.changed():
                memo_key = (self._profile, _pipeline_key(statements))
            if memo_key is None:
                ex = cmd.run_statements(self.machine, statements)
            else:
                ex = _RUN_MEMO.get_or_compute(
                    memo_key, lambda: cmd.run_statements(self.machine, statements),
                    keep=lambda e: (not e.changed_state and not self.machine.changed()
                                    and all(type(x) in (str, bool) for x in e.output)))
            self.command_log.append({"key": api.canonical_key(statements), "changed_state": ex.changed_state,
                                     "failed": ex.failed, "time": time.time()})
            return ex

    def snapshot(self) -> dict[str, str]:
        """The bundle's texts as the host would print them now (after any state change)."""
        with self._lock:
            return self.machine.snapshot()

    def __repr__(self) -> str:
        return f"LabHost({self.name!r}, hostname={self.hostname!r}, elevated={self.elevated})"

