"""Where a past result comes from: a run of the history database (its id) or a folder on disk (a scan
folder with results.jsonl / report.json, a report.json or results.jsonl file, or a folder of evidence
bundles, analysed afresh). One place for ``diff``, ``policy check`` and ``report``."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from remote.errors import Port80Error
from remote.audit.history import History, HistoryError, Run

if TYPE_CHECKING:
    from remote.analysis.verdicts import HostReport


class SourceError(Port80Error):
    """A run or folder that cannot be loaded (message names it)."""


@dataclass
class Loaded:
    label: str
    reports: list["HostReport"]
    run: Optional[Run] = None
    path: Optional[Path] = None


def run_id(text: str) -> Optional[int]:
    t = text.strip().lstrip("#")
    return int(t) if t.isdigit() else None


def _ordered(reports: list["HostReport"], path: Path) -> list["HostReport"]:
    """The scan's own host order (report.json: inventory order) when there is one, else by name:
    results.jsonl is in the order hosts finished."""
    import json

    order: dict[str, int] = {}
    doc = (path if path.is_dir() else path.parent) / "report.json"
    try:
        order = {h["host"]: i for i, h in enumerate(json.loads(doc.read_text(encoding="utf-8"))["hosts"])}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return sorted(reports, key=lambda r: (order.get(r.host, len(order)), r.host))


def load_folder(path: Path, ports: Optional[list[int]] = None) -> Loaded:
    from remote.evidence.bundle import BundleError, find_bundles, read_bundle
    from remote.runner.scan import RESULTS, merge_results

    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such run id, file or folder")
    if path.is_file() or (path / RESULTS).is_file() or (path / "report.json").is_file():
        target = path if path.is_file() or (path / RESULTS).is_file() else path / "report.json"
        try:
            reports = merge_results([target])
        except (OSError, ValueError) as e:
            raise SourceError(f"{path}: cannot read ({e})") from None
        return Loaded(str(path), _ordered(reports, path), path=path)
    from remote.analysis.verdicts import analyze_bundle

    try:
        dirs = find_bundles([path])
    except BundleError as e:
        raise SourceError(str(e)) from None
    return Loaded(str(path), [analyze_bundle(read_bundle(d), ports or [80]) for d in dirs], path=path)


def load(text: str, db: Path, ports: Optional[list[int]] = None) -> Loaded:
    """A run id (``12`` or ``#12``) from the history database, else a path."""
    rid = run_id(text)
    if rid is not None and not Path(text).exists():
        try:
            with History(db) as h:
                run = h.run(rid)
                return Loaded(run.label, h.reports(rid), run=run)
        except (HistoryError, sqlite3.Error) as e:
            raise SourceError(str(e)) from None
    return load_folder(Path(text), ports)


def latest(db: Path) -> Loaded:
    """The newest complete run."""
    try:
        with History(db) as h:
            runs = h.runs(limit=1, status="complete")
            if not runs:
                raise SourceError(f"{db}: no complete run recorded yet")
            return Loaded(runs[0].label, h.reports(runs[0].id), run=runs[0])
    except (HistoryError, sqlite3.Error) as e:
        raise SourceError(str(e)) from None
