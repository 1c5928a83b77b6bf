"""``json.dumps(obj, indent=2, ensure_ascii=False)``, byte for byte, for port80's own documents.

With ``indent`` set, the standard library encodes in pure Python (its C encoder only writes compact
JSON): report.json of a 3,000-host scan took 0.56 s of the client's CPU there, and every host's
host.json ~40 us. This writer makes the same text from the same rules (the order of the type checks,
``float.__repr__`` and NaN/Infinity, ``int.__repr__`` for int subclasses, the C string encoder, key
conversion) in a tighter loop; anything else (a type JSON does not know, a key it would reject, a
document nested over 500 levels) is handed to ``json.dumps`` itself, so errors are its errors (a
document within a frame or two of the recursion limit may fail where a direct call would not).
tests/test_jsontext.py compares both on generated documents.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any, Callable

_INF = float("inf")
_DEEP = 2 * 500  # indentation of 500 levels: deeper documents are json.dumps's (its recursion limit is ~990)


class _Other(Exception):
    """Something only ``json.dumps`` writes (or rejects) the way it does."""


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _key(k: Any) -> str:
    if isinstance(k, str):
        return encode_basestring(k)
    if isinstance(k, float):
        return encode_basestring(_float(k))
    if k is True:
        return '"true"'
    if k is False:
        return '"false"'
    if k is None:
        return '"null"'
    if isinstance(k, int):
        return encode_basestring(int.__repr__(k))
    raise _Other


def _emit(o: Any, nl: str, out: Callable[[str], Any]) -> None:
    t = type(o)
    if t is str:
        out(encode_basestring(o))
    elif o is None:
        out("null")
    elif o is True:
        out("true")
    elif o is False:
        out("false")
    elif t is int:
        out(int.__repr__(o))
    elif t is dict:
        if not o:
            out("{}")
            return
        if len(nl) > _DEEP:
            raise _Other  # near the recursion limit: json.dumps decides (it raises RecursionError there)
        inner = nl + "  "
        sep = "{" + inner
        for k, v in o.items():
            out(sep + (encode_basestring(k) if type(k) is str else _key(k)) + ": ")
            sep = "," + inner
            _emit(v, inner, out)
        out(nl + "}")
    elif t is list or t is tuple:
        if not o:
            out("[]")
            return
        if len(nl) > _DEEP:
            raise _Other
        inner = nl + "  "
        sep = "[" + inner
        for v in o:
            out(sep)
            sep = "," + inner
            _emit(v, inner, out)
        out(nl + "]")
    elif isinstance(o, str):
        out(encode_basestring(o))
    elif isinstance(o, int):
        out(int.__repr__(o))
    elif isinstance(o, float):
        out(_float(o))
    elif isinstance(o, (list, tuple)):
        _emit(list(o), nl, out)
    elif isinstance(o, dict):
        _emit(dict(o.items()), nl, out)
    else:
        raise _Other


def dumps_indented(obj: Any) -> str:
    """``json.dumps(obj, indent=2, ensure_ascii=False)``."""
    parts: list[str] = []
    try:
        _emit(obj, "\n", parts.append)
    except (_Other, RecursionError):
        return json.dumps(obj, indent=2, ensure_ascii=False)
    return "".join(parts)


__all__ = ["dumps_indented"]
