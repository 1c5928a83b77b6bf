"""HTTP.sys URL prefixes: ``scheme://host[:port][:ip]/path``. Pure functions.

Forms seen in real output (the corpus notes, §1.5; captures in tests/fixtures/): ``HTTP://+:80/<GUID>/`` (strong
wildcard), ``HTTP://*:5357/`` (weak wildcard), ``HTTP://LOCALHOST:8080/``, ``HTTPS://HOST:5000/x/``,
and IIS's IP-bound form ``HTTP://127.0.0.1:8000:127.0.0.1/`` (an extra ``:ip`` after the port).
Registrations are printed upper-case while reservations keep their case: compare with ``url_key``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional

from remote.parsers.common import is_ip

DEFAULT_PORTS = {"http": 80, "https": 443}

_URL_RE = re.compile(
    r"^\s*<?(?P<scheme>https?)://(?P<rest>[^\s<>]*)>?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class UrlPrefix:
    scheme: str  # "http" | "https"
    host: str  # "+", "*", "localhost", "10.0.0.5", "::1", "web01.corp"
    port: int
    path: str  # always starts with "/"
    bound_ip: Optional[str] = None  # IIS "host:port:ip" form

    @property
    def wildcard(self) -> bool:
        return self.host in ("+", "*")


@functools.lru_cache(maxsize=256)  # pure, immutable result: the same URLs on every host (parsers/common.py CACHE_NOTE)
def parse_url(text: str) -> Optional[UrlPrefix]:
    """Parse an HTTP.sys URL prefix; ``None`` when it is not one."""
    m = _URL_RE.match(text or "")
    if not m:
        return None
    scheme = m.group("scheme").lower()
    rest = m.group("rest")
    hostport, slash, path = rest.partition("/")
    path = "/" + path if slash else "/"
    bound_ip = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return None
        host = hostport[1:end]
        tail = hostport[end + 1 :]
    else:
        host, sep, tail = hostport.partition(":")
        tail = sep + tail if sep else ""
    port: Optional[int] = DEFAULT_PORTS[scheme]
    if tail:
        if not tail.startswith(":"):
            return None
        port_text, _, extra = tail[1:].partition(":")
        if not port_text.isdigit():
            return None
        port = int(port_text)
        if extra:
            bound_ip = extra.strip("[]")
    if not host or port is None or not (0 < port < 65536):
        return None
    return UrlPrefix(scheme, host.lower() if not is_ip(host) else host, port, path, bound_ip)


def url_port(text: str) -> Optional[int]:
    u = parse_url(text)
    return u.port if u else None


def url_key(text: str) -> str:
    """Case-insensitive comparison key, with a trailing slash, wrappers stripped."""
    t = (text or "").strip().strip("<>").strip().lower()
    if not t.endswith("/"):
        t += "/"
    return t


