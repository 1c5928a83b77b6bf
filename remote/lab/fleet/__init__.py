"""The lab's demo fleet: evidence bundles of emulated Windows hosts shipped inside the package
(``remote/lab/fleet/profiles/<host>/``; see ``remote/lab/fleet/profiles/README.md``)."""

from __future__ import annotations

import json
from pathlib import Path

_FLEET = Path(__file__).resolve().parent / "profiles"


def demo_fleet_dir() -> Path:
    """The folder holding one bundle folder per demo host (and EXPECTED.json)."""
    return _FLEET


def demo_hosts() -> list[Path]:
    """The demo bundle folders, sorted by name."""
    return sorted(p for p in _FLEET.iterdir() if p.is_dir() and (p / "host.json").is_file())


def expected_verdicts() -> list[dict]:
    """EXPECTED.json: per demo host, the verdict for port 80 (holder, product, PIDs, services, fault)."""
    return json.loads((_FLEET / "EXPECTED.json").read_text(encoding="utf-8"))
