"""IIS application pools: ``Get-IISAppPool | Out-String -Width 512`` → :class:`IisAppPoolsResult`.

Why this source: three captures of its table in the corpus (raw/get-iisapppool: a book lab, the
Microsoft docs example, a zh-TW host with the six default pools), columns ``Name  Status  CLR Ver
Pipeline Mode  Start Mode``. The WebAdministration view of ``Get-ChildItem IIS:\\AppPools`` /
``New-WebAppPool`` (``Name  State  Applications``; raw/get-webapppool, three captures) and
``appcmd list apppool`` lines (``APPPOOL "DefaultAppPool" (MgdVersion:v4.0,MgdMode:Integrated,
state:Started)``; raw/appcmd-list-apppool, two captures) parse too, as do ``appcmd list wp`` lines
(``WP "3577" (apppool:DefaultAppPool)``, raw/appcmd-list-wp; the released ``applicationPool:`` key
is accepted as well — from code comments quoted in the corpus INDEX, a **guess**) which give the
worker PIDs of a pool.

A pool's state comes from WAS: ``Unknown`` when WAS/W3SVC is stopped or the caller cannot ask
(azure-pipelines-tasks-18901). Pool names hold spaces (``Classic .NET AppPool``) so the table is cut
by column positions; a name longer than its column wraps onto the next line (joined as in
iis_sites.py, same guess).
"""

from __future__ import annotations

import re
from typing import Optional

from .common import detect_error, is_marker, never_raise, split_lines, to_int
from .pstable import Columns, header_at
from .records import IisAppPool, IisAppPoolsResult

_APPCMD_RE = re.compile(r'^(?P<kind>APPPOOL|WP)\s+"(?P<name>[^"]*)"\s+\((?P<attrs>.*)\)\s*$', re.IGNORECASE)


def _appcmd(text: str, no: int, res: IisAppPoolsResult, by_name: dict[str, IisAppPool]) -> bool:
    m = _APPCMD_RE.match(text)
    if not m:
        return False
    attrs = {}
    for part in m.group("attrs").split(","):
        k, _, v = part.partition(":")
        attrs[k.strip().lower()] = v.strip()
    if m.group("kind").upper() == "APPPOOL":
        pool = by_name.get(m.group("name").casefold())
        if pool is None:
            pool = IisAppPool(name=m.group("name"), line=no)
            res.pools.append(pool)
            by_name[pool.name.casefold()] = pool
        pool.state = attrs.get("state") or pool.state
        pool.clr_version = attrs.get("mgdversion", pool.clr_version)
        pool.pipeline_mode = attrs.get("mgdmode") or pool.pipeline_mode
        return True
    pid = to_int(m.group("name"))
    name = attrs.get("applicationpool") or attrs.get("apppool")
    if pid is None or not name:
        res.warnings.append(f"line {no}: worker process line without PID or pool {text[:60]!r}")
        return True
    pool = by_name.get(name.casefold())
    if pool is None:
        pool = IisAppPool(name=name, line=no)
        res.pools.append(pool)
        by_name[name.casefold()] = pool
    if pid not in pool.worker_pids:
        pool.worker_pids.append(pid)
    return True


class _Table:
    def __init__(self, cols: Columns):
        self.cols = cols
        self.i_name = cols.index("name")
        self.i_state = cols.index("status", "state")
        self.i_clr = cols.index("clr ver", "clr version", "managedruntimeversion")
        self.i_pipe = cols.index("pipeline mode", "managedpipelinemode")
        self.i_start = cols.index("start mode", "startmode")
        self.i_apps = cols.index("applications")
        self.cur: Optional[IisAppPool] = None

    def ok(self) -> bool:
        return self.i_name == 0 and self.i_state is not None

    def row(self, raw: str, no: int, res: IisAppPoolsResult, by_name: dict[str, IisAppPool]) -> None:
        cells = self.cols.cells(raw)

        def get(i: Optional[int]) -> str:
            return cells[i] if i is not None and i < len(cells) else ""

        name, state = get(self.i_name), get(self.i_state)
        if name and state:
            pool = IisAppPool(name=name, state=state, line=no)
            if self.i_clr is not None:
                pool.clr_version = get(self.i_clr)
            pool.pipeline_mode = get(self.i_pipe) or None
            pool.start_mode = get(self.i_start) or None
            apps = get(self.i_apps)
            if apps:
                pool.applications.append(apps)
            old = by_name.get(name.casefold())
            if old is not None:
                res.pools.remove(old)
            res.pools.append(pool)
            by_name[name.casefold()] = pool
            self.cur = pool
            return
        if self.cur is None:
            res.warnings.append(f"line {no}: row without a pool {raw.strip()[:60]!r}")
            return
        if name:  # wrapped name
            width = self.cols.starts[1] - 1 if len(self.cols.starts) > 1 else 0
            old_key = self.cur.name.casefold()
            self.cur.name += ("" if len(self.cur.name) >= width else " ") + name
            by_name.pop(old_key, None)
            by_name[self.cur.name.casefold()] = self.cur
        apps = get(self.i_apps)
        if apps:
            self.cur.applications.append(apps)


@never_raise(IisAppPoolsResult)
def parse_iis_apppools(text: str) -> IisAppPoolsResult:
    """Parse ``Get-IISAppPool`` / ``Get-ChildItem IIS:\\AppPools`` / ``appcmd list apppool|wp`` output;
    never raises. An empty text is an empty result (IIS not installed is not an error)."""
    res = IisAppPoolsResult()
    by_name: dict[str, IisAppPool] = {}
    lines = split_lines(text)
    table: Optional[_Table] = None
    for k, ln in enumerate(lines):
        if not ln.text or is_marker(ln.text):
            continue
        cols = header_at(lines, k)
        if cols is not None:
            t = _Table(cols)
            if t.ok():
                table = t
                continue
        if k + 1 < len(lines) and header_at(lines, k + 1) is not None:
            continue  # a header line
        if _appcmd(ln.text, ln.no, res, by_name):
            continue
        if table is not None:
            table.row(ln.raw, ln.no, res, by_name)
    if not res.pools:
        res.error = detect_error(text)
    return res
