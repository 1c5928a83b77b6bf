"""``outcome(f, *args)``: what a call gave, as data, so that two implementations are compared on their
results and on their failures alike (tests/test_jsontext.py, tests/test_transport_wire.py)."""

from __future__ import annotations

from typing import Any, Callable


def outcome(f: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """("ok", the result) or ("raise", the exception's type)."""
    try:
        return ("ok", f(*args, **kwargs))
    except Exception as e:  # noqa: BLE001 - the same failure is part of the contract
        return ("raise", type(e))
