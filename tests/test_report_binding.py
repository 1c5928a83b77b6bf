"""The issue-13 fields in every format: table (a BINDABLE column, <= 120 columns), CSV, JSON, Markdown."""

from __future__ import annotations

import csv
import io
import json

from remote.analysis.verdicts import analyze_bundle
from remote.evidence.bundle import find_bundles, read_bundle
from remote.lab.fleet import demo_fleet_dir
from remote.report.render import render


def reports(port: int = 80):
    return [analyze_bundle(read_bundle(d), [port]) for d in find_bundles([demo_fleet_dir()])]


def test_table_has_a_bindable_column_and_fits_120_columns():
    text = render(reports(), "table")
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["HOST", "STATUS", "PORT", "HOLDER", "BINDABLE"]
    assert max(len(ln) for ln in lines) <= 120
    row = next(ln for ln in lines if ln.startswith("EDGE-PROXY01"))
    assert row.split()[3:5] == ["process", "no"]
    md = render(reports(), "markdown")
    assert "| BINDABLE" in md.splitlines()[0]


def test_csv_and_json_carry_the_new_fields():
    rows = list(csv.DictReader(io.StringIO(render(reports(), "csv"))))
    for col in ("bindable", "blockers", "excluded_ranges", "tls", "iis_site", "iis_site_id", "app_pool", "shadowed_by"):
        assert col in rows[0]
    nginx = next(r for r in rows if r["host"] == "EDGE-PROXY01")
    assert nginx["bindable"] == "false" and nginx["blockers"].startswith("listener 0.0.0.0 nginx.exe (")
    kiosk = next(r for r in rows if r["host"] == "KIOSK-SRV01" and r["url"] == "HTTP://*:80/")
    assert kiosk["shadowed_by"] == "HTTP://+:80/" and kiosk["app_pool"] == "DefaultAppPool"
    doc = json.loads(render(reports(), "json"))
    port = doc["hosts"][0]["ports"][0]
    for key in ("bindable", "blockers", "excluded_ranges", "tls"):
        assert key in port
    assert {"iis", "shadowed_by"} <= set(port["registrations"][0])
