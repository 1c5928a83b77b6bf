"""parse_services_json / parse_processes_json / parse_services_table: corpus tables, JSON shapes
(no JSON capture exists in the corpus: the JSON below follows Windows PowerShell 5.1's ConvertTo-Json
layout), damaged copies and properties."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote.parsers.services import parse_processes_json, parse_services_json, parse_services_table
from remote.parsers.records import ProcessesResult, Service, ServicesResult

try:
    from test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples
except ImportError:  # pragma: no cover - tests/ as a package
    from tests.test_parsers_common import DAMAGES, SETTINGS, line_prefixes, load, mutated, samples

K = "services"


def table(name: str, damage=lambda t: t) -> ServicesResult:
    return parse_services_table(damage(load(K, name)))


def facts(res: ServicesResult):
    return [(s.name, s.state, s.start_mode, s.pid) for s in res.services]


def no_internal_error(res):
    return not any(w.startswith("internal parser error") for w in res.warnings)


# --- text tables (corpus) -------------------------------------------------------------------------


def test_wmic_service_list_brief():
    res = table("ine-ec2-ws2012r2-wmic-service-list-brief.txt")
    assert len(res.services) == 75 and not res.warnings and res.error is None
    d = {s.name: s for s in res.services}
    assert facts(res)[0] == ("AeLookupSvc", "Running", "Manual", 720)
    assert (d["MSDTC"].pid, d["MSDTC"].state, d["MSDTC"].start_mode) == (2336, "Running", "Auto")
    assert (d["Browser"].pid, d["Browser"].state, d["Browser"].start_mode) == (0, "Stopped", "Disabled")
    assert res.services[-1].name == "RemoteAccess"


def test_cim_default_table():
    assert facts(table("gcim-win32service-vmwarehostd.txt")) == [("VMwareHostd", "Running", "Auto", 6624)]


def test_cim_table_with_pscomputername():
    assert facts(table("ilcs-cim-query-multihost-pscomputername.txt")) == [("RemoteRegistry", "Stopped", "Auto", 0)] * 3


def test_cim_table_trailing_spaces():
    assert facts(table("underthewire-century10-cim-wuauserv-trailing-spaces.txt")) == [
        ("wuauserv", "Stopped", "Manual", 0)]


def test_format_list_star():
    res = table("crithos-cim-win32service-bits-format-list-star.txt")
    assert facts(res) == [("BITS", "Running", "Auto", 3640)]
    assert res.services[0].display_name == "Background Intelligent Transfer Service" and not res.warnings


@pytest.mark.parametrize("name", ["msdocs-ps51-get-service-win-ascii-ellipsis.txt",
                                  "ps76-win11-get-service-unicode-ellipsis-excerpt.txt"])
def test_get_service_table_is_skipped_with_a_warning(name):
    res = table(name)
    assert res.services == [] and res.error is None
    assert len(res.warnings) == 1 and "Get-Service" in res.warnings[0]


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("name", samples(K))
def test_damaged_tables(name, damage):
    assert facts(table(name, DAMAGES[damage])) == facts(table(name))


def test_collapsed_spacing_multi_word_values_and_names_with_spaces():
    text = ("ProcessId Name StartMode State Status ExitCode\n--------- ---- --------- ----- ------ --------\n"
            "0 FileZilla Server Auto Start Pending OK 0\n1234 W3SVC Auto Running OK 0\n")
    assert facts(parse_services_table(text)) == [("FileZilla Server", "Start Pending", "Auto", 0),
                                                 ("W3SVC", "Running", "Auto", 1234)]


def test_truncated_wmic_gives_a_prefix():
    full = facts(table("ine-ec2-ws2012r2-wmic-service-list-brief.txt"))
    for _, text in line_prefixes(load(K, "ine-ec2-ws2012r2-wmic-service-list-brief.txt")):
        got = facts(parse_services_table(text))
        assert got == full[: len(got)]


# --- JSON -----------------------------------------------------------------------------------------

PS51_ARRAY = """\ufeff[
    {
        "Name":  "W3SVC",
        "DisplayName":  "World Wide Web Publishing Service",
        "State":  "Running",
        "StartMode":  "Auto",
        "ProcessId":  2112
    },
    {
        "Name":  "PeerDistSvc",
        "DisplayName":  "BranchCache",
        "State":  "Stopped",
        "StartMode":  "Manual",
        "ProcessId":  null
    }
]
"""

PS51_SINGLE = """{
    "Name":  "WinRM",
    "DisplayName":  "Windows Remote Management (WS-Management)",
    "State":  "Running",
    "StartMode":  "Auto",
    "ProcessId":  1156
}"""


def test_json_array_with_bom_and_null_pid():
    res = parse_services_json(PS51_ARRAY)
    assert [(s.name, s.display_name, s.state, s.start_mode, s.pid) for s in res.services] == [
        ("W3SVC", "World Wide Web Publishing Service", "Running", "Auto", 2112),
        ("PeerDistSvc", "BranchCache", "Stopped", "Manual", None),
    ]
    assert res.error is None and not res.warnings


def test_json_single_object_and_crlf():
    res = parse_services_json(PS51_SINGLE.replace("\n", "\r\n"))
    assert res.services == [Service("WinRM", "Windows Remote Management (WS-Management)", "Running", "Auto", 1156)]


def test_json_get_service_enums_and_key_case():
    doc = [{"name": "W3SVC", "DISPLAYNAME": "World Wide Web Publishing Service", "Status": 4, "StartType": 2},
           {"Name": "Spooler", "Status": 1, "StartType": 3},
           {"Name": "RemoteRegistry", "Status": "Stopped", "StartType": "Disabled"},
           {"Name": "Wuauserv", "Status": 7, "StartType": 4},
           {"Name": "BITS", "Status": "OK", "State": "Running", "StartMode": "Automatic"}]
    res = parse_services_json(json.dumps(doc, indent=4))
    assert facts(res) == [("W3SVC", "Running", "Auto", None), ("Spooler", "Stopped", "Manual", None),
                          ("RemoteRegistry", "Stopped", "Disabled", None), ("Wuauserv", "Paused", "Disabled", None),
                          ("BITS", "Running", "Auto", None)]


def test_json_ps51_value_count_wrapper_and_bad_items():
    doc = {"value": [{"Name": "A", "State": "Running", "ProcessId": 5}, 3, {"DisplayName": "no name"}], "Count": 3}
    res = parse_services_json(json.dumps(doc))
    assert facts(res) == [("A", "Running", None, 5)] and len(res.warnings) == 2


def test_json_falls_back_to_tables_and_errors():
    res = parse_services_json(load(K, "gcim-win32service-vmwarehostd.txt"))
    assert facts(res) == [("VMwareHostd", "Running", "Auto", 6624)] and "text table" in res.warnings[0]
    err = parse_services_json("Get-CimInstance : Access is denied. \nAt line:1 char:1\n")
    assert err.services == [] and "Access is denied" in err.error
    assert parse_services_json("[]").services == [] and parse_services_json("").error is None


def test_json_after_junk_lines_and_cut_off_array():
    res = parse_services_json("WARNING: column truncated\r\n" + PS51_ARRAY + "\nPS C:\\> ")
    assert [s.name for s in res.services] == ["W3SVC", "PeerDistSvc"] and res.warnings
    cut = parse_services_json(PS51_ARRAY[: PS51_ARRAY.index('"PeerDistSvc"') + 5])
    assert facts(cut) == [("W3SVC", "Running", "Auto", 2112)] and "cut off" in cut.warnings[0]
    for i in range(len(PS51_ARRAY)):
        got = facts(parse_services_json(PS51_ARRAY[:i]))
        assert got == facts(parse_services_json(PS51_ARRAY))[: len(got)]
    assert parse_services_json("[" * 100000).services == []


def test_processes_json():
    text = ("\ufeff[\n    {\n        \"Id\":  4,\n        \"ProcessName\":  \"System\",\n        \"Path\":  null\n    },\n"
            "    {\n        \"Id\":  2668,\n        \"ProcessName\":  \"svchost\",\n"
            "        \"Path\":  \"C:\\\\WINDOWS\\\\system32\\\\svchost.exe\"\n    }\n]")
    res = parse_processes_json(text)
    assert [(p.pid, p.name, p.path) for p in res.processes] == [
        (4, "System", None), (2668, "svchost", "C:\\WINDOWS\\system32\\svchost.exe")]
    single = parse_processes_json('{"id": 5, "processname": "x"}')
    assert [(p.pid, p.name) for p in single.processes] == [(5, "x")]
    assert parse_processes_json("[{\"ProcessName\": \"nopid\"}]").warnings
    assert parse_processes_json("The handle is invalid.").error == "The handle is invalid."
    assert parse_processes_json("{not json").warnings


# --- properties -----------------------------------------------------------------------------------


@SETTINGS
@given(st.text())
def test_never_raises_on_any_text(text):
    for fn, typ in ((parse_services_json, ServicesResult), (parse_services_table, ServicesResult),
                    (parse_processes_json, ProcessesResult)):
        res = fn(text)
        assert isinstance(res, typ) and no_internal_error(res)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(
        st.sampled_from(["Name", "name", "State", "Status", "StartType", "StartMode", "ProcessId", "Id",
                         "ProcessName", "Path", "DisplayName", "value", "Count"]) | st.text(max_size=5), c, max_size=5),
    max_leaves=20)


@SETTINGS
@given(json_values)
def test_never_raises_on_any_json(doc):
    text = json.dumps(doc)
    for fn, typ in ((parse_services_json, ServicesResult), (parse_processes_json, ProcessesResult)):
        res = fn(text)
        assert isinstance(res, typ) and no_internal_error(res)


@SETTINGS
@given(mutated([load(K, n) for n in samples(K)] + [PS51_ARRAY, PS51_SINGLE]))
def test_never_raises_on_mutated_samples(text):
    for fn in (parse_services_json, parse_services_table):
        res = fn(text)
        assert isinstance(res, ServicesResult) and no_internal_error(res)
        assert all(s.name for s in res.services)


def test_lone_surrogates_in_json_are_replaced_and_noted_only_when_present():
    """The surrogate walk runs only when the text can hold one: an escape (upper or lower case) or a
    surrogate character of its own; other ``\\u`` escapes (ConvertTo-Json writes ``\\u0027``) skip it."""
    from remote.evidence.textio import REPLACED_NOTE, json_may_hold_surrogates

    for escape in ("\\ud800", "\\uDBFF", "\\uDc00"):
        res = parse_services_json('[{"Name": "a%sb", "State": "Running"}]' % escape)
        assert res.services[0].name == "a\ufffdb" and any(REPLACED_NOTE in w for w in res.warnings)
    res = parse_services_json('[{"Name": "a\ud800b", "State": "Running"}]')  # the character itself
    assert res.services[0].name == "a\ufffdb" and any(REPLACED_NOTE in w for w in res.warnings)
    res = parse_services_json('[{"Name": "O\\u0027Brien \\u00e9\\ud83d\\ude00", "State": "Running"}]')
    assert res.services[0].name == "O'Brien \u00e9\U0001F600" and not res.warnings  # a valid pair
    assert not json_may_hold_surrogates('{"a": "\\u0027\\u00e9 \u00e9"}')
    assert json_may_hold_surrogates('{"a": "\\uD83D\\uDE00"}')
