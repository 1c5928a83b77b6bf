"""``Get-NetTCPConnection -State Listen | Select-Object LocalAddress,LocalPort,OwningProcess | Out-String
-Width 512`` → :class:`NetstatResult` (the listener source where ``netstat.exe`` is unavailable, e.g.
a JEA role that exposes only cmdlets).

The table shape is the one real capture in the corpus (raw/netstat/htb-overwatch-oxdf-get-nettcpconnection:
``LocalAddress LocalPort OwningProcess``, IPv6 wildcard printed ``::``), read by the netstat parser's
Get-NetTCPConnection branch. That capture has no State column; the command filters ``-State Listen``,
so every row of this evidence kind is a listener. A State column, when present, is used as printed.
Where nothing listens at all the cmdlet prints its "No MSFT_NetTCPConnection objects found" error
(KurrentDB #2053 in NOTES §4), which is reported as the result's ``error``.
"""

from __future__ import annotations

from .common import never_raise
from .netstat import parse_netstat
from .records import NetstatResult


@never_raise(NetstatResult)
def parse_nettcpconnection(text: str) -> NetstatResult:
    """Parse the listener table of ``Get-NetTCPConnection -State Listen``; never raises."""
    res = parse_netstat(text)
    for s in res.sockets:
        if s.proto.upper().startswith("TCP") and s.state is None:
            s.state = "LISTENING"
    return res
