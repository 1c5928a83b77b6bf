"""The house's types: one failure-class table (README, exit codes), str-valued enums (JSON unchanged),
one exception root, and a fix verification decided where it is made (never read from its words)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from remote.analysis.verdicts import Holder, HostReport, PortVerdict, failed_host
from remote.cli.app import EXIT_FAILED_HOSTS, EXIT_OK, fleet_exit_code
from remote.errors import Port80Error
from remote.report.render import host_from_dict, host_to_dict
from remote.runner import failures

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_failure_table_is_the_tables():
    text = README.read_text(encoding="utf-8")
    block = text.split(failures.README_BEGIN, 1)[1].split(failures.README_END, 1)[0]
    assert block.strip() == failures.readme_table().strip()
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert re.findall(r"`(\w+)`", row) == list(failures.FAILED)  # the exit-code table names the same classes


def test_exit_code_follows_the_table():
    for c in failures.TABLE:
        r = failed_host("h", c.status, "x", [80]) if not c.scanned else HostReport(host="h", status=c.status)
        assert fleet_exit_code([r], False) == (EXIT_OK if c.scanned else EXIT_FAILED_HOSTS), c.status


def test_enums_are_their_values_in_json_and_comparisons():
    r = HostReport(host="h", status=failures.HostStatus.PARTIAL, ports=[PortVerdict(port=80, holder=Holder.BOTH,
                                                                                     holders=[Holder.HTTP_SYS])])
    d = host_to_dict(r)
    assert json.dumps(d["status"]) == '"partial"' and d["ports"][0]["holder"] == "http.sys+process"
    assert type(d["status"]) is str and type(d["ports"][0]["holder"]) is str
    assert r.status == "partial" and "partial" in {r.status} and f"{r.status}" == "partial" == str(r.status)
    back = host_from_dict(json.loads(json.dumps(d)))
    assert back.status is failures.HostStatus.PARTIAL and back.ports[0].holder is Holder.BOTH


def test_classify_returns_a_status_of_the_table():
    status, _ = failures.classify(ConnectionRefusedError("refused"))
    assert status is failures.HostStatus.UNREACHABLE and status in failures.FAILED


def test_one_exception_root():
    from remote.audit.policy import PolicyError
    from remote.evidence.bundle import BundleError
    from remote.inventory.ansible_ini import InventoryError, ShardError
    from remote.inventory.credentials import CredentialsError
    from remote.inventory.targets import TargetError
    from remote.lab.fleet.server import LabError
    from remote.runner.cluster import ClusterError

    for cls in (InventoryError, ShardError, CredentialsError, TargetError, BundleError, LabError, ClusterError,
                PolicyError, failures.DeadlineExceeded):
        assert issubclass(cls, Port80Error), cls
    assert issubclass(ShardError, ValueError)  # still caught where a ValueError was


def test_verification_is_decided_not_read_from_prose():
    from remote.remediation import plan as rm

    assert rm.Verified("restricted: whatever the words", False).ok is False
    assert rm.Verified("still held by X", True).ok is True
    r = rm.verify(rm.HostPlan(host="h", port=80, strategy="disable-services", status="planned"), None)
    assert r.startswith("unknown") and r.ok is False


def test_one_is_ip_helper():
    from remote.parsers.common import is_ip

    for yes in ("10.0.0.5", "[::1]", "fe80::1%4", " ::", "[fe80::1%eth0]"):
        assert is_ip(yes), yes
    for no in ("+", "*", "host.example.com", "1.2.3", "cafe1", ""):
        assert not is_ip(no), no


def test_one_renderer_per_format():
    from remote.report.formats import FORMATS
    from remote.report.render import RENDERERS

    assert tuple(RENDERERS) == FORMATS
