"""``netsh http show iplisten`` → :class:`IpListenResult`.

Shape (tests/fixtures/iplisten/cn-iis-clone-before|after): a blank line, the title
``IP addresses present in the IP listen list:``, a 43-dash underline, a blank line, then one address
per line indented 4, and blank or whitespace-only trailing lines. Entries are recognized by shape
(an IPv4/IPv6 address, brackets and zone id accepted), not by the title's words. An empty list
(no entries) is valid: HTTP.sys then binds every address. No real capture of the empty list or of
IPv6 entries exists in the corpus (NOTES §3).
"""

from __future__ import annotations

from .records import IpListenResult
from .common import detect_error, is_ip, is_marker, is_rule, never_raise, split_label, split_lines


@never_raise(IpListenResult)
def parse_iplisten(text: str) -> IpListenResult:
    """Parse ``netsh http show iplisten``; never raises."""
    res = IpListenResult()
    for ln in split_lines(text):
        t = ln.text
        if not t or is_rule(t) or is_marker(t):
            continue
        if is_ip(t):
            addr = t.strip("[]")
            if addr not in res.addresses:
                res.addresses.append(addr)
                res.lines.append(ln.no)
            continue
        lv = split_label(t)
        if lv is not None and not lv[1] and not res.addresses:
            continue  # the title
        res.warnings.append(f"line {ln.no}: unrecognized line {t[:60]!r}")
    if not res.addresses:
        res.error = detect_error(text)
    return res
