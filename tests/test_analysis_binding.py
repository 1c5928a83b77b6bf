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
