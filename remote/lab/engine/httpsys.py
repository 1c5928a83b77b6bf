"""HTTP.sys texts as the machine model reads and re-renders them: ``netsh http show servicestate``
(request queues, both views) and ``netsh http show iplisten``; line helpers that keep line endings.
Pure text in, text out."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from typing import Any, Optional

from remote.lab.engine import formats as cmd


def split_keep(text: str) -> list[str]:
    """Lines with their line endings (so joining them gives the text back exactly)."""
    return re.findall(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+", text)


def _content(line: str) -> str:
    return line.rstrip("\r\n")


def _blank(line: str) -> bool:
    return not _content(line).strip()


def _eol(text: str) -> str:
    return "\r\n" if "\r\n" in text else ("\n" if "\n" in text else "\r\n")


def _load_json_records(text: Optional[str]) -> Optional[list]:
    if text is None:
        return None
    try:
        data = json.loads(text, object_pairs_hook=OrderedDict)
    except ValueError:
        return None
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    return None


def _jkey(records: Any) -> str:
    return cmd.json_compact(cmd.plain(records), depth=99)


# --- netsh http show servicestate ------------------------------------------------------------------------


class Queue:
    """A request queue as the servicestate output shows it."""

    def __init__(self, name: Optional[str]):
        self.name = name
        self.pids: list[int] = []
        self.controller: Optional[int] = None
        self.urls: list[str] = []
        self.owners: list[str] = []

    def signature(self) -> tuple:
        return (self.name, tuple(self.pids), self.controller)

    def ports(self) -> set[int]:
        out = set()
        for u in self.urls:
            m = re.match(r"^(https?)://(\[[^\]]*\]|[^/:]*)(?::(\d+))?", u, re.I)
            if m:
                out.add(int(m.group(3)) if m.group(3) else (443 if m.group(1).lower() == "https" else 80))
        return out


def _scan_queue(lines: list[str], q: Queue) -> None:
    mode, mode_indent = None, 0
    for ln in lines:
        c = _content(ln)
        if not c.strip():
            continue
        indent = len(c) - len(c.lstrip())
        s = c.strip()
        if mode and indent > mode_indent:
            if mode == "pids" and s.isdigit():
                q.pids.append(int(s))
                continue
            if mode == "urls":
                u = s.strip("<>")
                if u not in q.urls:
                    q.urls.append(u)
                continue
        mode = None
        m = re.match(r"^ID:\s*(\d+)", s)
        if m:
            q.pids.append(int(m.group(1)))
            continue
        m = re.match(r"^Controller process ID:\s*(\d+)", s)
        if m:
            q.controller = int(m.group(1))
            continue
        if s.startswith("Process IDs:"):
            mode, mode_indent = "pids", indent
        elif s.startswith("Registered URLs:"):
            mode, mode_indent = "urls", indent


def _queue_name(line: str) -> Optional[str]:
    name = _content(line).split(":", 1)[1].strip()
    return None if name.lower().startswith("request queue is unnamed") else name


class Blocks:
    """A run of blocks, each ``content`` lines + ``sep`` (blank) lines; removing blocks keeps the
    separators between the rest and the run's final blank lines."""

    def __init__(self, chunks: list[list[str]]):
        self.blocks: list[tuple[list[str], list[str]]] = []
        for ch in chunks:
            k = len(ch)
            while k > 0 and _blank(ch[k - 1]):
                k -= 1
            self.blocks.append((ch[:k], ch[k:]))

    def render(self, keep: list[bool]) -> list[str]:
        kept = [b for b, ok in zip(self.blocks, keep) if ok]
        if not kept:
            return []
        out: list[str] = []
        for k, (content, sep) in enumerate(kept):
            out.extend(content)
            out.extend(sep if k < len(kept) - 1 else self.blocks[-1][1])
        return out


def _split_at(lines: list[str], pattern: str) -> tuple[list[str], list[list[str]]]:
    starts = [k for k, ln in enumerate(lines) if re.match(pattern, _content(ln))]
    if not starts:
        return lines, []
    head = lines[: starts[0]]
    chunks = [lines[s: e] for s, e in zip(starts, starts[1:] + [len(lines)])]
    return head, chunks


_QUEUE_HEAD = re.compile(r"^\s*Request queue name:")


def _queue_chunks(lines: list[str], start: int = 0) -> tuple[list[str], list[list[str]]]:
    """Request-queue blocks from ``start``: a queue starts at a ``Request queue name:`` line followed by its
    ``Version:`` line, at any indentation (a URL group's own ``Request queue name:`` is followed by other
    lines). Handles the plain view and captures whose indentation grew from queue to queue
    (raw/servicestate/azure-sf-requestq-mangled.txt)."""
    starts = []
    n = len(lines)
    for k in range(start, n):
        if _QUEUE_HEAD.match(lines[k]):
            j = k + 1
            while j < n and _blank(lines[j]):
                j += 1
            if j < n and _content(lines[j]).strip().startswith("Version:"):
                starts.append(k)
    if not starts:
        return lines[start:], []
    return lines[start:starts[0]], [lines[s:e] for s, e in zip(starts, starts[1:] + [n])]


def is_session_view(text: str) -> bool:
    return any(_content(ln).strip() == "Request queues:" for ln in split_keep(text))


def parse_queues(text: str) -> list[Queue]:
    """Request queues of either view (``view=requestq``: queues at column 0; session view: under
    ``Request queues:`` at 4, URLs linked by queue name, else in order, else per-queue lists)."""
    lines = split_keep(text)
    rq = next((k for k, ln in enumerate(lines) if _content(ln).strip() == "Request queues:"), None)
    _, chunks = _queue_chunks(lines) if rq is None else ([], [])
    queues: list[Queue] = []
    if chunks:
        for ch in chunks:
            q = Queue(_queue_name(ch[0]))
            _scan_queue(ch, q)
            queues.append(q)
        return queues
    if rq is None:
        return []
    _, qchunks = _queue_chunks(lines, rq + 1)
    for ch in qchunks:
        q = Queue(_queue_name(ch[0]))
        _scan_queue(ch, q)
        queues.append(q)
    # URL groups of the session view, linked to queues by name, unnamed ones in order
    groups: list[tuple[Optional[str], list[str]]] = []
    _, sessions = _split_at(lines[:rq], r"^Server session ID:")
    for s in sessions:
        _, gchunks = _split_at(s, r"^    URL group ID:")
        for g in gchunks:
            name = next((_queue_name(ln) for ln in g if _content(ln).strip().startswith("Request queue name:")), None)
            tmp = Queue(name)
            _scan_queue(g, tmp)
            groups.append((name, tmp.urls))
    unnamed = [q for q in queues if q.name is None and not q.urls]
    for name, urls in groups:
        target = next((q for q in queues if name is not None and q.name == name), None)
        if target is None and name is None and unnamed:
            target = unnamed.pop(0)
        if target is not None:
            for u in urls:
                if u not in target.urls:
                    target.urls.append(u)
    return queues


def render_requestq(text: str, dead: list[bool]) -> str:
    lines = split_keep(text)
    head, chunks = _queue_chunks(lines)
    if not chunks:
        return text
    return "".join(head + Blocks(chunks).render([not d for d in dead]))


def render_session(text: str, dead_urls: set[str], dead_sigs: list[tuple]) -> str:
    lines = split_keep(text)
    rq = next((k for k, ln in enumerate(lines) if _content(ln).strip() == "Request queues:"), len(lines))
    head, sessions = _split_at(lines[:rq], r"^Server session ID:")
    keep_sessions: list[bool] = []
    new_sessions: list[list[str]] = []
    for s in sessions:
        pre, groups = _split_at(s, r"^    URL group ID:")
        gb = Blocks(groups)
        keep = []
        for content, _sep in gb.blocks:
            tmp = Queue(None)
            _scan_queue(content, tmp)
            keep.append(not (tmp.urls and all(u.upper() in dead_urls for u in tmp.urls)))
        if groups and not any(keep):
            keep_sessions.append(False)
            new_sessions.append(s)
        else:
            keep_sessions.append(True)
            new_sessions.append(pre + gb.render(keep) if groups else s)
    out = head + Blocks(new_sessions).render(keep_sessions) if sessions else list(head)
    if rq < len(lines):
        qhead, qchunks = _queue_chunks(lines, rq)
        qb = Blocks(qchunks)
        pending = list(dead_sigs)
        keepq = []
        for content, _sep in qb.blocks:
            q = Queue(_queue_name(content[0]))
            _scan_queue(content, q)
            hit = q.signature() in pending
            if hit:
                pending.remove(q.signature())
            keepq.append(not hit)
        out += qhead + qb.render(keepq)
    return "".join(out)


# --- netsh http show iplisten -----------------------------------------------------------------------------


def parse_iplisten(text: Optional[str]) -> Optional[list[str]]:
    """Addresses of the IP listen list; None when the text is not that output (an error message)."""
    if text is None:
        return []
    lines = [_content(ln) for ln in split_keep(text)]
    dash = next((k for k, ln in enumerate(lines) if re.match(r"^-{10,}\s*$", ln)), None)
    if dash is None:
        return None
    out = []
    for ln in lines[dash + 1:]:
        s = ln.strip()
        if s:
            out.append(s)
    return out


def render_iplisten(addrs: list[str], eol: str = "\r\n") -> str:
    lines = ["", cmd.IPLISTEN_TITLE, cmd.IPLISTEN_DASHES, ""] + ["    " + a for a in addrs] + ["", ""]
    return "".join(ln + eol for ln in lines)

