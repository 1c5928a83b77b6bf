"""parse_netstat on every corpus sample, damaged copies, hand-made edge rows, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote.parsers.netstat import normalize_state, parse_netstat
from remote.parsers.records import NetstatResult

try:
    from test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples
except ImportError:  # pragma: no cover - tests/ as a package
    from tests.test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples

K = "netstat"


def parse(name: str, damage=lambda t: t) -> NetstatResult:
    return parse_netstat(damage(load(K, name)))


def facts(res: NetstatResult):
    return [(s.proto, s.local_address, s.local_port, s.remote_address, s.remote_port, s.state, s.pid, s.ipv6)
            for s in res.sockets]


def owners(res: NetstatResult):
    return [(s.local_port, s.pid, s.owner, s.owner_services, s.owner_unknown) for s in res.sockets]


# --- corpus ---------------------------------------------------------------------------------------


def test_htb_flight_findstr_listening_lost_indent():
    res = parse("htb-flight-findstr-listening.txt")
    assert len(res.sockets) == 24 and not res.warnings and res.error is None
    assert all(s.state == "LISTENING" and s.proto == "TCP" and s.local_address == "0.0.0.0" for s in res.sockets)
    assert {s.local_port for s in res.sockets if s.pid == 4} == {445, 5985, 8000, 47001}
    assert facts(res)[0] == ("TCP", "0.0.0.0", 80, "0.0.0.0", 0, "LISTENING", 5284, False)
    assert res.sockets[-1].local_port == 49725 and res.sockets[-1].pid == 3052 and res.sockets[-1].line == 24


def test_htb_overwatch_findstr_tcp_established_rows():
    res = parse("htb-overwatch-findstr-tcp.txt")
    assert len(res.sockets) == 33 and not res.warnings
    est = [s for s in res.sockets if s.state == "ESTABLISHED"]
    assert [(s.local_address, s.local_port, s.remote_address, s.remote_port, s.pid) for s in est] == [
        ("10.129.38.246", 5985, "10.10.15.113", 48708, 4),
        ("10.129.38.246", 6520, "10.10.15.113", 50694, 700),
    ]
    assert {s.local_port for s in res.sockets if s.pid == 4 and s.listening} == {445, 5985, 8000, 47001, 139}


def test_gh_runner_images_header_kept():
    res = parse("gh-runner-images-9915-ws2022-excerpt.txt")
    assert facts(res) == [("TCP", "0.0.0.0", 80, "0.0.0.0", 0, "LISTENING", 4, False)]
    assert res.sockets[0].line == 3 and not res.warnings


@pytest.mark.parametrize("name,port", [
    ("bookofdaniel-8082-find.txt", 8082),
    ("gh-x64dbgmcp-21-fr-win11-findstr.txt", 50300),
])
def test_ipv4_and_ipv6_wildcards_pid4(name, port):
    res = parse(name)
    assert facts(res) == [
        ("TCP", "0.0.0.0", port, "0.0.0.0", 0, "LISTENING", 4, False),
        ("TCP", "::", port, "::", 0, "LISTENING", 4, True),
    ]


def test_uts_iotbay_single_ipv6_row():
    assert facts(parse("uts-iotbay-ipv6-8080-pid4.txt")) == [("TCP", "::", 8080, "::", 0, "LISTENING", 4, True)]


def test_blog_abo_hostname_foreign_and_no_ownership():
    res = parse("blog-pid4-abo-excerpt.txt")
    assert facts(res) == [
        ("TCP", "0.0.0.0", 80, "myhostname", 0, "LISTENING", 4, False),
        ("TCP", "::", 80, "myhostname", 0, "LISTENING", 4, True),
    ]
    assert all(s.owner_unknown and s.owner is None for s in res.sockets)
    assert not res.warnings


def test_thm_abon_owner_lines_and_trailing_spaces():
    res = parse("thm-winclr-abon-trailing-spaces.txt")
    assert owners(res) == [
        (22, 2116, "sshd.exe", [], False),
        (135, 820, "svchost.exe", ["RpcSs"], False),
        (49669, 2036, "spoolsv.exe", [], False),
        (49670, 584, None, [], True),  # "Can not obtain ownership information" for a non-4 PID
        (49686, 592, "lsass.exe", [], False),
        (22, 2116, "sshd.exe", [], False),
    ]
    assert res.sockets[-1].state == "ESTABLISHED" and not res.warnings


def test_get_nettcpconnection_table():
    res = parse("htb-overwatch-oxdf-get-nettcpconnection.txt")
    assert facts(res) == [
        ("TCP", "::", 8000, None, None, None, 4, True),
        ("TCP", "0.0.0.0", 8000, None, None, None, 4, False),
    ]


# --- damage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("name", samples(K))
def test_damaged_copies_keep_the_sockets(name, damage):
    clean, damaged = parse(name), parse(name, DAMAGES[damage])
    assert facts(damaged) == facts(clean)
    assert owners(damaged) == owners(clean)
    assert damaged.error is None


@pytest.mark.parametrize("name", ["htb-overwatch-findstr-tcp.txt", "thm-winclr-abon-trailing-spaces.txt"])
def test_truncated_at_line_boundaries_gives_a_prefix(name):
    full = facts(parse(name))
    for _, text in line_prefixes(load(K, name)):
        got = facts(parse_netstat(text))
        assert got == full[: len(got)]


# --- shapes not in the corpus (hand-made from the documented layout) ------------------------------


def test_udp_rows_zone_ids_and_pid_in_fourth_column():
    text = (
        "\nActive Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n"
        "  UDP    0.0.0.0:500            *:*                                    3124\n"
        "  UDP    [fe80::1%4]:1900       *:*                                    2900\n"
        "  TCPv6  [fe80::1%4]:139        [::]:0                 LISTENING       4\n"
        "  TCP    10.0.0.5:49700         10.0.0.9:443           TIME_WAIT       0\n"
    )
    assert facts(parse_netstat(text)) == [
        ("UDP", "0.0.0.0", 500, "*", None, None, 3124, False),
        ("UDP", "fe80::1%4", 1900, "*", None, None, 2900, True),
        ("TCP", "fe80::1%4", 139, "::", 0, "LISTENING", 4, True),
        ("TCP", "10.0.0.5", 49700, "10.0.0.9", 443, "TIME_WAIT", 0, False),
    ]


def test_localized_states_multiword_and_structural_listening():
    # Localized words come from third-party fixtures (NOTES §4, unverified): no real capture exists.
    text = (
        "Aktive Verbindungen\n\n  Proto  Lokale Adresse         Remoteadresse          Status           PID\n"
        "  TCP    0.0.0.0:80             0.0.0.0:0              ABHÖREN          4\n"
        "  TCP    10.0.0.5:80            10.0.0.9:5000          HERGESTELLT      4\n"
        "  TCP    10.0.0.5:80            10.0.0.9:5001          SCHLIESSEN_WARTEN 4\n"
        "  TCP    0.0.0.0:445            0.0.0.0:0              À L'ÉCOUTE       4\n"
        "  TCP    [::]:5985              [::]:0                 IN ASCOLTO       4\n"
        "  TCP    0.0.0.0:135            0.0.0.0:0              SLUŠANJE         912\n"
        "  TCP    10.0.0.5:1             10.0.0.9:2             MYSTERY WORD     7\n"
    )
    res = parse_netstat(text)
    assert [(s.local_port, s.state, s.pid) for s in res.sockets] == [
        (80, "LISTENING", 4), (80, "ESTABLISHED", 4), (80, "CLOSE_WAIT", 4), (445, "LISTENING", 4),
        (5985, "LISTENING", 4), (135, "LISTENING", 912), (1, "MYSTERY WORD", 7),
    ]
    assert len(res.warnings) == 1 and "MYSTERY WORD" in res.warnings[0]


def test_state_table():
    assert normalize_state("A L'ECOUTE") == normalize_state("À L’ÉCOUTE") == "LISTENING"
    assert normalize_state("ESCUCHANDO") == "LISTENING" and normalize_state("ESTABLECIDO") == "ESTABLISHED"
    assert normalize_state("WARTEND") == "TIME_WAIT" and normalize_state("FIN_WAIT_2") == "FIN_WAIT_2"
    assert normalize_state("nonsense") is None


def test_bound_kept_and_no_pid_column():
    text = "  TCP    0.0.0.0:50000          0.0.0.0:0              BOUND           1234\n" \
           "  TCP    0.0.0.0:80             0.0.0.0:0              LISTENING\n"
    assert [(s.state, s.pid) for s in parse_netstat(text).sockets] == [("BOUND", 1234), ("LISTENING", None)]


def test_abo_service_line_then_image_and_more_pager():
    text = ("  TCP    0.0.0.0:3389           0.0.0.0:0              LISTENING       1012\n  TermService\n"
            " [svchost.exe]\n-- More --\n  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       4\n"
            " Can not obtain ownership information\n")
    assert owners(parse_netstat(text)) == [(3389, 1012, "svchost.exe", ["TermService"], False), (445, 4, None, [], True)]


def test_interval_output_repeats_the_title_without_breaking_owner_lines():
    block = ("\nActive Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n"
             "  TCP    0.0.0.0:80             0.0.0.0:0              LISTENING       4\n"
             " Can not obtain ownership information\n"
             "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       912\n  RpcSs\n [svchost.exe]\n")
    res = parse_netstat(block * 2)
    assert owners(res) == [(80, 4, None, [], True), (135, 912, "svchost.exe", ["RpcSs"], False)] * 2
    assert not res.warnings


def test_get_nettcpconnection_with_state_column():
    text = ("\nLocalAddress LocalPort RemoteAddress RemotePort State OwningProcess\n"
            "------------ --------- ------------- ---------- ----- -------------\n"
            "::           80        ::            0          Listen 4\n"
            "10.0.0.5     5985      10.0.0.9      50000      Established 4\n")
    assert facts(parse_netstat(text)) == [
        ("TCP", "::", 80, "::", 0, "LISTENING", 4, True),
        ("TCP", "10.0.0.5", 5985, "10.0.0.9", 50000, "ESTABLISHED", 4, False),
    ]


def test_errors():
    assert parse_netstat("The requested operation requires elevation.\n").error == \
        "The requested operation requires elevation."
    r = parse_netstat("Get-NetTCPConnection : No MSFT_NetTCPConnection objects found with property 'LocalPort' "
                      "equal to '2112'.  Verify the value of the property and retry.\n")
    assert r.sockets == [] and "No MSFT_NetTCPConnection" in r.error
    assert parse_netstat("\nActive Connections\n\n  Proto  Local Address   Foreign Address   State  PID\n").error is None


# --- properties -----------------------------------------------------------------------------------


@SETTINGS
@given(st.text())
def test_never_raises_on_any_text(text):
    res = parse_netstat(text)
    assert isinstance(res, NetstatResult)
    assert not any(w.startswith("internal parser error") for w in res.warnings)


@SETTINGS
@given(mutated([load(K, n) for n in samples(K)]))
def test_never_raises_on_mutated_samples(text):
    res = parse_netstat(text)
    assert isinstance(res, NetstatResult)
    assert not any(w.startswith("internal parser error") for w in res.warnings)
    assert all(s.proto in ("TCP", "UDP") for s in res.sockets)
