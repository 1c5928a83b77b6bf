"""Process limits a large fleet runs into: open files (one socket per host in flight), and the
interpreter's thread hand-off (one thread per host in flight).

``fit_forks(forks)`` raises the soft ``RLIMIT_NOFILE`` as far as the hard limit allows (never lowers
it) and says, in one line, when ``--forks`` cannot fit even then. Measured (scripts/bench_fleet.py
--scale): a host in flight holds one socket; port80 itself needs a few dozen more descriptors.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, Optional

from remote.errors import Port80Error

try:
    import resource
except ImportError:  # not on POSIX: nothing to raise
    resource = None  # type: ignore[assignment]

BASE_FDS = 64  # interpreter, stdio, results.jsonl, evidence files being written, the log, Dask comms
FDS_PER_HOST = 1  # one keep-alive connection per host in flight


class ForksTooHigh(Port80Error, ValueError):
    """--forks needs more open files than the system allows (one line: numbers and the way out)."""


def needed_fds(forks: int) -> int:
    return BASE_FDS + FDS_PER_HOST * max(1, forks)


def raise_nofile(want: Optional[int] = None) -> int:
    """Raise the soft open-file limit to ``want`` (default: the hard limit), never above the hard
    limit and never lower than it is; returns the soft limit now in force."""
    if resource is None:
        return 1 << 30
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if want is None else want
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def fit_forks(forks: int) -> int:
    """Make room for ``forks`` hosts in flight; returns the open-file limit in force. Raises
    ``ForksTooHigh`` when the hard limit is too low."""
    need = needed_fds(forks)
    limit = raise_nofile()
    if resource is not None and limit != resource.RLIM_INFINITY and need > limit:
        most = max(1, (limit - BASE_FDS) // FDS_PER_HOST)
        raise ForksTooHigh(f"--forks {forks} needs about {need} open files, and this system allows "
                           f"{limit} (ulimit -Hn): use --forks {most} or less, or raise the hard limit "
                           f"(e.g. LimitNOFILE= in a systemd unit, nofile in /etc/security/limits.conf)")
    return limit


# One thread per host in flight (port80's runner) or per connection (the lab). When hundreds of them wake
# at once (a round trip every host makes at the same moment), every thread waiting for the GIL wakes each
# switch interval (CPython's default 5 ms) to ask for it, and the hand-off costs more system CPU than the
# work: 1,000 threads doing 3 ms of work three times on one core took 52 s wall and 39 s of system CPU at
# 5 ms, 12.7 s and 6.9 s at 50 ms; a 3,000-host NTLM scan's client 58.0 ms of CPU per host (27.9 of it
# system) at 5 ms and 36.2 ms (3.8) at 50 ms, and at 10,000 hosts in flight 1,000 the default interval
# stalled the scan (582 s of system CPU for 64 hosts). Threads blocked on a socket are not affected.
SWITCH_INTERVAL = 0.05


def slow_handoff(interval: float = SWITCH_INTERVAL) -> float:
    """Hand the GIL between threads every ``interval`` seconds at the most often (never more often than
    it already is); returns the interval before, for ``sys.setswitchinterval`` to restore."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(max(before, interval))
    return before


@contextmanager
def gil_handoff(interval: float = SWITCH_INTERVAL) -> Iterator[None]:
    """``slow_handoff`` while a fleet runs (or the lab serves); the previous interval restored after."""
    before = slow_handoff(interval)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


__all__ = ["SWITCH_INTERVAL", "ForksTooHigh", "fit_forks", "gil_handoff", "needed_fds", "raise_nofile", "slow_handoff"]
