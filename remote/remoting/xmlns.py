"""ElementTree's namespace-prefix registry made safe for many threads.

``xml.etree.ElementTree.register_namespace`` edits one process-wide dict (``_namespace_map``): it
lists the dict, deletes the entries for the prefix or URI, then adds the new one. pypsrp's
``WSMan.__init__`` registers its ~20 WSMan namespaces that way for every host, so hundreds of
worker threads building their ``WSMan`` at once edit the dict concurrently: one thread's ``del``
finds the key another thread just deleted (``KeyError``), or its listing sees the keys change under
it (``RuntimeError: dictionary keys changed during iteration``, the flaky failure of
tests/test_lab_concurrency.py). Such a host then fails before sending a byte.

``install()`` wraps the function once per process: registering a mapping that is already in place
changes nothing (so, after the first host, nothing edits the dict at all; a mapping found in place
is remembered until a change goes through here, so later hosts only look it up), and a real change
runs under one lock. Same result as the stdlib function for every call; idempotent.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

_lock = threading.Lock()


def install() -> None:
    original = ET.register_namespace
    if getattr(original, "_port80_threadsafe", False):
        return

    checked: set[tuple[str, str]] = set()  # mappings found exactly so since the last change made here

    def register_namespace(prefix: str, uri: str) -> None:
        with _lock:
            current = ET._namespace_map  # type: ignore[attr-defined]
            if current.get(uri) == prefix:
                if (prefix, uri) in checked:
                    return  # already exactly so (no change went through here since it was checked)
                if sum(1 for v in current.values() if v == prefix) == 1:
                    checked.add((prefix, uri))
                    return  # already exactly so: nothing to change
            checked.clear()
            original(prefix, uri)

    register_namespace.__doc__ = original.__doc__
    register_namespace._port80_threadsafe = True  # type: ignore[attr-defined]
    register_namespace._namespace_map = ET._namespace_map  # type: ignore[attr-defined] # as the stdlib exposes it
    ET.register_namespace = register_namespace  # type: ignore[assignment]
