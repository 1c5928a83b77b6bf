"""Shared pytest fixtures."""

from contextlib import contextmanager

import pytest


@contextmanager
def krb5_config(path):
    """KRB5_CONFIG set to the lab KDC's ``path`` and port80's remembered Kerberos credentials forgotten,
    both put back on exit (the Kerberos tests share one process)."""
    import os

    from remote.remoting import kerberos

    saved = os.environ.get("KRB5_CONFIG")
    os.environ["KRB5_CONFIG"] = str(path)
    kerberos.forget()
    try:
        yield
    finally:
        kerberos.forget()
        os.environ["KRB5_CONFIG"] = saved or ""


# ---- lab (remote/lab): emulated Windows hosts on loopback ------------------------------------------

def pytest_configure(config):  # one per conftest: add other registrations here rather than a second one
    config.addinivalue_line(
        "markers",
        "lab(**kwargs): options for the `lab` fixture, passed to remote.lab.fixture.lab_fleet "
        "(hosts=, auth=, tls=, faults=, profiles=, latency_ms=, ...)",
    )


@pytest.fixture
def lab(request, tmp_path):
    """A running lab fleet (default: the shipped demo fleet, Basic over HTTPS, 127.0.0.1 ephemeral ports)
    with its inventory written to ``lab.inventory_path``. Options: ``@pytest.mark.lab(hosts=3, auth="ntlm")``."""
    from remote.lab.fixture import lab_fleet

    marker = request.node.get_closest_marker("lab")
    kwargs = dict(marker.kwargs) if marker else {}
    inventory = tmp_path / "lab-inventory.ini"
    with lab_fleet(inventory=inventory, workdir=tmp_path / "lab", **kwargs) as fleet:
        yield fleet


@pytest.fixture
def profiles(tmp_path):
    """Two lab hosts, seed-a and seed-b, made from examples/seed-branchcache (the CLI fleet tests' lab)."""
    import json
    import shutil
    from pathlib import Path

    d = tmp_path / "profiles"
    for name in ("seed-a", "seed-b"):
        shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "seed-branchcache", d / name)
        meta = json.loads((d / name / "host.json").read_text())
        meta["host"] = name
        (d / name / "host.json").write_text(json.dumps(meta))
    return d


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """A copy of the demo fleet without its faulty/slow hosts (the JEA and Kerberos tests scan it)."""
    import shutil

    from remote.lab.fleet import demo_fleet_dir

    d = tmp_path_factory.mktemp("healthy")
    for name in ("branchcache", "free", "iis-idle", "iis-worker", "iplisten-split", "nginx", "not-elevated",
                 "server2022-processes", "ssrs", "winrm-compat"):
        shutil.copytree(demo_fleet_dir() / name, d / name)
    return d


@pytest.fixture(autouse=True)
def _history_in_tmp(tmp_path_factory, monkeypatch):
    """`scan` and `analyze` record runs in the history database: never the real one in the user's home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))

# ---- Kerberos: no test reads the machine's krb5.conf or the user's ticket cache ----------------------

@pytest.fixture(autouse=True, scope="session")
def _kerberos_isolation(tmp_path_factory):
    """With gssapi installed, a Negotiate context may look for a KDC: point Kerberos at an empty
    realm-less krb5.conf (no DNS lookups, so never off the machine) and at a ticket cache of the
    test session's own. Kerberos tests set KRB5_CONFIG to their lab's file (monkeypatch)."""
    import os

    d = tmp_path_factory.mktemp("krb5")
    conf = d / "krb5.conf"
    conf.write_text("[libdefaults]\n dns_lookup_kdc = false\n dns_lookup_realm = false\n rdns = false\n"
                    " dns_canonicalize_hostname = false\n", encoding="utf-8")
    saved = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5CCNAME", "KRB5_KTNAME")}
    os.environ["KRB5_CONFIG"] = str(conf)
    os.environ["KRB5CCNAME"] = f"FILE:{d / 'ccache'}"
    os.environ["KRB5_KTNAME"] = f"FILE:{d / 'keytab'}"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
