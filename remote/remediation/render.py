"""Text of ``port80 fix``: plans and outcomes as a table, Markdown or JSON. Pure."""

from __future__ import annotations

import json
from typing import Any, Optional

from remote.parsers.records import to_dict
from remote.report.sanitize import json_text, md, shown
from remote.remediation.plan import IPLISTEN_NOTE, Action, HostOutcome, HostPlan


def render_plans(plans: list[HostPlan], fmt: str, *, title: str = "plan") -> str:
    if fmt == "json":
        return json_text(json.dumps({"mode": title, "hosts": [p.to_dict() for p in plans]}, indent=2,
                                    ensure_ascii=False)) + "\n"
    rows = []
    for p in plans:
        holder = p.journal_state()["holder"]
        if p.actions:
            for i, a in enumerate(p.actions, 1):
                rows.append([shown(p.host) if i == 1 else "", shown(holder) if i == 1 else "", i, shown(a.command),
                             shown(_before(a)), _wrap(shown(a.why), fmt, 48)])
        else:
            rows.append([shown(p.host), shown(holder), "", _why(p, fmt), "", ""])
    lines = [_table(rows, ["HOST", "HOLDER", "#", "COMMAND", "BEFORE", "WHY"], fmt), ""]
    lines += _notes(plans, fmt)
    n = sum(1 for p in plans if p.status == "planned")
    lines.append(f"{len(plans)} hosts: {n} with changes planned, "
                 f"{sum(1 for p in plans if p.status == 'nothing')} with nothing to do, "
                 f"{sum(1 for p in plans if p.status == 'skipped')} skipped; "
                 f"{sum(len(p.actions) for p in plans)} changes.")
    return "\n".join(lines) + "\n"


def render_outcomes(plans: list[HostPlan], outcomes: dict[str, HostOutcome], fmt: str, *, title: str = "apply",
                    journal: Optional[str] = None) -> str:
    if fmt == "json":
        hosts = []
        for p in plans:
            d = p.to_dict()
            o = outcomes.get(p.host)
            d["outcome"] = to_dict(o) if o else None
            hosts.append(d)
        return json_text(json.dumps({"mode": title, "journal": journal, "hosts": hosts}, indent=2,
                                    ensure_ascii=False)) + "\n"
    rows = []
    for p in plans:
        o = outcomes.get(p.host)
        if o is None:
            rows.append([shown(p.host), p.status, "", _why(p, fmt)])
            continue
        result = o.status if o.status != "ok" else f"applied {len(o.applied)}/{len(p.actions)}"
        if o.status == "interrupted":  # Ctrl-C/SIGTERM during --apply: what was done before it
            result = f"interrupted, applied {len(o.applied)}/{len(p.actions)}"
        detail = []
        if o.failed:
            detail.append(f"failed: {shown(o.failed)}: {shown(o.error or '')}".rstrip(": "))
        elif o.error:
            detail.append(shown(o.error))
        if o.not_run:
            detail.append(f"not run: {len(o.not_run)}")
        rows.append([shown(p.host), shown(result), _wrap(shown(o.verified or ""), fmt), _wrap("; ".join(detail), fmt)])
    lines = [_table(rows, ["HOST", "RESULT", "VERIFIED", "DETAIL"], fmt), ""]
    lines += _notes(plans, fmt)
    if journal:
        lines.append(f"journal: {shown(journal)}")
    return "\n".join(lines) + "\n"


def _why(p: HostPlan, fmt: str) -> str:
    text = _wrap(f"{p.status}: {shown(p.reason)}", fmt)
    if p.manual:  # never wrapped: it is meant to be copied
        text += ("\n" if fmt == "table" else " ") + shown(p.manual)
    return text


def _wrap(text: str, fmt: str, width: int = 72) -> str:
    """Long reasons wrapped inside their cell (plain table); markdown cells stay one line."""
    if fmt != "table" or len(text) <= width:
        return text
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False))


def _before(a: Action) -> str:
    if "iplisten" in a.before:
        return "iplisten: " + (", ".join(a.before["iplisten"]) or "(empty: every address)")
    return ", ".join(f"{v}" for k, v in a.before.items() if v)


def _notes(plans: list[HostPlan], fmt: str) -> list[str]:
    seen: list[str] = []
    out = []
    for p in plans:
        for n in p.notes:
            if n == IPLISTEN_NOTE:
                if n not in seen:
                    seen.append(n)
                continue
            out.append(f"- {shown(p.host)}: {shown(n)}")
    lines = [f"note: {shown(n)}" for n in seen] + out
    return [md(x) for x in lines] if fmt == "markdown" else lines


def _table(rows: list[list[Any]], headers: list[str], fmt: str) -> str:
    from tabulate import tabulate

    if fmt == "markdown":  # cells hold shown() text: Markdown's own escaping on top (no column shift, no HTML)
        rows = [[md(c) for c in r] for r in rows]
    text: str = tabulate(rows, headers=headers, tablefmt="github" if fmt == "markdown" else "simple", disable_numparse=True)
    return text
