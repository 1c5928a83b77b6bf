"""Shared pytest fixtures."""

import pytest


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


@pytest.fixture(autouse=True)
def _history_in_tmp(tmp_path_factory, monkeypatch):
    """`scan` and `analyze` record runs in the history database: never the real one in the user's home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
