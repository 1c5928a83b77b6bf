"""The report schema's version and the JSON Schema file (remote/report/schema.json, described in
docs/report-schema.md). Every JSON document port80 writes carries ``schema_version``; bump it when a
field changes meaning or goes away (adding a field is compatible: the schema allows extra keys)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("schema.json")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return doc
