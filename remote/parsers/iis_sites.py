"""IIS sites: ``Get-Website | Out-String -Width 512`` → :class:`IisSitesResult`.

Why this source: the corpus holds six captures of this table — ``Get-Website`` and
``Get-ChildItem IIS:\\Sites`` (WebAdministration, IIS 7.5 / Server 2008 R2 and later) and
``Get-IISServerManager``'s ``.Sites`` (IISAdministration, Server 2016+) all print the same view:
``Name  ID  State  Physical Path  Bindings`` (raw/get-website/*, raw/get-iissite/*). It gives what
the analysis needs: the site ID (the ``W3SVC<n>`` of a URL group's log directory), the name and
every binding. ``appcmd list site`` has no capture in the corpus (only ``list apppool`` and
``list wp`` do); its one-line form (``SITE "name" (id:1,bindings:http/*:80:,state:Started)``,
the same formatter as the captured ``APPPOOL "name" (…)`` lines) is accepted too — a **guess**.

Shapes handled: one row per site, further bindings on continuation lines in the Bindings column
(en-certify-83…, msdocs-get-iisservermanager…, msdocs-iis-provider-dir…), names and IDs wrapped
inside their columns (en-psforsysadmins-book-new-website-wrapped-name-id: ``PowerShellForSys`` /
``Admins``, ``1052`` / ``6591`` / ``05``), a blank State (FTP-only site), bindings ``http *:80: ``
with a trailing space, ``http :8080:`` (empty address), ``https … sslFlags=0``, several listings in
one text (the later listing of a site wins), header lines padded to the console width.

A wrapped name is joined without a space when its first part fills the column (a hard break), with
one when it is shorter (a word break) — **guess**: a name that breaks exactly at a space of a full
column cannot be told apart. IIS's table labels are English on localized Windows (zh-TW captures).
"""

from __future__ import annotations

import re
from typing import Optional

from .common import detect_error, is_marker, never_raise, split_lines, to_int
from .pstable import Columns, header_at
from .records import IisBinding, IisSite, IisSitesResult

_BINDING_RE = re.compile(
    r"^(?P<proto>[a-z][a-z0-9.]*)\s+(?P<info>\S*:\S*)(?:\s+sslFlags=(?P<ssl>\S+))?\s*$", re.IGNORECASE)
_INFO_RE = re.compile(r"^(?P<addr>\[[^\]]*\]|[^:]*):(?P<port>\d{1,5}):(?P<host>.*)$")
_PATH_START_RE = re.compile(r"^(?:[A-Za-z]:\\|%|\\\\|[A-Za-z]:$)")
_APPCMD_RE = re.compile(r'^SITE\s+"(?P<name>[^"]*)"\s+\((?P<attrs>.*)\)\s*$', re.IGNORECASE)


def parse_binding(text: str, line: int, proto: Optional[str] = None) -> Optional[IisBinding]:
    """``http *:80:`` / ``https 10.0.0.5:443:www sslFlags=1`` (or, with ``proto``, the
    bindingInformation alone) → :class:`IisBinding`; None when the text is not one."""
    if proto is None:
        m = _BINDING_RE.match(text.strip())
        if not m:
            return None
        proto, info, ssl = m.group("proto"), m.group("info"), m.group("ssl")
    else:
        info, ssl = text.strip(), None
    b = IisBinding(protocol=proto.lower(), information=info, ssl_flags=ssl, line=line)
    mi = _INFO_RE.match(info)
    if mi:
        b.address = mi.group("addr").strip("[]")
        b.port = int(mi.group("port"))
        b.host = mi.group("host")
    return b


class _Table:
    def __init__(self, res: IisSitesResult, cols: Columns):
        self.res, self.cols = res, cols
        self.i_name = cols.index("name")
        self.i_id = cols.index("id")
        self.i_state = cols.index("state")
        self.i_path = cols.index("physical path", "physicalpath")
        self.i_bind = cols.index("bindings")
        self.cur: Optional[IisSite] = None
        self.id_text = ""

    def ok(self) -> bool:
        return self.i_name == 0 and self.i_id is not None and self.i_bind is not None

    def width(self, i: int) -> int:
        st = self.cols.starts
        return (st[i + 1] - st[i] - 1) if i + 1 < len(st) else 10**6

    def row(self, raw: str, no: int, indent: int) -> None:
        if self.cur is not None:
            lone = parse_binding(raw.strip(), no)
            if lone is not None:  # a further binding (its indentation may have been lost)
                self.cur.bindings.append(lone)
                return
        cells = self.cols.cells(raw)

        def get(i: Optional[int]) -> str:
            return cells[i] if i is not None and i < len(cells) else ""

        name, sid, state, path, bind = (get(self.i_name), get(self.i_id), get(self.i_state), get(self.i_path),
                                        get(self.i_bind))
        new = bool(name) and indent == 0 and (bool(state) or bool(_PATH_START_RE.match(path)))
        if new or self.cur is None:
            if not name:
                b = parse_binding(raw.strip(), no)
                if b is None:
                    self.res.warnings.append(f"line {no}: row without a site name {raw.strip()[:60]!r}")
                    return
                self.res.warnings.append(f"line {no}: binding outside a site {raw.strip()[:60]!r}")
                return
            self.cur = IisSite(name=name, state=state or None, physical_path=path or None, line=no)
            self.id_text = sid
            self.cur.id = to_int(sid)
            self.res.sites.append(self.cur)
            self._binding(bind, no)
            return
        site = self.cur
        if name:  # wrapped name: hard break when the first part filled the column
            sep = "" if len(site.name) >= self.width(self.i_name or 0) else " "
            site.name = site.name + sep + name
        if sid:
            self.id_text += sid
            site.id = to_int(self.id_text)
        if path:
            site.physical_path = (site.physical_path or "") + path
        if bind:
            self._binding(bind, no)

    def _binding(self, text: str, no: int) -> None:
        if not text or self.cur is None:
            return
        b = parse_binding(text, no)
        if b is None:
            self.res.warnings.append(f"line {no}: not a binding {text[:60]!r}")
            return
        self.cur.bindings.append(b)


def _appcmd(line_text: str, no: int) -> Optional[IisSite]:
    m = _APPCMD_RE.match(line_text)
    if not m:
        return None
    site = IisSite(name=m.group("name"), line=no)
    # attributes are "key:value" separated by commas; bindings hold commas too ("http/*:80:,https/*:443:")
    parts = re.split(r",(?=[A-Za-z]+:)", m.group("attrs"))
    for part in parts:
        key, _, value = part.partition(":")
        key = key.strip().lower()
        if key == "id":
            site.id = to_int(value)
        elif key == "state":
            site.state = value or None
        elif key == "bindings":
            for item in value.split(","):
                proto, slash, info = item.partition("/")
                if slash:
                    b = parse_binding(info, no, proto=proto)
                    if b is not None:
                        site.bindings.append(b)
    return site


@never_raise(IisSitesResult)
def parse_iis_sites(text: str) -> IisSitesResult:
    """Parse ``Get-Website`` / ``Get-IISSite`` / ``Get-ChildItem IIS:\\Sites`` (or ``appcmd list site``)
    output; never raises. An empty text is an empty result (IIS not installed is not an error)."""
    res = IisSitesResult()
    lines = split_lines(text)
    table: Optional[_Table] = None
    for k, ln in enumerate(lines):
        if not ln.text or is_marker(ln.text):
            continue
        cols = header_at(lines, k)
        if cols is not None:
            t = _Table(res, cols)
            if t.ok():
                table = t
                continue
        if table is not None and k + 1 < len(lines) and header_at(lines, k + 1) is not None:
            continue  # the header line of the next listing
        site = _appcmd(ln.text, ln.no)
        if site is not None:
            res.sites.append(site)
            continue
        if table is None:
            continue
        table.row(ln.raw, ln.no, ln.indent)
    # several listings of the same site (before/after a change): the last one wins
    last: dict[object, IisSite] = {}
    for s in res.sites:
        last[s.id if s.id is not None else ("name", s.name.casefold())] = s
    res.sites = list(last.values())
    if not res.sites:
        res.error = detect_error(text)
    return res
