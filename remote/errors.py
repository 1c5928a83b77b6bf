"""The root of port80's own exceptions: an error a user can act on, shown as one line (no traceback).

``except Port80Error`` catches every error port80 raises on purpose (bad inventory, unreadable bundle,
missing credentials, a cluster that cannot be reached…); anything else is a bug or an environment
problem, which ``remote.cli.app.main`` also reports in one line.
"""

from __future__ import annotations


class Port80Error(Exception):
    """An error port80 raises on purpose; its message names the host or file:line it is about."""
