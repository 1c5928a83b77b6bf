"""Process limits a large fleet runs into: open files (one socket per host in flight).

``fit_forks(forks)`` raises the soft ``RLIMIT_NOFILE`` as far as the hard limit allows (never lowers
it) and says, in one line, when ``--forks`` cannot fit even then. Measured (scripts/bench_fleet.py
--scale): a host in flight holds one socket; port80 itself needs a few dozen more descriptors.
"""

from __future__ import annotations

from typing import Optional

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


__all__ = ["ForksTooHigh", "fit_forks", "needed_fds", "raise_nofile"]
