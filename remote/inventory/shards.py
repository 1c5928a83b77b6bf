"""Stable shards of a fleet (``--shard K/N``). Split from ansible_ini.py."""

from __future__ import annotations

import hashlib
import re
from typing import Optional, Protocol, Sequence, TypeVar, Union

from remote.inventory.model import ShardError


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_H = TypeVar("_H", bound=Union[str, _Named])  # HostConfig, or anything with .name, or a name


# --- shards -----------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/5"`` -> ``(2, 5)``: the 2nd of 5 slices. Raises :class:`ShardError`."""
    m = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", text or "")
    if not m:
        raise ShardError(f"--shard {text!r}: expected K/N, e.g. 2/5 for the 2nd of 5 slices")
    k, n = int(m.group(1)), int(m.group(2))
    _check_shard(k, n, text)
    return k, n


def _check_shard(k: int, n: int, text: Optional[str] = None) -> None:
    shown = text if text is not None else f"{k}/{n}"
    if n < 1:
        raise ShardError(f"--shard {shown!r}: N (the number of slices) must be at least 1")
    if not 1 <= k <= n:
        raise ShardError(f"--shard {shown!r}: K must be between 1 and N ({n})")


def shard_index(name: str, n: int) -> int:
    """The 0-based slice of *n* that host *name* falls in: sha1 of the lower-cased name, mod n.

    Depends on nothing but the name, so a host stays in its slice when the file is reordered."""
    digest = hashlib.sha1(name.strip().lower().encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % n


def shard(hosts: Sequence[_H], k: int, n: int) -> list[_H]:
    """The *k*-th (1-based) of *n* stable slices of *hosts* (HostConfig, or anything with
    ``.name``, or names), in their given order. Every host is in exactly one slice."""
    _check_shard(k, n)
    return [h for h in hosts if shard_index(h if isinstance(h, str) else h.name, n) == k - 1]
