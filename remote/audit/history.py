"""Scan history: every ``scan`` and ``analyze`` run in one SQLite database.

Default place: ``$XDG_DATA_HOME/port80/history.sqlite`` (``~/.local/share/port80/history.sqlite``);
``--db PATH`` elsewhere; ``--no-history`` records nothing.

What a run holds: id, start and end time, the command, the inventory (or the analysed paths), the
options (never a secret), the evidence folder, and per host its status, groups and the full host
record of the report; per host and port the holder and the user-mode processes; per registration
its URL, queue, product, services, PIDs and evidence line. Enough to diff two runs without reading
the evidence again (``remote.audit.drift``).

Concurrency and crashes: WAL journal, a busy timeout, every write in one short ``BEGIN IMMEDIATE``
transaction, so several port80 processes writing at once all land. A run is inserted as
``running`` before its hosts are scanned and set to ``complete`` (or ``interrupted``) at the end; a
process killed in between leaves the database valid and its run ``running``, which the next
opening of the database marks ``incomplete`` (the process id is gone).

The schema is versioned (``PRAGMA user_version``) and migrated forward by ``MIGRATIONS``, one
entry per version; a database made by a newer port80 is refused with a clear message.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence, TypeVar

from remote.errors import Port80Error

if TYPE_CHECKING:
    from remote.analysis.verdicts import HostReport

_T = TypeVar("_T")

BUSY_TIMEOUT_S = 60.0
RUN_STATUSES = ("running", "complete", "interrupted", "incomplete")

# one list of statements per schema version; version N is MIGRATIONS[N - 1]. Append, never edit.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            command TEXT NOT NULL,
            inventory TEXT,
            source_key TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            evidence_dir TEXT,
            status TEXT NOT NULL DEFAULT 'running',
            host_count INTEGER NOT NULL DEFAULT 0,
            pid INTEGER,
            machine TEXT,
            port80_version TEXT)""",
        "CREATE INDEX runs_by_source ON runs(source_key, id)",
        """CREATE TABLE hosts (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            host TEXT NOT NULL,
            address TEXT,
            status TEXT NOT NULL,
            error TEXT,
            groups TEXT NOT NULL DEFAULT '[]',
            evidence_dir TEXT,
            collected_at TEXT,
            report TEXT NOT NULL,
            PRIMARY KEY (run_id, host))""",
        "CREATE INDEX hosts_by_name ON hosts(host, run_id)",
        """CREATE TABLE ports (
            run_id INTEGER NOT NULL,
            host TEXT NOT NULL,
            port INTEGER NOT NULL,
            holder TEXT NOT NULL,
            holders TEXT NOT NULL DEFAULT '[]',
            processes TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (run_id, host, port),
            FOREIGN KEY (run_id, host) REFERENCES hosts(run_id, host) ON DELETE CASCADE)""",
        """CREATE TABLE registrations (
            run_id INTEGER NOT NULL,
            host TEXT NOT NULL,
            port INTEGER NOT NULL,
            url TEXT NOT NULL,
            queue TEXT,
            product TEXT,
            product_key TEXT,
            services TEXT NOT NULL DEFAULT '[]',
            pids TEXT NOT NULL DEFAULT '[]',
            evidence TEXT,
            FOREIGN KEY (run_id, host, port) REFERENCES ports(run_id, host, port) ON DELETE CASCADE)""",
        "CREATE INDEX registrations_by_run ON registrations(run_id, host, port)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryError(Port80Error):
    """The history database cannot be used (message names the file)."""


def default_db_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "port80" / "history.sqlite"


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Run:
    id: int
    started_at: str
    finished_at: Optional[str]
    command: str
    inventory: Optional[str]
    source_key: str
    options: dict[str, Any] = field(default_factory=dict)
    evidence_dir: Optional[str] = None
    status: str = "running"
    host_count: int = 0

    @property
    def label(self) -> str:
        return f"run {self.id} ({self.started_at})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class History:
    """One open history database. Use as a context manager, or call ``close()``."""

    def __init__(self, path: Path, timeout: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise HistoryError(f"{self.path}: cannot open the history database ({e})") from None
        try:
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._retry(lambda: self.db.execute("PRAGMA journal_mode = WAL").fetchone(), timeout)
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
            self._mark_dead_runs()
        except sqlite3.DatabaseError as e:
            self.db.close()
            raise HistoryError(f"{self.path}: not a usable port80 history database ({e})") from None

    @staticmethod
    def _retry(fn: Callable[[], _T], timeout: float) -> _T:
        end = time.monotonic() + timeout
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > end:
                    raise
                time.sleep(0.05)

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- schema ---------------------------------------------------------------------------------------
    def _write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(db)`` in one IMMEDIATE transaction (waits for other writers, then holds the lock)."""
        try:
            self._retry(lambda: self.db.execute("BEGIN IMMEDIATE"), BUSY_TIMEOUT_S)
            try:
                out = fn(self.db)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as e:  # disk full, read-only file, a corrupt page: one line naming the file
            raise HistoryError(f"{self.path}: cannot write the history database ({e})") from None
        return out

    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        if self.version() == SCHEMA_VERSION:
            return

        def up(db: sqlite3.Connection) -> None:
            have = int(db.execute("PRAGMA user_version").fetchone()[0])
            if have > SCHEMA_VERSION:
                raise HistoryError(f"{self.path}: history schema version {have} was written by a newer port80 "
                                   f"(this one knows up to {SCHEMA_VERSION})")
            for version in range(have + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version}")

        self._write(up)

    def _mark_dead_runs(self) -> None:
        me = socket.gethostname()
        rows = self.db.execute("SELECT id, pid FROM runs WHERE status = 'running' AND machine = ?", (me,)).fetchall()
        dead = [rid for rid, pid in rows if pid is None or (pid != os.getpid() and not _pid_alive(pid))]
        if dead:
            self._write(lambda db: db.executemany(
                "UPDATE runs SET status = 'incomplete' WHERE id = ? AND status = 'running'", [(d,) for d in dead]))

    # -- writing ----------------------------------------------------------------------------------
    def start_run(self, command: str, source_key: str, inventory: Optional[str] = None,
                  options: Optional[dict[str, Any]] = None, evidence_dir: Optional[str] = None) -> int:
        from remote import __version__

        def insert(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO runs (started_at, command, inventory, source_key, options, evidence_dir, status, pid, "
                "machine, port80_version) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (now_utc(), command, inventory, source_key, json.dumps(options or {}, sort_keys=True), evidence_dir,
                 os.getpid(), socket.gethostname(), __version__))
            rowid = cur.lastrowid
            assert rowid is not None  # set by every INSERT into a rowid table
            return rowid

        return self._write(insert)

    def finish_run(self, run_id: int, reports: Iterable["HostReport"], status: str = "complete") -> None:
        """Store every host of the run and set its final status, in one transaction."""
        from remote.report.render import host_to_dict

        if status not in RUN_STATUSES:
            raise ValueError(status)
        host_rows, port_rows, reg_rows = [], [], []
        seen: set[str] = set()
        for r in reports:
            if r.host in seen:
                continue
            seen.add(r.host)
            host_rows.append((run_id, r.host, r.address, r.status, r.error, json.dumps(list(r.groups)),
                              r.evidence_dir, r.collected_at, json.dumps(host_to_dict(r), ensure_ascii=False)))
            for p in r.ports:
                procs = sorted({ls.process or f"PID {ls.pid}" for ls in p.listeners if ls.pid != 4})
                port_rows.append((run_id, r.host, p.port, p.holder, json.dumps(p.holders), json.dumps(procs)))
                for g in p.registrations:
                    reg_rows.append((run_id, r.host, p.port, g.url, g.queue, g.product, g.product_key,
                                     json.dumps(g.services), json.dumps(g.pids), g.evidence))

        def store(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM registrations WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM ports WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM hosts WHERE run_id = ?", (run_id,))
            db.executemany("INSERT INTO hosts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", host_rows)
            db.executemany("INSERT OR REPLACE INTO ports VALUES (?, ?, ?, ?, ?, ?)", port_rows)
            db.executemany("INSERT INTO registrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", reg_rows)
            db.execute("UPDATE runs SET status = ?, finished_at = ?, host_count = ? WHERE id = ?",
                       (status, now_utc(), len(host_rows), run_id))

        self._write(store)

    # -- reading ----------------------------------------------------------------------------------
    _RUN_COLS = "id, started_at, finished_at, command, inventory, source_key, options, evidence_dir, status, host_count"

    def _run(self, row: Sequence[Any]) -> Run:
        return Run(id=row[0], started_at=row[1], finished_at=row[2], command=row[3], inventory=row[4],
                   source_key=row[5], options=json.loads(row[6] or "{}"), evidence_dir=row[7], status=row[8],
                   host_count=row[9])

    def runs(self, limit: Optional[int] = None, source_key: Optional[str] = None,
             status: Optional[str] = None) -> list[Run]:
        """Newest first."""
        sql, args = f"SELECT {self._RUN_COLS} FROM runs WHERE 1=1", []
        if source_key is not None:
            sql += " AND source_key = ?"
            args.append(source_key)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._run(r) for r in self.db.execute(sql, args)]

    def run(self, run_id: int) -> Run:
        row = self.db.execute(f"SELECT {self._RUN_COLS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise HistoryError(f"{self.path}: no run {run_id}")
        return self._run(row)

    def reports(self, run_id: int) -> list["HostReport"]:
        from remote.report.render import host_from_dict

        rows = self.db.execute("SELECT report FROM hosts WHERE run_id = ? ORDER BY rowid", (run_id,))
        return [host_from_dict(json.loads(r[0])) for r in rows]

    def previous_complete(self, run: Run) -> Optional[Run]:
        row = self.db.execute(f"SELECT {self._RUN_COLS} FROM runs WHERE source_key = ? AND status = 'complete' "
                              "AND id < ? ORDER BY id DESC LIMIT 1", (run.source_key, run.id)).fetchone()
        return self._run(row) if row else None

    def last_two_complete(self) -> tuple[Run, Run]:
        """The newest complete run and the complete run before it of the same inventory."""
        for newest in self.runs(status="complete"):
            before = self.previous_complete(newest)
            if before is not None:
                return before, newest
            break
        raise HistoryError(f"{self.path}: no two complete runs of the same inventory to compare "
                           "(name two runs or two scan folders)")

    def timeline(self, hosts: Iterable[str], limit: Optional[int] = None) -> list[dict[str, Any]]:
        """Per host and port, one row per run (newest first): status, holder, products."""
        out = []
        for host in hosts:
            sql = ("SELECT r.id, r.started_at, r.status, h.status, h.error, p.port, p.holder, p.processes FROM hosts h "
                   "JOIN runs r ON r.id = h.run_id LEFT JOIN ports p ON p.run_id = h.run_id AND p.host = h.host "
                   "WHERE h.host = ? ORDER BY r.id DESC, p.port")
            rows = self.db.execute(sql, (host,)).fetchall()
            run_ids = list(dict.fromkeys(r[0] for r in rows))[: limit or None]
            keep = set(run_ids)
            for rid, started, rstatus, hstatus, error, port, holder, procs in rows:
                if rid not in keep:
                    continue
                products = [x[0] for x in self.db.execute(
                    "SELECT DISTINCT product FROM registrations WHERE run_id = ? AND host = ? AND port = ? "
                    "AND product != '' ORDER BY product", (rid, host, port))]
                products += json.loads(procs or "[]")
                out.append({"host": host, "run": rid, "time": started, "run_status": rstatus, "status": hstatus,
                            "port": port, "holder": holder, "products": products, "error": error})
        return out

    def host_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT host FROM hosts ORDER BY host")]

    def host_groups(self) -> dict[str, list[str]]:
        """Each host's groups, as its newest run recorded them."""
        out: dict[str, list[str]] = {}
        for host, groups in self.db.execute("SELECT host, groups FROM hosts ORDER BY run_id"):
            out[host] = json.loads(groups or "[]")
        return out

    def integrity(self) -> str:
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])
