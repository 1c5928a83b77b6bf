"""parse_iis_sites / parse_iis_apppools on every corpus capture (Get-Website, Get-ChildItem IIS:\\Sites,
Get-IISServerManager .Sites, Get-IISAppPool, IIS:\\AppPools / New-WebAppPool, appcmd list apppool|wp),
damaged copies, and parse_nettcpconnection on the Get-NetTCPConnection capture."""

from __future__ import annotations

import pytest

from remote.parsers.iis_apppools import parse_iis_apppools
from remote.parsers.iis_sites import parse_iis_sites
from remote.parsers.nettcpconnection import parse_nettcpconnection

try:
    from test_parsers_common import DAMAGES, load, samples
except ImportError:  # pragma: no cover - tests/ as a package
    from tests.test_parsers_common import DAMAGES, load, samples


def sites(res):
    return [(s.name, s.id, s.state, s.physical_path, [(b.protocol, b.address, b.port, b.host, b.ssl_flags)
                                                      for b in s.bindings]) for s in res.sites]


def test_get_childitem_sites_multibinding_host_headers():
    res = parse_iis_sites(load("get-website", "en-certify-83-get-childitem-iis-sites-multibinding.txt"))
    assert sites(res) == [
        ("Default Web Site", 1, "Started", r"%SystemDrive%\inetpub\wwwroot",
         [("http", "192.168.1.3", 83, "tristanx.crabdance.com", None)]),
        ("Tristan", 2, "Started", r"D:\Downloads", [("ftp", "*", 21, "", None)]),
        ("TristanX", 3, "Started", r"C:\inetpub\wwwroot\TristanX",
         [("http", "192.168.1.3", 80, "tristanx.undo.it", None), ("ftp", "192.168.1.3", 21, "", None),
          ("https", "192.168.1.3", 443, "tristanx.undo.it", "0")]),
        ("wordpress", 4, "Started", r"C:\inetpub\wwwroot\Wordpress",
         [("http", "192.168.1.3", 800, "tristanx.crabdance.com", None),
          ("https", "192.168.1.3", 85, "tristanx.crabdance.com", "0")]),
    ]
    assert [b.line for b in res.sites[2].bindings] == [5, 6, 7] and not res.warnings


def test_server_manager_sites_blank_state_and_blank_line():
    res = parse_iis_sites(load("get-iissite", "msdocs-get-iisservermanager-sites-ftp-blank-state.txt"))
    got = {s[0]: s for s in sites(res)}
    assert got["FTPSite"] == ("FTPSite", 3, None, r"C:\inetpub\ftproot", [("ftp", "*", 21, "", None)])
    assert got["MyNewSite"][1] == 6555 and [b[2] for b in got["MyNewSite"][4]] == [8099, 8022]
    assert got["Patti"][4] == [("http", "*", 8080, "", None), ("http", "*", 8033, "", None)]
    assert got["Default Web Site"][:3] == ("Default Web Site", 1, "Stopped") and len(res.sites) == 6


def test_wrapped_name_and_id_last_listing_wins():
    res = parse_iis_sites(load("get-website", "en-psforsysadmins-book-new-website-wrapped-name-id.txt"))
    assert sites(res)[-1] == ("PowerShellForSysAdmins", 1052659105, "Started", "C:\\inetpub\\wwwroot\\",
                              [("http", "*", 81, "", None)])


@pytest.mark.parametrize("name,expected", [
    ("en-psforsysadmins-book-default-site.txt",
     [("Default Web Site", 1, "Started", r"%SystemDrive%\inetpub\wwwroot", [("http", "*", 80, "", None)])]),
    ("en-simcorp-script-comment-iis-sites-trailing-pad.txt",
     [("SimCorp", 1, "Started", r"D:\apps\simcorp", [("http", "*", 80, "", None)])]),
    ("msdocs-iis-provider-dir-iis-sites-demosite.txt",
     [("Default Web Site", 1, "Started", r"f:\inetpub\wwwroot", [("http", "*", 80, "", None)]),
      ("DemoSite", 2, "Started", r"c:\demosite", [("http", "", 8080, "", None), ("http", "", 8081, "", None)])]),
])
def test_single_site_tables(name, expected):
    res = parse_iis_sites(load("get-website", name))
    assert sites(res) == expected and not res.warnings and res.error is None


@pytest.mark.parametrize("damage", ["trailing_spaces", "crlf", "bom"])
@pytest.mark.parametrize("kind,name", [("get-website", n) for n in samples("get-website")]
                         + [("get-iissite", n) for n in samples("get-iissite")])
def test_sites_damaged_copies(kind, name, damage):
    assert sites(parse_iis_sites(DAMAGES[damage](load(kind, name)))) == sites(parse_iis_sites(load(kind, name)))


def test_sites_lost_indentation_keeps_bindings():
    text = DAMAGES["strip_indent"](load("get-website", "en-certify-83-get-childitem-iis-sites-multibinding.txt"))
    got = {s.name: [(b.protocol, b.port) for b in s.bindings] for s in parse_iis_sites(text).sites}
    assert got["TristanX"] == [("http", 80), ("ftp", 21), ("https", 443)]


def test_appcmd_list_site_guessed_shape():
    # no capture of "appcmd list site": the one-line form of the captured "appcmd list apppool"
    res = parse_iis_sites('SITE "Default Web Site" (id:1,bindings:http/*:80:,https/*:443:,net.tcp/808:*,state:Started)\n'
                          'SITE "Intranet" (id:2,bindings:http/*:80:intranet.corp,state:Stopped)\n')
    assert sites(res) == [
        ("Default Web Site", 1, "Started", None, [("http", "*", 80, "", None), ("https", "*", 443, "", None),
                                                  ("net.tcp", None, None, None, None)]),
        ("Intranet", 2, "Stopped", None, [("http", "*", 80, "intranet.corp", None)])]


def test_no_iis_is_empty_not_an_error():
    assert parse_iis_sites("").error is None and parse_iis_sites("").sites == []
    r = parse_iis_sites("The term 'Get-Website' is not recognized as the name of a cmdlet, function, script file, "
                        "or operable program.\n")
    assert r.sites == [] and "not recognized" in r.error


def pools(res):
    return [(p.name, p.state, p.clr_version, p.pipeline_mode, p.start_mode, p.applications, p.worker_pids)
            for p in res.pools]


def test_get_iisapppool_tables():
    res = parse_iis_apppools(load("get-iisapppool", "zh-tw-gitbook-notes-six-default-pools.txt"))
    assert [p[0] for p in pools(res)] == ["DefaultAppPool", "Classic .NET AppPool", ".NET v2.0 Classic", ".NET v2.0",
                                          ".NET v4.5 Classic", ".NET v4.5"]
    assert pools(res)[1] == ("Classic .NET AppPool", "Started", "v2.0", "Classic", "OnDemand", [], [])
    res = parse_iis_apppools(load("get-iisapppool", "msdocs-get-iisapppool-example2-all-pools.txt"))
    assert pools(res)[3] == ("PattiFul", "Stopped", "v4.0", "Integrated", "OnDemand", [], [])
    res = parse_iis_apppools(load("get-iisapppool", "en-psforsysadmins-book-defaultapppool.txt"))
    assert pools(res) == [("DefaultAppPool", "Started", "v4.0", "Integrated", "OnDemand", [], [])]
    assert res.pools[0].line == 4


def test_webadministration_apppool_view():
    res = parse_iis_apppools(load("get-webapppool", "en-simcorp-script-comment-iis-apppools-trailing-pad.txt"))
    assert [(p.name, p.state, p.applications) for p in res.pools] == [
        (".NET v4.5", "Started", []), (".NET v4.5 Classic", "Started", []), ("DefaultAppPool", "Started", []),
        ("SimCorp", "Started", ["SimCorp"])]
    for name in ("en-psforsysadmins-book-new-webapppool.txt", "zh-tw-gitbook-notes-new-webapppool.txt"):
        res = parse_iis_apppools(load("get-webapppool", name))
        assert len(res.pools) == 1 and res.pools[0].state == "Started" and not res.warnings


def test_appcmd_apppool_and_wp_lines():
    res = parse_iis_apppools(load("appcmd-list-apppool", "azure-pipelines-tasks-18901-state-unknown-excerpt.txt"))
    assert len(res.pools) == 11 and {p.state for p in res.pools} == {"Unknown"}
    assert pools(res)[6] == ("anon.WebServices.anon.AutoGrouping", "Unknown", "", "Integrated", None, [], [])
    res = parse_iis_apppools(load("appcmd-list-apppool", "msdocs-iis7-2007-mgdmode-isapi.txt"))
    assert pools(res)[1] == ("Classic .NET AppPool", "Started", "v2.0", "ISAPI", None, [], [])
    res = parse_iis_apppools(load("appcmd-list-wp", "msdocs-iis7-2007-apppool-key.txt"))
    assert pools(res) == [("DefaultAppPool", None, None, None, None, [], [3577])]
    res = parse_iis_apppools('WP "5300" (applicationPool:DefaultAppPool)\n')
    assert res.pools[0].worker_pids == [5300]


@pytest.mark.parametrize("damage", ["trailing_spaces", "crlf", "bom"])
@pytest.mark.parametrize("kind,name", [(k, n) for k in ("get-iisapppool", "get-webapppool", "appcmd-list-apppool",
                                                         "appcmd-list-wp") for n in samples(k)])
def test_pools_damaged_copies(kind, name, damage):
    assert pools(parse_iis_apppools(DAMAGES[damage](load(kind, name)))) == pools(parse_iis_apppools(load(kind, name)))


def test_nettcpconnection_rows_are_listeners():
    res = parse_nettcpconnection(load("netstat", "htb-overwatch-oxdf-get-nettcpconnection.txt"))
    assert [(s.local_address, s.local_port, s.pid, s.listening, s.line) for s in res.sockets] == [
        ("::", 8000, 4, True, 4), ("0.0.0.0", 8000, 4, True, 5)]
    r = parse_nettcpconnection("Get-NetTCPConnection : No MSFT_NetTCPConnection objects found with property 'State' "
                               "equal to 'Listen'.  Verify the value of the property and retry.\n")
    assert r.sockets == [] and "No MSFT_NetTCPConnection" in r.error


def test_servicestate_url_group_log_directory_gives_the_site_id():
    from remote.parsers import parse_iplisten, parse_servicestate

    res = parse_servicestate(load("servicestate", "htb-flight-iis-winrm.txt"))
    assert [(g.queue_name, g.log_dir) for g in res.url_groups] == [
        (None, None), ("DefaultAppPool", r"C:\inetpub\logs\LogFiles\W3SVC1")]
    ip = parse_iplisten(load("iplisten", "cn-iis-clone-before.txt"))
    assert list(zip(ip.addresses, ip.lines)) == [("192.168.33.1", 5), ("127.0.0.0", 6), ("127.0.0.1", 7)]
