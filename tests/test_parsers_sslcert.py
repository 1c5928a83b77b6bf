"""parse_sslcert on every corpus capture (tests/fixtures/sslcert), damaged copies, SNI/CCS shapes
(guessed: no capture) and errors."""

from __future__ import annotations

import pytest

from remote.parsers.sslcert import parse_sslcert

try:
    from test_parsers_common import DAMAGES, load, samples
except ImportError:  # pragma: no cover - tests/ as a package
    from tests.test_parsers_common import DAMAGES, load, samples

K = "sslcert"


def facts(res):
    return [(b.kind, b.address, b.hostname, b.port, b.cert_hash, b.cert_store, b.app_id, b.line) for b in res.bindings]


def test_watson_older_field_set_server_2012_2016():
    res = parse_sslcert(load(K, "en-watson-0.0.0.0-443-older-fieldset.txt"))
    assert facts(res) == [("ipport", "0.0.0.0", None, 443, "d0013e91aab93f437a4443b13e6d18bd60f0279c", None,
                           "{00112233-4455-6677-8899-aabbccddeeff}", 5)]
    b = res.bindings[0]
    assert b.fields["Negotiate Client Certificate"] == "Disabled" and b.fields["Ctl Identifier"] == "(null)"
    assert len(b.fields) == 12 and not res.warnings and res.error is None


def test_iisexpress_first_line_dedented_store_my():
    res = parse_sslcert(load(K, "en-cac-iisexpress-44307-first-line-dedented.txt"))
    assert facts(res) == [("ipport", "0.0.0.0", None, 44307, "61d34f532da121bbab64723c4871e72c92f03735", "MY",
                           "{214124cd-d05b-4309-9af9-9caa44b2b74a}", 1)]
    assert res.bindings[0].fields["Disable TLS1.3"] == "Not Set" and not res.warnings


def test_newest_field_set_in_backticks():
    res = parse_sslcert(load(K, "en-bc-onprem-7148-backtick-wrapped.txt"))
    assert facts(res) == [("ipport", "0.0.0.0", None, 7148, "<CERTIFICATE-THUMBPRINT>", None,
                           "{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}", 4)]
    f = res.bindings[0].fields
    assert f["Enable Caching Client Hello"] == "Not Set" and f["Max Settings Per Minute"] == "4294967295"
    assert not res.warnings


def test_three_line_excerpt():
    res = parse_sslcert(load(K, "en-azurelocal-sdn-nchostagent-3line-excerpt.txt"))
    assert facts(res) == [("ipport", "0.0.0.0", None, 443, "411fb4637cc223c876a300d26b814e086634c35c", None,
                           "{28f7fb0f-eab3-4960-9693-9289ca768dea}", 1)]


def test_german_labels_in_a_verbose_stream():
    res = parse_sslcert(load(K, "de-scriptrunner-verbose-excerpt.txt"))
    # "Zertifikathash" padded one column short; "AUSFÜHRLICH: " prefix; "netsh>" prompt; "..." snip
    assert facts(res) == [("ipport", "0.0.0.0", None, 8091, "af459df0ed47a6fg4b8f6a20caf2488d3bb6e1bb", None, None, 8)]
    assert res.error is None and not res.warnings


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("name", samples(K))
def test_damaged_copies(name, damage):
    clean = parse_sslcert(load(K, name))
    got = parse_sslcert(DAMAGES[damage](load(K, name)))
    assert [f[:7] for f in facts(got)] == [f[:7] for f in facts(clean)]


SNI_CCS = """
SSL Certificate bindings:
-------------------------

    IP:port                      : [::]:443
    Certificate Hash             : 1111111111111111111111111111111111111111
    Application ID               : {4dc3e181-e14b-4a21-b022-59fc669b0914}
    Certificate Store Name       : My

    Hostname:port                : www.contoso.com:443
    Certificate Hash             : 2222222222222222222222222222222222222222
    Application ID               : {4dc3e181-e14b-4a21-b022-59fc669b0914}
    Certificate Store Name       : WebHosting

    Central Certificate Store    : 443
    Certificate Hash             : (null)
    Application ID               : {4dc3e181-e14b-4a21-b022-59fc669b0914}
    Certificate Store Name       : (null)
"""


def test_sni_and_central_store_bindings_guessed_shape():
    # No capture of SNI or CCS bindings exists in the corpus: key labels from Microsoft's netsh reference.
    res = parse_sslcert(SNI_CCS)
    assert [(b.kind, b.address, b.hostname, b.port, b.cert_hash, b.cert_store) for b in res.bindings] == [
        ("ipport", "::", None, 443, "1111111111111111111111111111111111111111", "My"),
        ("hostnameport", None, "www.contoso.com", 443, "2222222222222222222222222222222222222222", "WebHosting"),
        ("ccs", None, None, 443, None, None),
    ]


def test_empty_and_errors():
    assert parse_sslcert("\nSSL Certificate bindings:\n-------------------------\n\n").bindings == []
    assert parse_sslcert("\nSSL Certificate bindings:\n-------------------------\n\n").error is None
    r = parse_sslcert("The requested operation requires elevation (Run as administrator).\n")
    assert r.bindings == [] and "elevation" in r.error
