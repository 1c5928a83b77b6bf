"""The flaky `dictionary keys changed during iteration` of tests/test_lab_concurrency.py: pypsrp's
WSMan() re-registers its XML namespaces in ElementTree's process-wide dict for every host, from every
worker thread at once (remote/remoting/xmlns.py). Without port80's fix this stress test fails on
most runs (7 of 10 measured on the shared 2-core machine; KeyError / RuntimeError from
xml.etree.ElementTree.register_namespace); with it, none."""

from __future__ import annotations

import sys
import threading
import xml.etree.ElementTree as ET

import remote  # noqa: F401 - installs the fix, as every port80 entry point does
from pypsrp.wsman import NAMESPACES, WSMan


def test_many_threads_build_wsman_at_once():
    errors: list[BaseException] = []
    n_threads, per_thread = 32, 120
    start = threading.Barrier(n_threads)

    def worker():
        start.wait(30)
        try:
            for _ in range(per_thread):
                WSMan("127.0.0.1", username="u", password="p", ssl=False, auth="basic", encryption="never")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows within a second
    try:
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors[:3]
    assert all(ET._namespace_map.get(uri) == p for p, uri in NAMESPACES.items())


def test_registration_semantics_unchanged():
    ET.register_namespace("p80test", "urn:port80:a")
    ET.register_namespace("p80test", "urn:port80:b")  # same prefix, new URI: the old mapping goes
    m = ET._namespace_map
    assert m.get("urn:port80:b") == "p80test" and "urn:port80:a" not in m
    assert ET.tostring(ET.Element("{urn:port80:b}x")) == b'<p80test:x xmlns:p80test="urn:port80:b" />'
    del m["urn:port80:b"]
