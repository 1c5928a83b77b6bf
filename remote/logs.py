"""Logging set-up: quiet by default, -v for port80's per-host detail, -vv for protocol debug;
a redaction filter on every handler so no secret reaches a log line."""

from __future__ import annotations

import logging
import sys


class _Redact(logging.Filter):
    def __init__(self, secrets):
        super().__init__()
        from remote.inventory.credentials import redact

        self._redact = redact
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            msg = record.getMessage()
            record.msg = self._redact(msg, self._secrets)
            record.args = None
            if record.exc_info:
                import traceback

                text = "".join(traceback.format_exception(*record.exc_info))
                record.exc_info = None
                record.exc_text = None
                record.msg = record.msg + "\n" + self._redact(text, self._secrets)
        return True


class _Shown(logging.Formatter):
    """Host text in a log line is shown escaped (remote/report/sanitize.py); line breaks port80 puts
    in a message (a traceback at -vv) stay."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from remote.report.sanitize import shown

        record.message = "\n".join(shown(part) for part in record.message.split("\n"))
        return super().formatMessage(record)


def setup_logging(verbose: int, secrets) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Shown("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Redact(secrets))
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
