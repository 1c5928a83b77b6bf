"""parse_excludedportrange on every corpus capture (seven languages), damaged copies and errors."""

from __future__ import annotations

import pytest

from remote.parsers.excludedportrange import parse_excludedportrange as parse

try:
    from test_parsers_common import DAMAGES, load, samples
except ImportError:  # pragma: no cover - tests/ as a package
    from tests.test_parsers_common import DAMAGES, load, samples

K = "excludedportrange"


def rows(res, table=None):
    return [(r.start, r.end, r.administered) for r in res.ranges if table is None or r.table == table]


@pytest.mark.parametrize("name,count,first,administered,line", [
    ("de-docker50000-blog-a-hyperv-on.txt", 8, (28380, 28380, False), [], 5),
    ("de-docker50000-blog-b-hyperv-off.txt", 2, (28380, 28380, False), [], 5),
    ("en-chocolatey-test-env-68-win10.txt", 16, (5357, 5357, False), [(50000, 50059)], 6),
    ("en-clash-verge-1688-after-hyperv-suspect.txt", 12, (1061, 1160, False), [(50000, 50059)], 5),
    ("en-docker-for-win-11584-publish-all.txt", 10, (1462, 1462, False), [(50000, 50059)], 5),
    ("en-gvr-unity-1002-win10-2019-no-administered.txt", 7, (49705, 49804, False), [], 6),
    ("en-localsend-125-pwsh-winrm-singles.txt", 11, (5985, 5985, False), [(50000, 50059)], 6),
    ("en-so-58216537-answer-lowranges-space-line.txt", 15, (1031, 1130, False), [(50000, 50099)], 6),
    ("en-so-58216537-question-hyperv-9800.txt", 9, (5357, 5357, False), [(50000, 50059)], 6),
    ("es-kidcode-ngrok-long-english-footer-suspect.txt", 49, (1635, 1734, False), [], 6),
    ("es-mvd-catalan-blog-before.txt", 4, (1898, 1997, False), [(50000, 50059)], 6),
    ("es-mvd-catalan-blog-after-persistent-adds.txt", 16, (20, 22, True),
     [(20, 22), (80, 80), (443, 443), (3306, 3306), (5432, 5432), (8000, 8000), (8080, 8080), (8888, 8888),
      (40000, 40010), (50000, 50059)], 6),
    ("es-wsl-5306-elianbarci-header-only.txt", 24, (1025, 1124, False), [], 3),
    ("fr-squid-readme-a-long-noblanks.txt", 67, (80, 80, False), [(50000, 50059)], 4),
    ("fr-squid-readme-b-after-winnat-headeronly.txt", 6, (80, 80, False), [(50000, 50059)], 3),
    ("fr-squid-readme-c-full-persistent-13128.txt", 7, (80, 80, False), [(13128, 13130), (50000, 50059)], 6),
    ("ko-cloud-barista-81-ps.txt", 10, (5357, 5357, False), [(50000, 50059)], 6),
    ("pt-br-fixture-claimed-real-wsl-ports.txt", 5, (5357, 5357, False), [(50000, 50059)], 6),
    ("ru-fixture-claimed-real-2026-09-04.txt", 12, (5357, 5357, False), [(50000, 50059)], 6),
    ("zh-cn-immich-docker-12335.txt", 19, (4549, 4648, False), [(50000, 50059)], 6),
    ("zh-cn-whimbox-21-int-ip.txt", 18, (1607, 1706, False), [(50000, 50059)], 6),
    ("zh-tw-cooking-agent-notes-9200-partial-trailing.txt", 16, (1073, 1172, False), [(50000, 50059)], 6),
])
def test_single_listings(name, count, first, administered, line):
    res = parse(load(K, name))
    assert len(res.ranges) == count and rows(res)[0] == first and res.ranges[0].line == line
    assert [(r.start, r.end) for r in res.ranges if r.administered] == administered
    assert res.tables == 1 and not res.warnings and res.error is None
    titled = not name.startswith(("es-wsl", "fr-squid-readme-b"))
    assert {r.protocol for r in res.ranges} == ({"tcp"} if titled else {None})


def test_german_before_after_winnat_restart():
    res = parse(load(K, "de-sila-obsidian-notes-before-after-winnat-listindent.txt"))
    assert res.tables == 2
    assert rows(res, 0)[:3] == [(5357, 5357, False), (5985, 5985, False), (47001, 47001, False)]
    assert (49851, 49950, False) in rows(res, 0) and (49851, 49950, False) not in rows(res, 1)
    assert rows(res, 1)[-1] == (50000, 50059, True) and len(rows(res, 1)) == 7


def test_gha_before_after_administered_add():
    res = parse(load(K, "en-gha-otel-10839-before-after-administered.txt"))
    assert rows(res, 0) == [(80, 80, False), (5986, 5986, False), (47001, 47001, False), (56638, 56737, False),
                            (56738, 56837, False)]
    assert rows(res, 1) == [(80, 80, False), (5986, 5986, False), (47001, 47001, False), (55679, 55679, True)]


def test_tcp_and_udp_in_a_go_test_log():
    res = parse(load(K, "en-gha-otel-contrib-10872-tcp-udp-gotest-indented.txt"))
    assert [(r.protocol, r.start, r.end) for r in res.ranges] == [
        ("tcp", 80, 80), ("tcp", 5986, 5986), ("tcp", 47001, 47001), ("tcp", 51417, 51516), ("tcp", 51517, 51616),
        ("udp", 56030, 56129), ("udp", 56130, 56229)]


def test_udp_with_dynamic_port_block_and_trailing_spaces():
    res = parse(load(K, "en-framelink-runbook-udp-dynamicport-trailing-spaces.txt"))
    assert res.tables == 2 and {r.protocol for r in res.ranges} == {"udp"}
    assert rows(res, 0) == rows(res, 1) == [(50000, 50059, True), (57566, 57665, False), (57666, 57765, False),
                                            (59236, 59335, False), (59336, 59435, False)]


def test_empty_table_is_not_an_error():
    res = parse(load(K, "zh-cn-clash-verge-1688-empty-table.txt"))
    assert res.ranges == [] and res.error is None and res.tables == 1


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("name", samples(K))
def test_damaged_copies(name, damage):
    clean = parse(load(K, name))
    got = parse(DAMAGES[damage](load(K, name)))
    assert rows(got) == rows(clean) and got.error is None


def test_errors_and_junk():
    r = parse("The requested operation requires elevation (Run as administrator).\n")
    assert r.ranges == [] and "elevation" in r.error
    r = parse("Protocol tcp Port Exclusion Ranges\n\nStart Port    End Port\n----------    --------\n"
              "     70000       70001\n      9000        8000\n")
    assert r.ranges == [] and len(r.warnings) == 2
