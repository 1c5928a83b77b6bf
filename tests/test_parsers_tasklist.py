"""parse_tasklist on every corpus sample, damaged copies, other shapes, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote.parsers.tasklist import parse_tasklist
from remote.parsers.records import TasklistResult

try:
    from test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples
except ImportError:  # pragma: no cover - tests/ as a package
    from tests.test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples

K = "tasklist"
SVC = "htb-academy-winlpe-srv01-ws2016-svc.txt"


def parse(name: str, damage=lambda t: t) -> TasklistResult:
    return parse_tasklist(damage(load(K, name)))


def facts(res: TasklistResult):
    return [(p.image, p.pid, p.services) for p in res.processes]


def by_pid(res: TasklistResult):
    return {p.pid: (p.image, p.services) for p in res.processes}


def test_svc_listing_ws2016():
    res = parse(SVC)
    assert len(res.processes) == 76 and not res.warnings and res.error is None
    d = by_pid(res)
    assert d[0] == ("System Idle Process", []) and d[4] == ("System", [])
    assert d[2112] == ("svchost.exe", ["W3SVC", "WAS"])
    assert d[1796] == ("inetinfo.exe", ["IISADMIN"])
    assert d[2088] == ("FileZilla Server.exe", ["FileZilla Server"])
    assert d[3396] == ("FileZilla Server Interfac", [])
    assert d[3520] == ("sqlservr.exe", ["MSSQL$SQLEXPRESS01"])
    assert d[780] == ("svchost.exe", ["BrokerInfrastructure", "DcomLaunch", "LSM", "PlugPlay", "Power",
                                      "SystemEventsBroker"])
    assert d[964][1][-3:] == ["Winmgmt", "WpnService", "wuauserv"] and len(d[964][1]) == 17
    assert d[1156][1] == ["CryptSvc", "Dnscache", "LanmanWorkstation", "NlaSvc", "WinRM"]
    assert res.processes[0].line == 3 and (res.processes[-1].image, res.processes[-1].pid) == ("tasklist.exe", 6084)


def test_fi_default_shape_with_overflowing_hand_edited_row():
    res = parse("bookofdaniel-fi-pid-ssrs.txt")
    assert facts(res) == [("SQLServerReportingServices", 2312, [])] and not res.warnings


def test_french_findstr_row_without_header():
    res = parse("gh-x64dbgmcp-21-fr-win11-findstr.txt")
    assert facts(res) == [("System", 4, [])] and not res.warnings


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("name", samples(K))
def test_damaged_copies_keep_every_fact(name, damage):
    assert facts(parse(name, DAMAGES[damage])) == facts(parse(name))


def test_reverse_shell_padding_to_79_columns():
    text = "\n".join(line.ljust(79) for line in load(K, SVC).split("\n"))
    assert facts(parse_tasklist(text)) == facts(parse(SVC))


def test_truncated_at_line_boundaries_gives_a_prefix():
    full = facts(parse(SVC))
    for _, text in line_prefixes(load(K, SVC)):
        got = facts(parse_tasklist(text))
        assert got[:-1] == full[: max(len(got) - 1, 0)]
        if got:
            img, pid, svcs = got[-1]
            assert (img, pid) == full[len(got) - 1][:2] and svcs == full[len(got) - 1][2][: len(svcs)]


def test_findstr_svc_excerpt_without_continuations():
    # "tasklist /svc | findstr svchost": wrapped lines are filtered out, rows ending in "," follow.
    text = ("svchost.exe                    780 BrokerInfrastructure, DcomLaunch, LSM,\n"
            "svchost.exe                    840 RpcEptMapper, RpcSs\n")
    assert facts(parse_tasklist(text)) == [("svchost.exe", 780, ["BrokerInfrastructure", "DcomLaunch", "LSM"]),
                                           ("svchost.exe", 840, ["RpcEptMapper", "RpcSs"])]


def test_default_listing_with_header():
    text = ("\nImage Name                     PID Session Name        Session#    Mem Usage\n"
            "========================= ======== ================ =========== ============\n"
            "System Idle Process              0 Services                   0          8 K\n"
            "svchost.exe                    912 Services                   0     12,345 K\n"
            "My Long Application Name.     4321 Console                    1    102.400 Ko\n")
    assert facts(parse_tasklist(text)) == [("System Idle Process", 0, []), ("svchost.exe", 912, []),
                                           ("My Long Application Name.", 4321, [])]


def test_info_and_error():
    res = parse_tasklist("INFO: No tasks are running which match the specified criteria.\n")
    assert res.processes == [] and res.error is None and len(res.warnings) == 1
    assert parse_tasklist("ERROR: Invalid argument/option - '/x'.\n").error.startswith("ERROR:")


@SETTINGS
@given(st.text())
def test_never_raises_on_any_text(text):
    res = parse_tasklist(text)
    assert isinstance(res, TasklistResult)
    assert not any(w.startswith("internal parser error") for w in res.warnings)


@SETTINGS
@given(mutated([load(K, n) for n in samples(K)]))
def test_never_raises_on_mutated_samples(text):
    res = parse_tasklist(text)
    assert isinstance(res, TasklistResult)
    assert not any(w.startswith("internal parser error") for w in res.warnings)
    assert all(isinstance(p.pid, int) and p.image for p in res.processes)
