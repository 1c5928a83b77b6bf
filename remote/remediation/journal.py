"""The journal of ``port80 fix`` (JSONL, one object a line) and the undo plans read from it. Pure:
journal lines in, records and plans out (``remote.remediation.apply`` writes the lines)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from remote.remediation.plan import Action, HostPlan, inverse

# --- the journal --------------------------------------------------------------------------------------
#
# JSONL, one object a line, appended and flushed one at a time by remote.remediation.apply:
#   {"event": "run", "run", "mode": "apply"|"undo", "port", "strategy", "undoes"?, "ts"}
#   {"event": "host", "run", "mode", "host", "holder", "who", "ts"}          the verdict before
#   {"event": "intent", "run", "mode", "host", "seq", "action": {...}, "command", "ts"}   BEFORE it runs
#   {"event": "applied"|"failed"|"unknown", "run", "mode", "host", "seq", "command", "error"?, "ts"}
#   {"event": "verified", "run", "mode", "host", "holder", "who", "verified", "ts"}  after the re-scan
# "unknown": the connection broke while the action ran: it may or may not have taken effect.

OUTCOMES = ("applied", "failed", "unknown")


@dataclass
class JournalEntry:
    run: str
    host: str
    seq: int
    action: Action
    outcome: Optional[str] = None  # None: intent without result (a crash, a deadline)
    error: Optional[str] = None

    @property
    def to_restore(self) -> bool:
        return self.outcome in (None, "applied", "unknown")


@dataclass
class Journal:
    entries: list[JournalEntry] = field(default_factory=list)  # in the order their intents were written
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> its first "host" record
    after: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> its last "verified" record
    runs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # "LINE: what is wrong with it"


def read_journal(lines: Iterable[str]) -> Journal:
    """Parse journal lines (a torn last line, e.g. from a crash, is reported and skipped)."""
    j = Journal()
    by_key: dict[tuple[str, str, int], JournalEntry] = {}
    for no, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
            ev = rec.get("event")
            if ev == "run":
                j.runs.append(rec)
            elif ev == "host":
                j.hosts.setdefault(str(rec["host"]), rec)
            elif ev == "verified":
                j.after[str(rec["host"])] = rec
            elif ev == "intent":
                e = JournalEntry(str(rec.get("run", "")), str(rec["host"]), int(rec["seq"]),
                                 Action.from_dict(rec["action"]))
                by_key[(e.run, e.host, e.seq)] = e
                j.entries.append(e)
            elif ev in OUTCOMES:
                found = by_key.get((str(rec.get("run", "")), str(rec["host"]), int(rec["seq"])))
                if found is None:
                    j.warnings.append(f"{no}: a result without its intent; ignored")
                else:
                    found.outcome, found.error = ev, rec.get("error")
            else:
                j.warnings.append(f"{no}: unknown event {ev!r}; ignored")
        except (ValueError, KeyError, TypeError) as exc:
            j.warnings.append(f"{no}: unreadable ({type(exc).__name__}: {exc}); ignored")
    return j


def undo_plans(journal: Journal, port: Optional[int] = None) -> list[HostPlan]:
    """Per host, the inverse of everything applied (or of unknown outcome), newest first."""
    port = port if port is not None else int(next((r.get("port") for r in journal.runs if r.get("port")), 80) or 80)
    order: list[str] = []
    for e in journal.entries:
        if e.host not in order:
            order.append(e.host)
    plans = []
    for host in order:
        mine = [e for e in journal.entries if e.host == host]
        before = journal.hosts.get(host, {})
        plan = HostPlan(host=host, port=int(port), strategy="undo", status="planned",
                        holder=str(before.get("holder") or "unknown"), who=str(before.get("who") or ""))
        after = journal.after.get(host)
        if after and after.get("holder"):
            plan.state_now = {"holder": str(after["holder"]), "who": str(after.get("who") or "")}
        for e in reversed(mine):
            if not e.to_restore:
                plan.notes.append(f"not undone: {e.action.command} failed in that run ({e.error or 'no detail'})")
                continue
            try:
                inv = inverse(e.action)
            except ValueError as exc:
                plan.notes.append(f"cannot undo {e.action.command}: {exc}")
                continue
            if inv is None:
                continue
            if e.outcome is None or e.outcome == "unknown":
                inv.why += " (outcome unknown: restored to be safe)"
            plan.actions.append(inv)
        if not plan.actions:
            plan.status, plan.reason = "nothing", "the journal records no change to undo on this host"
        plans.append(plan)
    return plans
