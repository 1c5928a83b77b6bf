"""Audit commands: `history`, `diff`, `policy check|learn`, `report`; and the history/drift/policy hooks
of `scan` and `analyze` (``AuditRun``).

Exit codes added here: 4 a policy violation (``--policy``, ``policy check``), 5 drift
(``--fail-on-drift``). When several apply: 130, 2, then 4, 5, 3, 1.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, overload

import typer

if TYPE_CHECKING:  # imported where used
    from remote.analysis.verdicts import HostReport
    from remote.audit.drift import Change
    from remote.audit.history import History, Run
    from remote.audit.policy import Policy, Violation
    from remote.audit.sources import Loaded

EXIT_POLICY, EXIT_DRIFT = 4, 5

DbOpt = typer.Option(None, "--db", help="History database (default: $XDG_DATA_HOME/port80/history.sqlite, "
                     "i.e. ~/.local/share/port80/history.sqlite).")
NoHistoryOpt = typer.Option(False, "--no-history", help="Do not record this run in the history database.")
FailOnDriftOpt = typer.Option(False, "--fail-on-drift", help="Exit 5 when something changed since the previous "
                              "complete run of the same inventory (from the history database).")
PolicyOpt = typer.Option(None, "--policy", help="TOML policy file: print each violation; exit 4 on any.")
ShowAllOpt = typer.Option(False, "--show-all", help="Table: list every host that was not fully scanned "
                          "(default: grouped by class and message).")


def _fail(message: str, code: int = 2) -> typer.Exit:
    from remote.cli.app import fail  # the one error line (sanitised); imported late: app imports this module

    return fail(message, code)


def _warn(message: str) -> None:
    from remote.report.sanitize import shown

    typer.echo(f"port80: warning: {shown(message)}", err=True)


def db_path(db: Optional[Path]) -> Path:
    from remote.audit.history import default_db_path

    return Path(db) if db is not None else default_db_path()


@overload
def load_policy_or_exit(path: Path) -> Policy: ...
@overload
def load_policy_or_exit(path: Optional[Path]) -> Optional[Policy]: ...
def load_policy_or_exit(path: Optional[Path]) -> Optional[Policy]:
    if path is None:
        return None
    from remote.audit.policy import PolicyError, load_policy

    try:
        return load_policy(path)
    except PolicyError as e:
        raise _fail(str(e))


class AuditRun:
    """What `scan` and `analyze` do besides their report: record the run in the history database,
    compare it with the previous complete run of the same source, check a policy."""

    def __init__(self, command: str, source_key: str, *, db: Optional[Path], no_history: bool,
                 policy: Optional[Path], fail_on_drift: bool, inventory: Optional[str] = None,
                 options: Optional[dict[str, Any]] = None, evidence_dir: Optional[str] = None):
        self.command, self.source_key = command, source_key
        self.db = db_path(db)
        self.record = not no_history
        self.fail_on_drift = fail_on_drift
        self.policy = load_policy_or_exit(policy)
        self.run_id: Optional[int] = None
        self.changes: Optional[list[Change]] = None
        self.previous_label = ""
        self.violations: Optional[list[Violation]] = None
        self.drift_failed = False
        if self.record:
            from remote.audit.history import History, HistoryError

            try:
                with History(self.db) as h:
                    self.run_id = h.start_run(command, source_key, inventory, options, evidence_dir)
            except (HistoryError, sqlite3.Error) as e:
                if fail_on_drift:
                    raise _fail(f"{e} (needed by --fail-on-drift)")
                _warn(f"{e}: this run is not recorded")
                self.record = False

    def finish(self, reports: list[HostReport], interrupted: bool = False) -> None:
        from remote.audit.history import History, HistoryError

        if self.record or self.fail_on_drift:
            try:
                with History(self.db) as h:
                    self._finish_in(h, reports, interrupted)
            except (HistoryError, sqlite3.Error) as e:  # the report still comes; the evidence is on disk
                if self.fail_on_drift and self.changes is None:
                    typer.echo(f"port80: error: {e} (needed by --fail-on-drift)", err=True)
                    self.drift_failed = True
                else:
                    _warn(f"{e}: this run is not recorded")
        from remote.report.sanitize import terminal_text

        if self.changes:
            from remote.audit import drift

            typer.echo(terminal_text(drift.render(self.changes, "table", self.previous_label, "this run")), err=True,
                       nl=False)
        elif self.changes is not None and self.previous_label:
            typer.echo(f"port80: drift: nothing changed since {self.previous_label}", err=True)
        if self.policy is not None:
            from remote.audit import policy as pol

            self.violations = pol.check(self.policy, reports)
            typer.echo(terminal_text(pol.render(self.violations, "table", self.policy.source, "this run",
                                                len(reports))), err=True, nl=False)

    def _finish_in(self, h: History, reports: list[HostReport], interrupted: bool) -> None:
        if self.record and self.run_id is not None:
            h.finish_run(self.run_id, reports, "interrupted" if interrupted else "complete")
        if self.fail_on_drift:
            prev = self._previous(h)
            if prev is None:
                typer.echo("port80: drift: no previous complete run of this inventory to compare with", err=True)
                self.changes = []
            else:
                from remote.audit.drift import diff

                self.previous_label = prev.label
                self.changes = diff(h.reports(prev.id), reports)

    def _previous(self, h: History) -> Optional[Run]:
        if self.run_id is not None:
            return h.previous_complete(h.run(self.run_id))
        runs = h.runs(limit=1, source_key=self.source_key, status="complete")
        return runs[0] if runs else None

    def render(self, reports: list[HostReport], fmt: str, ports: list[int], show_all: bool = False) -> str:
        if fmt == "html":
            from remote.report.html import render_html

            return render_html(reports, ports, changes=self.changes, diff_from=self.previous_label,
                               violations=self.violations, policy=self.policy.source if self.policy else None)
        from remote.report.render import render

        return render(reports, fmt, ports, show_all=show_all)

    def exit_code(self, base: int) -> int:
        if self.drift_failed:
            return 2
        if self.violations:
            return EXIT_POLICY
        if self.fail_on_drift and self.changes:
            return EXIT_DRIFT
        return base


def source_key_for_inventory(inventory: Path, limit: Optional[str], shard: Optional[str]) -> str:
    key = f"inventory:{Path(inventory).resolve()}"
    if limit:
        key += f" --limit {limit}"
    if shard:
        key += f" --shard {shard}"
    return key


def source_key_for_paths(paths: List[Path]) -> str:
    return "analyze:" + ",".join(sorted(str(Path(p).resolve()) for p in paths))


# --- commands ------------------------------------------------------------------------------------------

def _emit(text: str, output: Optional[Path]) -> None:
    from remote.cli.app import emit  # the one writer: sanitised text to stdout or a file

    emit(text, output)


def _load(text: str, db: Path, ports: Optional[List[int]] = None) -> Loaded:
    from remote.audit.sources import SourceError, load

    try:
        return load(text, db, list(ports) if ports else None)
    except SourceError as e:
        raise _fail(str(e))


def _latest(db: Path) -> Loaded:
    from remote.audit.sources import SourceError, latest

    try:
        return latest(db)
    except SourceError as e:
        raise _fail(str(e))


def _check_fmt(fmt: str, formats: Sequence[str]) -> str:
    if fmt not in formats:
        raise _fail(f"--format {fmt}: choose from {', '.join(formats)}")
    return fmt


def register(app: typer.Typer) -> None:
    policy_app = typer.Typer(no_args_is_help=True, help="Policy as code: check a run against a TOML policy, "
                             "or learn one from a run.")
    app.add_typer(policy_app, name="policy")

    @app.command("history")
    def history_cmd(
        host: Optional[str] = typer.Option(None, "--host", help="Host pattern (as --limit: host globs, groups): "
                                           "the timeline of these hosts."),
        limit: int = typer.Option(20, "--limit", "-n", help="At most this many runs."),
        fmt: str = typer.Option("table", "--format", "-f", help="table | json"),
        db: Optional[Path] = DbOpt,
    ) -> None:
        """List recorded runs, newest first, or (--host) each host's timeline per port."""
        from tabulate import tabulate

        from remote.audit.history import History, HistoryError
        from remote.audit.policy import select
        from remote.report.sanitize import shown

        _check_fmt(fmt, ("table", "json"))
        path = db_path(db)
        if not path.exists():
            raise _fail(f"{path}: no history recorded yet (scan or analyze first, or name --db)")
        try:
            with History(path) as h:
                if host is None:
                    runs = h.runs(limit=limit)
                    if fmt == "json":
                        typer.echo(json.dumps([r.__dict__ for r in runs], indent=2, ensure_ascii=False))
                        return
                    rows = [[r.id, r.started_at, r.status, r.command, r.host_count,
                             shown(r.inventory or r.source_key.split(":", 1)[-1]), shown(r.evidence_dir or "")]
                            for r in runs]
                    typer.echo(tabulate(rows, headers=["RUN", "STARTED (UTC)", "STATUS", "COMMAND", "HOSTS",
                                                       "INVENTORY / SOURCE", "EVIDENCE"]))
                    return
                try:
                    names = sorted(select(host, h.host_groups()))
                except Exception as e:  # a malformed pattern
                    raise _fail(f"--host {host!r}: {e}")
                rows_ = h.timeline(names, limit)
        except (HistoryError, sqlite3.Error) as e:
            raise _fail(str(e))
        if not rows_:
            raise _fail(f"--host {host!r}: no recorded host matches", 1)
        if fmt == "json":
            typer.echo(json.dumps(rows_, indent=2, ensure_ascii=False))
            return
        from remote.report.sanitize import cut, shown

        table = [[shown(r["host"]), r["run"], r["time"], shown(r["status"]), r["port"] if r["port"] is not None else "",
                  shown(r["holder"] or ""), cut(", ".join(r["products"]), 50)] for r in rows_]
        typer.echo(tabulate(table, headers=["HOST", "RUN", "TIME (UTC)", "STATUS", "PORT", "HOLDER", "PRODUCTS"]))

    @app.command("diff")
    def diff_cmd(
        run_a: Optional[str] = typer.Argument(None, help="Run id or scan folder (default: the complete run "
                                              "before RUN_B of the same inventory)."),
        run_b: Optional[str] = typer.Argument(None, help="Run id or scan folder (default: the newest complete run)."),
        fmt: str = typer.Option("table", "--format", "-f", help="table | json | csv | markdown"),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
        fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help="Exit 5 when something changed."),
        db: Optional[Path] = DbOpt,
    ) -> None:
        """What changed between two runs, per host and port: holder, registrations, products, status."""
        from remote.audit import drift
        from remote.audit.history import History, HistoryError
        from remote.audit.sources import Loaded

        _check_fmt(fmt, drift.FORMATS)
        path = db_path(db)
        if run_a is not None and run_b is not None:
            a, b = _load(run_a, path), _load(run_b, path)
        elif run_a is not None:
            a, b = _load(run_a, path), _latest(path)
        else:
            try:
                with History(path) as h:
                    ra, rb = h.last_two_complete()
                    a, b = Loaded(ra.label, h.reports(ra.id), ra), Loaded(rb.label, h.reports(rb.id), rb)
            except (HistoryError, sqlite3.Error) as e:
                raise _fail(str(e))
        changes = drift.diff(a.reports, b.reports)
        _emit(drift.render(changes, fmt, a.label, b.label), output)
        raise typer.Exit(EXIT_DRIFT if fail_on_drift and changes else 0)

    @policy_app.command("check")
    def policy_check(
        policy: Path = typer.Option(..., "--policy", help="TOML policy file."),
        source: Optional[str] = typer.Argument(None, help="Run id or scan folder (default: the newest complete run)."),
        inventory: Optional[Path] = typer.Option(None, "--inventory", "-i", help="Take the hosts' groups from this "
                                                 "inventory (default: the groups the run recorded)."),
        fmt: str = typer.Option("table", "--format", "-f", help="table | json | csv | markdown"),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
        db: Optional[Path] = DbOpt,
    ) -> None:
        """Check a run against a policy: each violation with host, port, rule (file:line) and evidence. Exit 4
        on any violation."""
        from remote.audit import policy as pol

        _check_fmt(fmt, pol.FORMATS)
        p = load_policy_or_exit(policy)
        path = db_path(db)
        loaded = _load(source, path) if source else _latest(path)
        if inventory is not None:
            _apply_inventory_groups(loaded.reports, inventory)
        violations = pol.check(p, loaded.reports)
        _emit(pol.render(violations, fmt, str(policy), loaded.label, len(loaded.reports)), output)
        raise typer.Exit(EXIT_POLICY if violations else 0)

    @policy_app.command("learn")
    def policy_learn(
        source: Optional[str] = typer.Argument(None, help="Run id or scan folder (default: the newest complete run)."),
        inventory: Optional[Path] = typer.Option(None, "--inventory", "-i", help="Take the hosts' groups from this "
                                                 "inventory (default: the groups the run recorded)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the policy here (default: stdout)."),
        db: Optional[Path] = DbOpt,
    ) -> None:
        """Write a policy that the run satisfies (the fleet as it is now, as a baseline to review)."""
        from remote.audit.policy import learn

        path = db_path(db)
        loaded = _load(source, path) if source else _latest(path)
        if inventory is not None:
            _apply_inventory_groups(loaded.reports, inventory)
        _emit(learn(loaded.reports, loaded.label), output)

    @app.command("report")
    def report_cmd(
        source: Optional[str] = typer.Argument(None, help="Run id or scan folder (default: the newest complete run)."),
        html: bool = typer.Option(False, "--html", help="Self-contained HTML page (same as --format html)."),
        fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json | jsonl | markdown | html"),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
        previous: Optional[str] = typer.Option(None, "--previous", help="Run id or folder to show drift from "
                                               "(HTML: a drift section)."),
        policy: Optional[Path] = PolicyOpt,
        show_all: bool = ShowAllOpt,
        db: Optional[Path] = DbOpt,
    ) -> None:
        """The fleet report of a recorded run or a scan folder, in any format; --html for one page to share."""
        from remote.report.formats import FORMATS

        fmt = "html" if html else fmt
        _check_fmt(fmt, FORMATS)
        p = load_policy_or_exit(policy)
        path = db_path(db)
        loaded = _load(source, path) if source else _latest(path)
        reports = loaded.reports
        ports = sorted({x.port for r in reports for x in r.ports}) or [80]
        changes, prev_label, violations = None, "", None
        if previous is not None:
            from remote.audit.drift import diff

            prev = _load(previous, path)
            changes, prev_label = diff(prev.reports, reports), prev.label
        if p is not None:
            from remote.audit.policy import check

            violations = check(p, reports)
        if fmt == "html":
            from remote.report.html import render_html

            label = loaded.label if loaded.run is not None else Path(loaded.label).name
            text = render_html(reports, ports, title=f"port80 report: {label}", changes=changes,
                               diff_from=prev_label, violations=violations, policy=str(policy) if policy else None)
        else:
            from remote.report.render import render

            text = render(reports, fmt, ports, show_all=show_all)
        _emit(text, output)
        raise typer.Exit(EXIT_POLICY if violations else 0)


def _apply_inventory_groups(reports: list[HostReport], inventory: Path) -> None:
    from remote.inventory.ansible_ini import InventoryError, load_inventory

    try:
        inv = load_inventory(inventory)
    except InventoryError as e:
        raise _fail(str(e))
    except OSError as e:
        raise _fail(f"{inventory}: cannot read ({e.strerror or e})")
    for r in reports:
        if r.host in inv:
            r.groups = list(inv.host(r.host).groups)
