"""Logging set-up: quiet by default, -v for port80's per-host detail, -vv for protocol debug;
one redaction filter (remote/inventory/credentials.py) on the handler so no secret reaches a log line."""

from __future__ import annotations

import logging
import sys
from typing import Iterable


class _Shown(logging.Formatter):
    """Host text in a log line is shown escaped (remote/report/sanitize.py); line breaks port80 puts
    in a message (a traceback at -vv) stay."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from remote.report.sanitize import shown

        record.message = "\n".join(shown(part) for part in record.message.split("\n"))
        return super().formatMessage(record)


def setup_logging(verbose: int, secrets: Iterable[str], users: Iterable[str] = ()) -> None:
    """Logging for a run; ``users``: every user name sent to a host, so that base64("user:password")
    (a Basic token) is redacted wherever it appears, not only after ``Authorization:``."""
    from remote.inventory.credentials import SecretRedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Shown("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretRedactingFilter(secrets, users))  # the one redaction filter
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    if verbose >= 2:
        root.setLevel(logging.DEBUG)
    elif verbose == 1:
        root.setLevel(logging.WARNING)
        logging.getLogger("port80").setLevel(logging.DEBUG)
    else:  # third-party libraries (pypsrp logs retried timeouts with tracebacks) stay silent
        root.setLevel(logging.CRITICAL)
        logging.getLogger("port80").setLevel(logging.WARNING)
