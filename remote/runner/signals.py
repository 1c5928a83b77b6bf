"""SIGTERM (and SIGHUP) handled like Ctrl-C while port80 works on a fleet.

A scan or a fix that a service manager, ``timeout`` or a closed terminal stops must end the way a
Ctrl-C does: the fleet runner stops starting hosts, what finished is written (scan: report.json,
report.csv and how to resume; fix: what was done, the journal and the undo command). The handler
raises ``Terminated`` (a ``KeyboardInterrupt``) in the main thread, so every ``except
KeyboardInterrupt`` path handles both; ``exit_code`` is 128 + the signal number (130 for Ctrl-C,
143 for SIGTERM), as shells report it.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

HANDLED = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


class Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP, raised where the main thread happens to be (as SIGINT raises KeyboardInterrupt)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_last: list[int] = []  # the last stop signal received in this process (SIGINT when none other)


def _raise(signum: int, frame: object) -> None:
    _last.append(signum)
    raise Terminated(signum)


@contextmanager
def stop_signals() -> Iterator[None]:
    """While inside: SIGTERM/SIGHUP raise ``Terminated`` in the main thread (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise) for s in HANDLED}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def exit_code() -> int:
    """128 + the signal that stopped the run (SIGINT, 130, when it was Ctrl-C)."""
    return 128 + (_last[-1] if _last else signal.SIGINT)


def signal_name() -> str:
    n = _last[-1] if _last else signal.SIGINT
    return "Ctrl-C" if n == signal.SIGINT else signal.Signals(n).name


__all__ = ["Terminated", "stop_signals", "exit_code", "signal_name"]
