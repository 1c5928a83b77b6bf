"""parse_urlacl on every corpus sample, damaged copies, localized/unknown labels, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote.parsers.urlacl import parse_urlacl
from remote.parsers.records import UrlAclResult

try:
    from test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples, trailing_spaces
except ImportError:  # pragma: no cover - tests/ as a package
    from tests.test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples, trailing_spaces

K = "urlacl"
WINRM_SDDL = ("D:(A;;GX;;;S-1-5-80-569256582-2953403351-2909559716-1301513147-412116970)"
              "(A;;GX;;;S-1-5-80-4059739203-877974739-1245631912-527174227-2996563517)")
YES_NO = (True, False)


def parse(name: str, damage=lambda t: t) -> UrlAclResult:
    return parse_urlacl(damage(load(K, name)))


def facts(res: UrlAclResult):
    return [(r.url, [(u.user, u.listen, u.delegate) for u in r.users], r.sddl) for r in res.reservations]


def no_internal_error(res):
    return not any(w.startswith("internal parser error") for w in res.warnings)


# --- corpus ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,url,user,sddl", [
    ("blog-pid4-116B50EB-excerpt.txt", "http://+:80/116B50EB-ECE2-41ac-8429-9F9E963361B7/",
     "NT AUTHORITY\\NETWORK SERVICE", "D:(A;;GX;;;NS)"),
    ("bookofdaniel-ssrs-8082-excerpt.txt", "https://*:8082/", "NT SERVICE\\SQLServerReportingServices",
     "D:(A;;GX;;;BU)(A;;GX;;;LS)"),
    ("darksh3llru-temporary-listen-addresses.txt", "http://+:80/Temporary_Listen_Addresses/", "\\Everyone",
     "D:(A;;GX;;;WD)"),
    ("gh-onlyt-154-italian-excerpt.txt", "http://*:8096/", "\\Everyone", "D:(A;;GX;;;WD)"),
    ("msdocs-iis-wmsvc-8172-flattened.txt", "https://*:8172/", "NT SERVICE\\WMSvc",
     "D:(A;;GX;;;S-1-5-80-257763619-1023834443-750927789-3464696139-1457670516)"),
])
def test_single_entry_samples(name, url, user, sddl):
    res = parse(name)
    assert facts(res) == [(url, [(user, True, False)], sddl)]
    assert res.error is None and not res.warnings


def test_aspnetcore_full_list_with_multi_user_entries():
    res = parse("gh-aspnetcore-19969-win10-1909-excerpt.txt")
    assert facts(res) == [
        ("http://*:5357/", [("BUILTIN\\Users", *YES_NO), ("NT AUTHORITY\\LOCAL SERVICE", *YES_NO)],
         "D:(A;;GX;;;BU)(A;;GX;;;LS)"),
        ("http://+:80/Temporary_Listen_Addresses/", [("\\Everyone", *YES_NO)], "D:(A;;GX;;;WD)"),
        ("https://*:5358/", [("BUILTIN\\Users", *YES_NO), ("NT AUTHORITY\\LOCAL SERVICE", *YES_NO)],
         "D:(A;;GX;;;BU)(A;;GX;;;LS)"),
        ("http://+:10247/apps/", [("NT AUTHORITY\\Authenticated Users", *YES_NO)], "D:(A;;GX;;;AU)"),
    ]
    assert [r.line for r in res.reservations] == [5, 14, 20, 29]


def test_wsman_two_users_one_sddl():
    assert facts(parse("wsman-5985-winrm-wecsvc-two-users.txt")) == [
        ("http://+:5985/wsman/", [("NT SERVICE\\WinRM", *YES_NO), ("NT SERVICE\\Wecsvc", *YES_NO)], WINRM_SDDL)]


def test_winacme_console_wrapped_sddl_is_joined():
    res = parse("gh-winacme-1418-server-console-wrapped-excerpt.txt")
    assert [r.url for r in res.reservations] == [
        "http://+:80/Temporary_Listen_Addresses/", "http://+:5985/wsman/", "http://+:47001/wsman/"]
    assert [r.sddl for r in res.reservations] == ["D:(A;;GX;;;WD)", WINRM_SDDL, WINRM_SDDL]
    assert [len(r.users) for r in res.reservations] == [1, 2, 2] and not res.warnings


def test_ets2_error_body():
    res = parse("gh-ets2telemetry-107-error-handle-invalid.txt")
    assert res.reservations == [] and res.error == "The handle is invalid."


# --- damage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("name", samples(K))
def test_damaged_copies_keep_every_fact(name, damage):
    clean, damaged = parse(name), parse(name, DAMAGES[damage])
    assert facts(damaged) == facts(clean)
    assert damaged.error == clean.error and no_internal_error(damaged)


def test_ws2008r2_trailing_spaces_after_url_and_sddl():
    # gh-winacme-1621-ws2008r2-excerpt (held back) has trailing spaces after the URL and the SDDL.
    text = ("\nURL Reservations: \n----------------- \n\n"
            "    Reserved URL            : http://+:80/.well-known/acme-challenge/   \n"
            "        User: \\Everyone\n            Listen: Yes\n            Delegate: No\n"
            "            SDDL: D:(A;;GX;;;WD)  \n\n")
    assert facts(parse_urlacl(text)) == [
        ("http://+:80/.well-known/acme-challenge/", [("\\Everyone", True, False)], "D:(A;;GX;;;WD)")]


def test_truncated_at_line_boundaries_never_raises_and_is_a_prefix():
    full = facts(parse("gh-aspnetcore-19969-win10-1909-excerpt.txt"))
    for _, text in line_prefixes(load(K, "gh-aspnetcore-19969-win10-1909-excerpt.txt")):
        got = facts(parse_urlacl(text))
        assert [g[0] for g in got] == [f[0] for f in full][: len(got)]
        assert got[:-1] == full[: max(len(got) - 1, 0)]


# --- labels and values by shape ------------------------------------------------------------------


def test_unknown_language_labels_fall_back_to_value_shapes():
    # German label from a third-party fixture (unverified) and invented labels: value shapes decide.
    text = ("Reservierte URL         : http://+:8080/app/\n    Benutzer: NT SERVICE\\Foo\n"
            "        Abhoeren: Yes\n        Delegieren: No\n        SDDL: D:(A;;GX;;;S-1-5-80-1)\n"
            "XYZ                     : https://*:9443/\n    QQQ: \\Everyone\n        A: Yes\n        B: Yes\n"
            "        C: D:(A;;GX;;;WD)\n")
    assert facts(parse_urlacl(text)) == [
        ("http://+:8080/app/", [("NT SERVICE\\Foo", True, False)], "D:(A;;GX;;;S-1-5-80-1)"),
        ("https://*:9443/", [("\\Everyone", True, True)], "D:(A;;GX;;;WD)"),
    ]


def test_bad_yes_no_value_is_a_warning():
    res = parse_urlacl("Reserved URL : http://+:1/\n User: X\\Y\n Listen: Maybe\n Delegate: No\n SDDL: D:(A;;GX;;;WD)\n")
    assert facts(res) == [("http://+:1/", [("X\\Y", None, False)], "D:(A;;GX;;;WD)")]
    assert len(res.warnings) == 1


def test_header_only_is_empty_not_error_and_elevation_is_error():
    assert parse_urlacl("\nURL Reservations:\n-----------------\n\n").error is None
    r = parse_urlacl("Url reservation add failed, Error: 6\nThe handle is invalid.\n")
    assert r.reservations == [] and r.error == "Url reservation add failed, Error: 6"


# --- properties -----------------------------------------------------------------------------------


@SETTINGS
@given(st.text())
def test_never_raises_on_any_text(text):
    res = parse_urlacl(text)
    assert isinstance(res, UrlAclResult) and no_internal_error(res)


@SETTINGS
@given(mutated([load(K, n) for n in samples(K)]))
def test_never_raises_on_mutated_samples(text):
    res = parse_urlacl(text)
    assert isinstance(res, UrlAclResult) and no_internal_error(res)
    for r in res.reservations:
        assert r.url and all(u.listen in (None, True, False) for u in r.users)


def test_trailing_space_helper_sanity():
    assert trailing_spaces("a\nb") == "a   \nb   "
