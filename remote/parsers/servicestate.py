"""``netsh http show servicestate`` (both views) → :class:`ServiceStateResult`.

The parser keys on line *shapes* (``label: value`` with the label looked up in a small table, bare
URL lines, bare PID lines, ``ID: N, image: X`` lines) and on the *order* of lines, never on
absolute indentation. Shapes handled (tests/fixtures/servicestate):

* Server Session View, ``Process IDs:`` lists (possibly empty, with ``Controller process ID``):
  htb-flight-iis-winrm, blog-pid4-116B50EB, uts-iotbay-localhost8080-wsd5357;
* the Server 2022 ``Processes:`` / ``ID: 1412, image: <?>`` form with a per-queue
  ``Registered URLs:`` list: htb-overwatch-a-processes-image, htb-overwatch-c-oxdf-snipped
  (``...[snip]...`` markers, whitespace-only line);
* Request Queue View, URL groups and their ``Server session ID:`` nested inside the queue:
  bookofdaniel-ssrs-requestq-excerpt (no title: view inferred), azure-sf-requestq-mangled
  (``\\-`` escapes, ``<url>`` wrappers, later queues indented 4 deeper);
* damage: lost/shifted indentation, double spacing, trailing spaces, CRLF (all structural).

Linking URLs to queues (``RequestQueue.urls_linked_by``): ``"queue"`` when the URLs are printed
under the queue (request-queue view, or the per-queue ``Registered URLs:``); in the session view
named queues get the URL groups whose ``Request queue name`` matches (``"name"``), unnamed queues
get the unnamed URL groups in order when the counts match (``"order"``), else stay unlinked with a
warning.

Labels are English only: no localized ``servicestate`` capture exists (NOTES §11). Unknown labels
are ignored; bare URLs and PIDs are still collected by shape.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Optional, Union

from .records import QueueProcess, RequestQueue, ServerSession, ServiceStateResult, UrlGroup
from .common import (
    Line,
    clean_url,
    detect_error,
    is_marker,
    is_rule,
    iter_lines,
    never_raise,
    split_label,
    split_lines,
    to_int,
)

_LABELS = {
    "server session id": "session",
    "url group id": "group",
    "url groups": "groups",
    "request queues": "queues",
    "request queue name": "queue",
    "version": "version",
    "state": "state",
    "registered urls": "urls",
    "number of registered urls": "url_count",
    "process ids": "pids",
    "processes": "processes",
    "controller process id": "controller",
    "number of active processes attached": "active",
    "properties": "block",
    "timeouts": "block",
    "logging information": "block",
    "authentication configuration": "block",
    "authentication schemes enabled": "auth",
    "log directory": "log_dir",
}
_TITLE_RE = re.compile(r"^(?P<title>.*\((?P<view>[^()]*)\))\s*:?$")
_PROC_RE = re.compile(r"^ID\s*:\s*(\d{1,10})\s*(?:,\s*image\s*:\s*(.*))?$", re.IGNORECASE | re.ASCII)

Entity = Union[ServerSession, UrlGroup, RequestQueue, None]


def _unnamed(value: str) -> bool:
    """"Request queue is unnamed." (or a localized sentence: several words ending in '.')."""
    v = value.strip()
    return not v or "unnamed" in v.lower() or (v.endswith(".") and len(v.split()) >= 3)


_MARKER, _RULE, _PROC, _URL, _PID, _BARE, _LABEL = range(7)
_WORDS_RE = re.compile(r"[^\W\d_][\w ./()-]*")


@functools.lru_cache(maxsize=512)  # the same lines come back in every host's output (common.py CACHE_NOTE)
def _shape(t: str) -> tuple[int, Any, Any, Optional[str]]:
    """What a non-blank stripped line is, from its text alone: (kind, value, value, title), where title is
    None unless the line can be the title, else the view it names ("session", "requestq", or "")."""
    if is_marker(t):
        return _MARKER, None, None, None
    if is_rule(t):
        return _RULE, None, None, None
    title: Optional[str] = None
    m = _TITLE_RE.match(t)
    lv = split_label(t)
    if m and (lv is None or not lv[1] or "snapshot" in t.lower()):
        view = m.group("view").lower()
        title = "session" if "session" in view else "requestq" if "queue" in view else ""
    pm = _PROC_RE.match(t)
    if pm:
        return _PROC, int(pm.group(1)), pm.group(2), title
    url = clean_url(t)
    if url:
        return _URL, url, None, title
    pid = to_int(t)
    if pid is not None:
        return _PID, pid, None, title
    if lv is None:
        return _BARE, bool(_WORDS_RE.fullmatch(t)), None, title
    return _LABEL, _LABELS.get(lv[0]), lv[1], title


class _Parser:
    def __init__(self) -> None:
        self.res = ServiceStateResult()
        self.sessions: dict[str, ServerSession] = {}
        self.session_groups: dict[str, set[str]] = {}  # session id -> group ids already listed
        self.title_seen = False
        self.queues_header = False  # "Request queues:" seen
        self.first_kind: Optional[str] = None  # first top-level entity kind, to infer the view
        self.cur_session: Optional[ServerSession] = None
        self.cur_group: Optional[UrlGroup] = None
        self.cur_queue: Optional[RequestQueue] = None
        self.entity: Entity = None
        self.group_open = False  # the current group may still receive its own "Request queue name"
        self.group_indent = 0
        self.group_queue: dict[int, RequestQueue] = {}  # id(group) -> queue it is printed under
        self.group_count: dict[int, int] = {}  # id(group) -> "Number of registered URLs"
        self.queue_has_list: set[int] = set()  # id(queue) with URLs printed under it
        self.list_mode: Optional[str] = None
        self.list_target: Entity = None
        self.pending_header: Optional[str] = None  # last list header still without children
        self.entity_empty = False  # last entity started and nothing printed under it yet

    # -- line dispatch ----------------------------------------------------------------------------

    def feed(self, ln: Line) -> None:
        t = ln.text
        if not t:
            return
        kind, a, b, title = _shape(t)
        if kind == _MARKER:
            self.res.truncated = True
            self.list_mode = None
            return
        if kind == _RULE:
            return
        if title is not None and not self.title_seen and not self._any_record():
            self.title_seen = True
            if title:
                self.res.view = title
            return
        self.entity_empty = False
        self.pending_header = None
        if kind == _PROC:
            self._process(a, b, ln)
        elif kind == _URL:
            self._url(a, ln)
        elif kind == _PID:
            if self.list_mode == "pids" and self.cur_queue is not None:
                self.cur_queue.pids.append(a)
            else:
                self.res.warnings.append(f"line {ln.no}: stray number {t!r}")
        elif kind == _BARE:
            # Bare words: "Timeout values inherited", auth schemes ("Negotiate"), ...
            if self.list_mode != "auth" and not a:
                self.res.warnings.append(f"line {ln.no}: unrecognized line {t[:60]!r}")
        else:
            self._label(a, b, ln)

    def _any_record(self) -> bool:
        return bool(self.sessions or self.res.url_groups or self.res.request_queues)

    # -- handlers ---------------------------------------------------------------------------------

    def _process(self, pid: int, image: Optional[str], ln: Line) -> None:
        q = self.cur_queue
        if q is None:
            self.res.warnings.append(f"line {ln.no}: process {pid} outside any request queue")
            return
        img = (image or "").strip()
        q.processes.append(QueueProcess(pid=pid, image=None if img in ("", "<?>", "?") else img))
        q.pids.append(pid)

    def _url(self, url: str, ln: Line) -> None:
        target = self.list_target if self.list_mode == "urls" else None
        if target is None:
            target = self.entity if isinstance(self.entity, (UrlGroup, RequestQueue)) else None
        if target is None:
            target = self.cur_group or self.cur_queue
        if not isinstance(target, (UrlGroup, RequestQueue)):
            self.res.warnings.append(f"line {ln.no}: URL {url!r} outside any URL group or queue")
            return
        target.urls.append(url)
        if isinstance(target, RequestQueue):
            self.queue_has_list.add(id(target))
        if isinstance(target, UrlGroup):
            self.group_open = False

    def _label(self, key: Optional[str], value: str, ln: Line) -> None:
        self.list_mode = None
        if key is None:
            return  # unknown labels (timeouts, bandwidth, verbosity, ...) are ignored
        if key == "session":
            self._session(value, ln)
        elif key == "group":
            self._group(value, ln)
        elif key == "queues":
            self.first_kind = self.first_kind or "session"
            self.queues_header = True
            self.cur_session = self.cur_group = self.cur_queue = None
            self.entity = None
            self.pending_header = key
        elif key == "queue":
            self._queue_name(value, ln)
        elif key == "version":
            if isinstance(self.entity, (ServerSession, RequestQueue)):
                self.entity.version = value or None
        elif key == "state":
            if self.entity is not None:
                self.entity.state = value or None
        elif key == "urls":
            self.list_mode = "urls"
            self.list_target = self.entity if isinstance(self.entity, (UrlGroup, RequestQueue)) else (
                self.cur_group or self.cur_queue
            )
            if isinstance(self.list_target, RequestQueue):
                self.queue_has_list.add(id(self.list_target))
            if isinstance(self.list_target, UrlGroup):
                self.group_open = False
            self.pending_header = key
            url = clean_url(value)
            if url and self.list_target is not None:
                self.list_target.urls.append(url)
                self.pending_header = None
        elif key == "url_count":
            if isinstance(self.entity, UrlGroup):
                n = to_int(value)
                if n is not None:
                    self.group_count[id(self.entity)] = n
                self.group_open = False
        elif key == "pids":
            self.list_mode = "pids"
            for tok in re.split(r"[\s,]+", value):
                pid = to_int(tok)
                if pid is not None and self.cur_queue is not None:
                    self.cur_queue.pids.append(pid)
        elif key == "processes":
            self.list_mode = "processes"
            self.pending_header = key
        elif key == "controller":
            if self.cur_queue is not None:
                self.cur_queue.controller_pid = to_int(value)
        elif key == "active":
            if self.cur_queue is not None:
                self.cur_queue.active_processes = to_int(value)
        elif key in ("block", "auth"):
            self.list_mode = "auth" if key == "auth" else None
            if key == "block" and isinstance(self.entity, UrlGroup):
                self.group_open = False
            self.pending_header = key
        elif key == "groups":
            self.pending_header = key
        elif key == "log_dir":
            if self.cur_group is not None and value:
                self.cur_group.log_dir = value
        # unknown labels (timeouts, bandwidth, verbosity, ...) are ignored

    def _session(self, value: str, ln: Line) -> None:
        sid = value.split()[0] if value.split() else ""
        if not sid:
            self.res.warnings.append(f"line {ln.no}: server session without id")
            return
        s = self.sessions.get(sid)
        if s is None:
            s = self.sessions[sid] = ServerSession(id=sid, line=ln.no)
        g = self.cur_group
        if self.cur_queue is not None and g is not None:  # request-queue view: the group's owning session
            g.server_session_id = sid
            known = self.session_groups.setdefault(sid, set())
            if g.id and g.id not in known:
                known.add(g.id)
                s.url_group_ids.append(g.id)
            self.group_open = False
        else:
            self.first_kind = self.first_kind or "session"
            self.cur_session, self.cur_group, self.cur_queue = s, None, None
        self.entity = s
        self.entity_empty = True

    def _group(self, value: str, ln: Line) -> None:
        gid = value.split()[0] if value.split() else None
        g = UrlGroup(id=gid, line=ln.no)
        self.res.url_groups.append(g)
        if self.cur_queue is not None:
            self.group_queue[id(g)] = self.cur_queue
            if gid:
                self.cur_queue.url_group_ids.append(gid)
        elif self.cur_session is not None:
            g.server_session_id = self.cur_session.id
            if gid:
                self.cur_session.url_group_ids.append(gid)
        else:
            self.first_kind = self.first_kind or "session"
        self.cur_group = g
        self.entity = g
        self.entity_empty = True
        self.group_open = True
        self.group_indent = ln.indent

    def _queue_name(self, value: str, ln: Line) -> None:
        name = None if _unnamed(value) else value
        g = self.cur_group
        if self.entity is g and g is not None and self.group_open and ln.indent >= self.group_indent:
            g.queue_name = name
            self.group_open = False
            return
        q = RequestQueue(name=name, line=ln.no)
        self.res.request_queues.append(q)
        self.first_kind = self.first_kind or "requestq"
        self.cur_queue, self.cur_group, self.cur_session = q, None, None
        self.entity = q
        self.entity_empty = True

    # -- end of text ------------------------------------------------------------------------------

    def finish(self, text: str) -> ServiceStateResult:
        res = self.res
        res.server_sessions = list(self.sessions.values())
        if res.view is None and self.first_kind:
            res.view = self.first_kind
        if not self._any_record():
            res.error = detect_error(text)
            return res
        self._truncation()
        self._link()
        return res

    def _truncation(self) -> None:
        res = self.res
        if not self.title_seen:
            res.truncated = True  # an excerpt: the title is always printed
        if self.pending_header or self.entity_empty:
            res.truncated = True  # text ends on a header or an empty record
        for g in res.url_groups:
            if self.group_count.get(id(g), 0) > len(g.urls):
                res.truncated = True
        last = res.request_queues[-1] if res.request_queues else None
        if last is not None and self.entity is last and (last.active_processes or 0) > len(last.pids):
            res.truncated = True
        if res.view == "session" and not self.queues_header and not res.request_queues:
            res.truncated = True  # the session view always ends with "Request queues:"

    def _link(self) -> None:
        res = self.res
        queues = res.request_queues
        seen: dict[int, set[str]] = {}  # id(queue) -> its URLs, so linking stays linear (one pool, 1000s of sites)

        def _extend(dst: list[str], src: list[str]) -> None:
            have = seen.get(id(dst))
            if have is None:
                have = seen[id(dst)] = set(dst)
            for u in src:
                if u not in have:
                    have.add(u)
                    dst.append(u)

        # 1. URLs printed under the queue (request-queue view groups, per-queue lists).
        for g in res.url_groups:
            q = self.group_queue.get(id(g))
            if q is not None:
                _extend(q.urls, g.urls)
                q.urls_linked_by = "queue"
        claimed: set[int] = {id(g) for g in res.url_groups if id(g) in self.group_queue}
        by_name: dict[Optional[str], list[UrlGroup]] = {}  # linear, not queues x groups (5 MB IIS hosts)
        for g in res.url_groups:
            by_name.setdefault(_key(g.queue_name), []).append(g)
        # Per-queue URL lists (Server 2022 session view): find the URL groups they came from. A URL
        # is registered once, so a group's first URL names its queue candidate (linear).
        url_owner: dict[str, RequestQueue] = {}
        for q in queues:
            if id(q) in self.queue_has_list:
                q.urls_linked_by = "queue"
                for u in q.urls:
                    url_owner.setdefault(u.casefold(), q)
        for g in res.url_groups:
            q = url_owner.get(g.urls[0].casefold()) if g.urls and id(g) not in claimed else None
            if q is None or _key(g.queue_name) != _key(q.name):
                continue
            if all(url_owner.get(u.casefold()) is q for u in g.urls):
                claimed.add(id(g))
                if g.id:
                    q.url_group_ids.append(g.id)
        free = [g for g in res.url_groups if id(g) not in claimed]
        # 2. Named queues: by name.
        for q in queues:
            if q.urls_linked_by or q.name is None:
                continue
            groups = [g for g in by_name.get(_key(q.name), ()) if id(g) not in claimed]
            if groups:
                for g in groups:
                    _extend(q.urls, g.urls)
                    if g.id:
                        q.url_group_ids.append(g.id)
                q.urls_linked_by = "name"
            else:
                res.warnings.append(f"line {q.line}: no URL group names request queue {q.name!r}")
        # 3. Unnamed queues: by order, only when the counts match.
        uq = [q for q in queues if not q.urls_linked_by and q.name is None]
        ug = [g for g in free if g.queue_name is None]
        if uq and len(uq) == len(ug):
            for q, g in zip(uq, ug):
                _extend(q.urls, g.urls)
                if g.id:
                    q.url_group_ids.append(g.id)
                q.urls_linked_by = "order"
        elif uq:
            res.warnings.append(
                f"{len(uq)} unnamed request queue(s) vs {len(ug)} unnamed URL group(s): URLs not linked"
            )


def _key(name: Optional[str]) -> Optional[str]:
    return name.casefold() if name is not None else None


@never_raise(ServiceStateResult)
def parse_servicestate(text: str) -> ServiceStateResult:
    """Parse ``netsh http show servicestate [view=session|requestq] [verbose=yes|no]``; never raises."""
    p = _Parser()
    # split_lines is faster; iter_lines keeps memory flat on the huge outputs (5 MB: 100k lines) — same lines
    for ln in split_lines(text) if len(text) < _SPLIT_MAX else iter_lines(text):
        p.feed(ln)
    return p.finish(text)


_SPLIT_MAX = 256 * 1024
