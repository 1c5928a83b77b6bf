"""port80's tuning of the pypsrp client (pinned ``pypsrp>=0.9.1,<1``): same protocol, less client CPU.

Only ``remote/collect.py`` uses this module. Everything here keeps pypsrp's behaviour and results
(tests/test_transport.py compares them with pypsrp's own code); pypsrp attributes it relies on are
checked by those tests too, so a pypsrp release that moves them fails CI, not a scan.

``FastSerializer``: pypsrp decodes every ``_xHHHH_`` escape of a CLIXML string with one Python
call (``Serializer._deserialize_string``), and a command's text output is one string with an
escaped CR and LF per line: about 60% of the client's CPU per host while it reads a pipeline's
output (py-spy, ``scripts/bench_fleet.py --profile``), all of it in the one round trip every
host waits for. The common case (ASCII text whose only escapes are CR and LF) is decoded with two
``str.replace`` calls; anything else takes pypsrp's own code.
"""

from __future__ import annotations

from typing import Any, Optional

from pypsrp.serializer import Serializer

_CR, _LF = "_x000D_", "_x000A_"


def decode_clixml_string(value: Optional[str], slow: Any) -> str:
    """pypsrp's ``_deserialize_string`` result for ``value``; ``slow`` is pypsrp's own implementation."""
    if value is None:
        return ""
    if "_x" not in value:
        return value  # nothing to unescape: pypsrp's UTF-16 round trip gives the same string
    if (value.isascii() and "_x000D_x" not in value and "_x000A_x" not in value
            and value.count("_x") == value.count(_CR) + value.count(_LF)):
        # every "_x" starts a CR or LF escape and no two escapes share an underscore: replacing them
        # is exactly pypsrp's left-to-right regex substitution
        return value.replace(_CR, "\r").replace(_LF, "\n")
    return slow(value)


class FastSerializer(Serializer):
    """pypsrp's ``Serializer`` with a fast path for the strings command output is made of."""

    def _deserialize_string(self, value: Optional[str]) -> str:
        return decode_clixml_string(value, super()._deserialize_string)


def tune_pool(pool: Any) -> None:
    """Give a new (not yet opened) pypsrp ``RunspacePool`` the ``FastSerializer`` (it and its
    fragmenter share one serializer, as pypsrp sets them up)."""
    fast = FastSerializer()
    fast.cipher = getattr(pool._serializer, "cipher", None)
    pool._serializer = fast
    pool._fragmenter.serializer = fast
