"""parse_iplisten on the corpus samples, damaged copies, IPv6 and error shapes, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote.parsers.iplisten import parse_iplisten
from remote.parsers.records import IpListenResult

try:
    from test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples
except ImportError:  # pragma: no cover - tests/ as a package
    from tests.test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples

K = "iplisten"
HEADER = "\nIP addresses present in the IP listen list:\n-------------------------------------------\n\n"


def test_cn_iis_clone_before():
    res = parse_iplisten(load(K, "cn-iis-clone-before.txt"))
    assert res.addresses == ["192.168.33.1", "127.0.0.0", "127.0.0.1"]
    assert res.error is None and not res.warnings


def test_cn_iis_clone_after_whitespace_only_trailing_lines():
    res = parse_iplisten(load(K, "cn-iis-clone-after.txt"))
    assert res.addresses == ["192.168.33.2", "127.0.0.0", "127.0.0.1"]
    assert res.error is None and not res.warnings


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("name", samples(K))
def test_damaged_copies(name, damage):
    clean = parse_iplisten(load(K, name))
    res = parse_iplisten(DAMAGES[damage](load(K, name)))
    assert res.addresses == clean.addresses and res.error is None and not res.warnings


def test_truncation_gives_a_prefix():
    full = parse_iplisten(load(K, "cn-iis-clone-before.txt")).addresses
    for _, text in line_prefixes(load(K, "cn-iis-clone-before.txt")):
        got = parse_iplisten(text).addresses
        assert got == full[: len(got)]


def test_empty_list_means_every_address():
    # No real capture of the empty list exists (NOTES §3): header only.
    res = parse_iplisten(HEADER + "\n")
    assert res.addresses == [] and res.error is None and not res.warnings


def test_ipv6_entries():
    # No real capture with IPv6 entries exists (NOTES §3).
    res = parse_iplisten(HEADER + "    ::1\n    fe80::1%4\n    [2001:db8::5]\n    10.0.0.1\n")
    assert res.addresses == ["::1", "fe80::1%4", "2001:db8::5", "10.0.0.1"]


def test_error_after_header_and_junk_line():
    res = parse_iplisten(HEADER + "The requested operation requires elevation (Run as administrator).\n")
    assert res.addresses == [] and res.error == "The requested operation requires elevation (Run as administrator)."
    res = parse_iplisten(HEADER + "    127.0.0.1\n    not-an-ip\n")
    assert res.addresses == ["127.0.0.1"] and len(res.warnings) == 1 and res.error is None


@SETTINGS
@given(st.text())
def test_never_raises_on_any_text(text):
    res = parse_iplisten(text)
    assert isinstance(res, IpListenResult)
    assert not any(w.startswith("internal parser error") for w in res.warnings)


@SETTINGS
@given(mutated([load(K, n) for n in samples(K)]))
def test_never_raises_on_mutated_samples(text):
    res = parse_iplisten(text)
    assert isinstance(res, IpListenResult)
    assert not any(w.startswith("internal parser error") for w in res.warnings)
