"""Decode evidence text as Windows writes it. Pure: bytes in, str out.

Windows evidence arrives as UTF-8 (with or without BOM), UTF-16 LE/BE with BOM (what Windows
PowerShell 5.1's `>` writes), UTF-16 LE without BOM (detected by NUL bytes), or an OEM code page
(cp437/cp850 for western consoles). Undecodable bytes never raise.
"""

from __future__ import annotations

import codecs
import re
from typing import Any


def decode_text(data: bytes, oem: str = "cp850") -> str:
    """Best-effort decoding of evidence bytes; never raises."""
    if not data:
        return ""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith(codecs.BOM_UTF16_LE):
        return data[2:].decode("utf-16-le", errors="replace")
    if data.startswith(codecs.BOM_UTF16_BE):
        return data[2:].decode("utf-16-be", errors="replace")
    head = data[:200]
    if len(head) >= 4 and head.count(0) >= len(head) // 3:
        # UTF-16 without BOM: ASCII text has a NUL in every other byte.
        even_nuls = head[0::2].count(0)
        odd_nuls = head[1::2].count(0)
        enc = "utf-16-le" if odd_nuls >= even_nuls else "utf-16-be"
        return data[: len(data) - (len(data) % 2)].decode(enc, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(oem, errors="replace")


def valid_unicode(text: str) -> tuple[str, int]:
    """(text with lone surrogates replaced by U+FFFD, how many); a valid surrogate pair that arrived
    as two characters (``_xD83D__xDE00_``) is joined into its character. Never raises."""
    if text.isascii():
        return text, 0
    try:
        text.encode("utf-8")
        return text, 0
    except UnicodeEncodeError:
        pass
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined, joined.count("\ufffd") - text.count("\ufffd")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def json_may_hold_surrogates(text: str) -> bool:
    """False when no value ``json.loads(text)`` gives can hold a lone surrogate: the text has no
    ``\\uD800``-``\\uDFFF`` escape and no surrogate character of its own. True means "look"
    (``valid_unicode_value``); an escaped backslash before ``uD800`` is a harmless false alarm."""
    if _SURROGATE_ESCAPE.search(text):
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")  # fails on any surrogate character, lone or paired
    except UnicodeEncodeError:
        return True
    return False


def valid_unicode_value(value: Any) -> tuple[Any, int]:
    """``valid_unicode`` through a JSON-like value (dict keys and values, lists)."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, list):
        out, n = [], 0
        for v in value:
            v, k = valid_unicode_value(v)
            out.append(v)
            n += k
        return out, n
    if isinstance(value, dict):
        d, n = {}, 0
        for k, v in value.items():
            k2, a = valid_unicode_value(k)
            v2, b = valid_unicode_value(v)
            d[k2] = v2
            n += a + b
        return d, n
    return value, 0


REPLACED_NOTE = "character(s) that are not valid Unicode (lone surrogates) replaced with U+FFFD"
