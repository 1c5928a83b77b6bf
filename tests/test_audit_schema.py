"""The report schema: a valid JSON Schema; every JSON format of the renderer validates against it;
the CSV columns are the documented ones, in the documented order (docs/report-schema.md)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import jsonschema

from remote.analysis.verdicts import HostReport, Listener, PortVerdict, Registration, failed_host
from remote.report.render import CSV_COLUMNS, render
from remote.report.schema import SCHEMA_VERSION, schema
from remote.runner.failures import CLASSES

DOC = Path(__file__).resolve().parent.parent / "docs" / "report-schema.md"


def reports() -> list[HostReport]:
    held = HostReport(host="web01", groups=["web", "dmz"], ports=[PortVerdict(
        port=80, holder="http.sys+process", holders=["http.sys", "process"],
        listeners=[Listener("0.0.0.0", 80, 4, "System", evidence="netstat.txt:5"),
                   Listener("10.0.0.2", 80, 77, "httpd.exe", evidence="netstat.txt:6")],
        registrations=[Registration(url="HTTP://+:80/X/", queue="q", pids=[12], services=["W3SVC"],
                                    product="IIS (W3SVC/WAS)", product_key="iis", evidence="servicestate.txt:9")])])
    return [held, failed_host("db01", "local", "port80 could not store it", [80, 443])]


def validator(part: str = ""):
    s = schema()
    return jsonschema.Draft202012Validator({"$defs": s["$defs"], "$ref": f"#/$defs/{part}"} if part else s)


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["schema_version"] == {"const": SCHEMA_VERSION}
    assert schema()["$defs"]["status"]["enum"] == list(CLASSES)  # the one failure-class list


def test_json_and_jsonl_validate():
    doc = json.loads(render(reports(), "json", [80, 443]))
    assert doc["schema_version"] == SCHEMA_VERSION
    validator().validate(doc)
    for line in render(reports(), "jsonl").splitlines():
        validator("host_line").validate(json.loads(line))


def test_the_schema_can_fail():
    doc = json.loads(render(reports(), "json"))
    doc["hosts"][0]["ports"][0]["holder"] = "somebody"
    assert list(validator().iter_errors(doc))
    del doc["schema_version"]
    assert list(validator().iter_errors(doc))


def test_csv_columns_are_the_documented_ones_in_order():
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## CSV"):]
    documented = re.findall(r"^\| \d+ \| `([a-z_]+)` \|", section, flags=re.M)
    assert documented == CSV_COLUMNS
    header = next(csv.reader(io.StringIO(render(reports(), "csv"))))
    assert header == CSV_COLUMNS
    row = next(csv.DictReader(io.StringIO(render(reports(), "csv"))))
    assert row["groups"] == "web; dmz"
