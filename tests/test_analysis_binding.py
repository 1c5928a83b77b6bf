"""bindable / blockers / excluded_ranges / tls / iis / shadowed_by, on real captures combined into evidence."""

from __future__ import annotations

from pathlib import Path

from remote.analysis.binding import shadowed_by
from remote.analysis.verdicts import Registration, analyze_evidence, parse_evidence

FIX = Path(__file__).resolve().parent / "fixtures"
EMPTY_RANGES = ("\nProtocol tcp Port Exclusion Ranges\n\nStart Port    End Port\n----------    --------\n\n"
                "* - Administered port exclusions.\n\n")


def fx(kind: str, name: str) -> str:
    return (FIX / kind / name).read_text(encoding="utf-8")


def verdict(texts: dict, port: int):
    return analyze_evidence("h", parse_evidence(texts), [port]).ports[0]


def test_excluded_range_blocks_a_port_nothing_listens_on():
    texts = {"netstat": fx("netstat", "htb-overwatch-findstr-tcp.txt"),
             "excludedportrange": fx("excludedportrange", "en-chocolatey-test-env-68-win10.txt")}
    p = verdict(texts, 51999)  # inside the WinNAT block 51940-52039: nothing listens, yet no bind
    assert p.holder == "free" and p.listeners == []
    assert p.bindable is False
    assert p.blockers == [{"kind": "excluded_range", "protocol": "tcp", "start": 51940, "end": 52039,
                           "administered": False, "evidence": "excludedportrange.txt:8"}]
    # an administered exclusion ("*") keeps the port out of the dynamic pool; an explicit bind works
    q = verdict(texts, 50010)
    assert q.excluded_ranges == [{"protocol": "tcp", "start": 50000, "end": 50059, "administered": True,
                                  "ip": "ipv4", "evidence": "excludedportrange.txt:7"}]
    assert q.blockers == [] and q.bindable is True


def test_localized_listing_counts_the_last_table_only():
    texts = {"netstat": fx("netstat", "htb-overwatch-findstr-tcp.txt"),
             "excludedportrange": fx("excludedportrange", "de-sila-obsidian-notes-before-after-winnat-listindent.txt")}
    assert verdict(texts, 49900).bindable is True  # 49851-49950 was released by "net stop winnat"
    assert verdict(texts, 47001).blockers[-1]["evidence"] == "excludedportrange.txt:33"
    assert verdict(texts, 50001).excluded_ranges[0]["evidence"] == "excludedportrange.txt:37"


def test_bindable_needs_listeners_and_ranges():
    netstat = fx("netstat", "htb-overwatch-findstr-tcp.txt")
    assert verdict({"netstat": netstat}, 8081).bindable is None  # excluded ranges not collected
    assert verdict({"netstat": netstat, "excludedportrange": EMPTY_RANGES}, 8081).bindable is True
    assert verdict({"excludedportrange": EMPTY_RANGES}, 8081).bindable is None
    held = verdict({"netstat": netstat}, 8000)
    assert held.bindable is False and held.blockers[0]["kind"] == "http.sys"


def test_get_nettcpconnection_is_the_listener_source_without_netstat():
    texts = {"nettcpconnection": fx("netstat", "htb-overwatch-oxdf-get-nettcpconnection.txt"),
             "excludedportrange": EMPTY_RANGES}
    p = verdict(texts, 8000)
    assert p.holder == "http.sys" and [l.evidence for l in p.listeners] == ["nettcpconnection.txt:4",
                                                                            "nettcpconnection.txt:5"]
    assert p.bindable is False and p.blockers[0] == {"kind": "http.sys", "address": "0.0.0.0", "urls": [],
                                                     "evidence": "nettcpconnection.txt:5"}
    r = analyze_evidence("h", parse_evidence(texts), [8001])
    assert r.ports[0].holder == "free" and r.ports[0].bindable is True
    assert "netstat.txt missing" not in (r.error or "")


def test_iis_site_and_app_pool_from_queue_log_directory_and_site_table():
    texts = {"servicestate": fx("servicestate", "htb-flight-iis-winrm.txt"),
             "netstat": fx("netstat", "htb-flight-findstr-listening.txt"),
             "iis_sites": fx("get-website", "en-psforsysadmins-book-default-site.txt")}
    p = verdict(texts, 8000)
    assert p.registrations[0].iis == {"site": "Default Web Site", "site_id": 1, "app_pool": "DefaultAppPool"}
    del texts["iis_sites"]  # no IIS evidence: the site ID still comes from ...\W3SVC1
    assert verdict(texts, 8000).registrations[0].iis == {"site": None, "site_id": 1, "app_pool": "DefaultAppPool"}
    assert verdict(texts, 5985).registrations[0].iis is None  # WinRM is not IIS


def test_certificate_binding_product_from_app_id_or_none():
    p = verdict({"sslcert": fx("sslcert", "en-cac-iisexpress-44307-first-line-dedented.txt")}, 44307)
    assert p.tls == [{"binding": "0.0.0.0:44307", "kind": "ipport",
                      "cert_hash": "61d34f532da121bbab64723c4871e72c92f03735", "cert_store": "MY",
                      "app_id": "{214124cd-d05b-4309-9af9-9caa44b2b74a}", "product": "IIS Express",
                      "evidence": "sslcert.txt:1"}]
    q = verdict({"sslcert": fx("sslcert", "en-watson-0.0.0.0-443-older-fieldset.txt")}, 443)
    assert q.tls[0]["product"] is None and q.tls[0]["cert_hash"] == "d0013e91aab93f437a4443b13e6d18bd60f0279c"
    assert verdict({"sslcert": fx("sslcert", "en-watson-0.0.0.0-443-older-fieldset.txt")}, 80).tls == []


def test_strong_wildcard_shadows_explicit_and_weak():
    regs = [Registration(url=u, queue=None) for u in (
        "HTTP://*:80/", "HTTP://+:80/API/", "HTTP://+:80/", "HTTP://WWW.A.COM:80/", "HTTP://*:80/API/V2/",
        "HTTP://+:8080/")]
    assert shadowed_by(regs) == {0: "HTTP://+:80/", 3: "HTTP://+:80/", 4: "HTTP://+:80/API/"}
    assert shadowed_by([Registration(url="HTTP://*:80/", queue=None),
                        Registration(url="HTTP://+:80/ONLY/", queue=None)]) == {}


def test_an_iis_site_name_names_the_product_wrapped_name_joined():
    # Get-Website wraps names longer than 16 columns at a word ("Exchange Back" / "End")
    sites = ("\nName             ID   State      Physical Path                  Bindings\n"
             "----             --   -----      -------------                  --------\n"
             "Exchange Back    1    Started    C:\\Program Files\\Microsoft\\Exc http 127.0.0.1:8000:127.0.0.1 \n"
             "End                                                            \n")
    texts = {"servicestate": fx("servicestate", "htb-flight-iis-winrm.txt"),
             "netstat": fx("netstat", "htb-flight-findstr-listening.txt"), "iis_sites": sites}
    r = verdict(texts, 8000).registrations[0]
    assert r.iis == {"site": "Exchange Back End", "site_id": 1, "app_pool": "DefaultAppPool"}
    assert r.product == "Microsoft Exchange Server (IIS)" and "do not stop IIS" in r.advice


def _shadowed_by_pairwise(registrations):
    """The definition, pair by pair (the old quadratic code): the reference the indexed one must match."""
    from remote.analysis.urls import parse_url
    parsed = [parse_url(r.url) for r in registrations]
    klass = lambda u: 0 if u.host == "+" else 2 if u.host == "*" else 1  # noqa: E731
    out = {}
    for i, u in enumerate(parsed):
        if u is None:
            continue
        best = None
        for j, s in enumerate(parsed):
            if j == i or s is None or s.port != u.port or klass(s) != 0 or klass(u) == 0:
                continue
            if u.path.casefold().startswith(s.path.casefold()):
                if best is None or len(s.path) > len(parsed[best].path):
                    best = j
        if best is not None:
            out[i] = registrations[best].url
    return out


def test_shadowed_by_matches_the_pairwise_definition_with_ties_and_case():
    urls = ["HTTP://+:80/", "HTTP://+:80/api/", "HTTP://+:80/API/", "HTTP://+:80/ApiX", "HTTP://*:80/api/v1/",
            "HTTP://www.a.com:80/API/V2/", "HTTP://*:80/apix/y", "HTTP://+:8080/a", "HTTP://*:8080/",
            "HTTP://*:8080/A/b", "HTTP://+:80/Stra\u00dfe/", "HTTP://*:80/STRASSE/x", "HTTP://*:9000/",
            "HTTPS://+:443/", "HTTP://*:443/"]
    regs = [Registration(url=u, queue=None) for u in urls]
    for perm in (regs, regs[::-1], regs[5:] + regs[:5]):
        assert shadowed_by(perm) == _shadowed_by_pairwise(perm)


def test_shadowed_by_looks_up_prefixes_not_every_pair():
    # 3,000 strong wildcards and 3,000 explicit hosts on one port: the pairwise scan made 9,000,000
    # comparisons (58 s for a 5 MB IIS servicestate); the index makes one look-up per distinct path length.
    import remote.analysis.binding as binding
    n = 3000
    regs = [Registration(url=f"HTTP://+:80/app{i:05d}/", queue=None) for i in range(n)]
    regs += [Registration(url=f"HTTP://site{i:05d}.contoso.test:80/app{i:05d}/x/", queue=None) for i in range(n)]
    before = binding._shadow_lookups
    got = shadowed_by(regs)
    assert binding._shadow_lookups - before <= n
    assert got == {n + i: f"HTTP://+:80/app{i:05d}/" for i in range(n)}


class _NoScan(list):
    def __iter__(self):
        raise AssertionError("iis_for scanned every URL group / site for one registration")


def test_iis_for_uses_the_host_index_not_a_scan_per_registration():
    from remote.analysis.binding import IisIndex, iis_for
    from remote.parsers.records import IisBinding, IisSite, ServiceStateResult, UrlGroup
    groups = [UrlGroup(id=f"G{i}", urls=[f"HTTP://site{i}.test:80/"], log_dir=f"C:\\logs\\W3SVC{i}")
              for i in range(1, 50)]
    sites = [IisSite(name=f"Site{i}", id=i, bindings=[IisBinding("http", f"*:80:site{i}.test", "*", 80,
                                                                  f"site{i}.test")]) for i in range(1, 60)]
    ss = ServiceStateResult(url_groups=groups)
    index = IisIndex(ss, sites)
    scanless = ServiceStateResult(url_groups=_NoScan(groups))
    assert iis_for("http://SITE7.test:80/", None, scanless, _NoScan(sites), True, index) == {
        "site": "Site7", "site_id": 7, "app_pool": None}
    # no log directory: the site by its binding, through the (protocol, port) index
    assert iis_for("HTTP://site55.test:80/", None, scanless, _NoScan(sites), True, index) == {
        "site": "Site55", "site_id": 55, "app_pool": None}
    assert iis_for("HTTP://site55.test:80/", None, ss, sites, True) == iis_for(
        "HTTP://site55.test:80/", None, ss, sites, True, index)
