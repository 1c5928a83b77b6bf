"""A small thread-safe memo shared by all emulated hosts of a lab process.

The lab stands in for hundreds of hosts in one Python process. Work that every host would do the
same way (decoding the scanner's fixed CREATE_PIPELINE, running the same read-only pipeline on
hosts made from the same bundle) is done once and shared. ``get_or_compute`` is single-flight: when
200 hosts ask for the same key at the same moment (they do: their requests arrive together), one
computes and the others wait for its result instead of all computing it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable, Optional, TypeVar

T = TypeVar("T")


class SharedMemo:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: "OrderedDict[Hashable, object]" = OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable) -> Optional[object]:
        return self._data.get(key)

    def get_or_compute(self, key: Hashable, compute: Callable[[], T], keep: Callable[[T], bool] = lambda _: True) -> T:
        """The value for ``key``, computed by ``compute()`` at most once at a time; stored when ``keep(value)``."""
        value = self._data.get(key)
        if value is not None:
            return value  # type: ignore[return-value]
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            value = self._data.get(key)
            if value is not None:
                return value  # type: ignore[return-value]
            value = compute()
            if keep(value):
                with self._lock:
                    self._data[key] = value
                    while len(self._data) > self.max_entries:
                        self._data.popitem(last=False)
        with self._lock:
            if self._flights.get(key) is flight and not flight.locked():
                del self._flights[key]
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def values(self) -> list:
        with self._lock:
            return list(self._data.values())

    def __len__(self) -> int:
        return len(self._data)
