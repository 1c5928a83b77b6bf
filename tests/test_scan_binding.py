"""Unseen bundles built from real captures (not the demo fleet's), served by the lab and scanned over real
sockets: bindable, blocker kinds, excluded range, certificate hash and product, IIS site and app pool."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remote.cli.app import app
from remote.lab.fixture import lab_fleet
from remote.lab.fleet import demo_fleet_dir

FIX = Path(__file__).resolve().parent / "fixtures"
BUNDLES = {  # host -> (demo bundle it starts from, {bundle file: corpus capture})
    "unseen-winnat": ("free", {"excludedportrange.txt": "excludedportrange/fr-squid-readme-c-full-persistent-13128.txt",
                               "excludedportrange6.txt": "excludedportrange/de-docker50000-blog-b-hyperv-off.txt"}),
    "unseen-iisexpress": ("iis-idle", {"sslcert.txt": "sslcert/en-cac-iisexpress-44307-first-line-dedented.txt",
                                       "iis_sites.txt": "get-website/en-psforsysadmins-book-default-site.txt",
                                       "iis_apppools.txt": "get-iisapppool/en-psforsysadmins-book-defaultapppool.txt"}),
    "unseen-watson": ("nginx", {"sslcert.txt": "sslcert/en-watson-0.0.0.0-443-older-fieldset.txt"}),
}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("binding")
    profiles = tmp / "profiles"
    for host, (base, files) in BUNDLES.items():
        shutil.copytree(demo_fleet_dir() / base, profiles / host)
        for name, capture in files.items():
            shutil.copyfile(FIX / capture, profiles / host / name)
    inv = tmp / "inv.ini"
    with lab_fleet(profiles, inventory=inv) as fleet:
        res = CliRunner().invoke(app, ["scan", "-i", str(inv), "--evidence-dir", str(tmp / "ev"), "-p", "80",
                                       "-p", "443", "-p", "13129", "-p", "44307", "-f", "json", "-o",
                                       str(tmp / "report.json")], env={"PORT80_PASSWORD": fleet.password})
        logs = {h.name: h.command_log for h in fleet.hosts}
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp / "report.json").read_text())
    return {h["host"]: {p["port"]: p for p in h["ports"]} for h in doc["hosts"]}, doc, logs, tmp


def test_excluded_range_blocks_port_80_nothing_listens_on(scanned):
    ports = scanned[0]["unseen-winnat"]
    p = ports[80]
    assert p["holder"] == "free" and p["bindable"] is False
    assert [(b["kind"], b["start"], b["end"], b["administered"]) for b in p["blockers"]] == [
        ("excluded_range", 80, 80, False)]
    assert [(e["protocol"], e["start"], e["end"], e["administered"], e["ip"]) for e in p["excluded_ranges"]] == [
        ("tcp", 80, 80, False, "ipv4")]
    assert p["blockers"][0]["evidence"] == "excludedportrange.txt:6"
    q = ports[13129]  # inside the administered 13128-13130 *: listed, yet an explicit bind works
    assert q["bindable"] is True and q["blockers"] == []
    assert [(e["start"], e["end"], e["administered"]) for e in q["excluded_ranges"]] == [(13128, 13130, True)]


def test_certificate_binding_and_iis_site_and_app_pool(scanned):
    ports = scanned[0]["unseen-iisexpress"]
    reg = ports[80]["registrations"][0]
    assert reg["iis"] == {"site": "Default Web Site", "site_id": 1, "app_pool": "DefaultAppPool"}
    assert ports[80]["bindable"] is False and [b["kind"] for b in ports[80]["blockers"]] == ["http.sys"]
    tls = ports[44307]["tls"]
    assert [(t["binding"], t["cert_hash"], t["cert_store"], t["app_id"], t["product"]) for t in tls] == [
        ("0.0.0.0:44307", "61d34f532da121bbab64723c4871e72c92f03735", "MY", "{214124cd-d05b-4309-9af9-9caa44b2b74a}",
         "IIS Express")]
    assert ports[44307]["holder"] == "free" and ports[44307]["bindable"] is True  # the lab: no exclusions


def test_unknown_app_id_is_not_guessed(scanned):
    ports = scanned[0]["unseen-watson"]
    assert [(t["cert_hash"], t["cert_store"], t["product"]) for t in ports[443]["tls"]] == [
        ("d0013e91aab93f437a4443b13e6d18bd60f0279c", None, None)]
    assert ports[80]["bindable"] is False and [b["kind"] for b in ports[80]["blockers"]] == ["listener"]


def test_the_new_commands_are_read_only_and_recorded(scanned):
    _, doc, logs, tmp = scanned
    text = " ".join(str(x) for log in logs.values() for x in log).lower()
    for cmd in ("netsh.exe http show sslcert", "netsh.exe int ipv4 show excludedportrange protocol=tcp",
                "netsh.exe int ipv6 show excludedportrange protocol=tcp", "get-website", "get-iisapppool"):
        assert cmd in text, cmd
    assert (tmp / "ev" / "unseen-iisexpress" / "iis_sites.txt").is_file()
    assert not (tmp / "ev" / "unseen-watson" / "iis_sites.txt").exists() or \
        (tmp / "ev" / "unseen-watson" / "iis_sites.txt").read_text().strip() == ""
    assert {h["status"] for h in doc["hosts"]} == {"ok"}
