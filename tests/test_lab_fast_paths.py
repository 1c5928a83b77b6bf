"""The lab's CPU shortcuts (remote/lab/engine/shell.py, remote/lab/engine/host.py) change nothing on the wire:
the fast CLIXML string escaping equals psrpcore's serializer byte for byte, the decoded-message memo
gives the same pipeline as psrpcore's own decoding, and the shared run results are only used for
read-only pipelines on an unchanged machine."""

from __future__ import annotations

import uuid
from xml.etree import ElementTree

import psrpcore
from hypothesis import given, settings
from hypothesis import strategies as st
from psrpcore.types import serialize

from remote.lab import api
from remote.lab.engine import host as lab_host
from remote.lab.engine.host import LabHost
from remote.lab.engine.shell import LabRunspacePool, clixml_string


def _psrpcore_bytes(value: str) -> bytes:
    """psrpcore's serialization, except the empty string: the lab writes <S></S> as PowerShell's
    serializer does (psrpcore/ElementTree writes <S />; tests/test_lab_fidelity.py)."""
    pool = psrpcore.ServerRunspacePool()
    xml = ElementTree.tostring(serialize(value, pool._cipher), encoding="utf-8", method="xml")
    return b"<S></S>" if xml == b"<S />" else xml


SAMPLES = [
    "", "plain", "a\r\nb\r\n", "lone\rcr", "lone\nlf", "tab\there", "_x000D_ literal", "_X41_ upper", "__x__",
    "<xml>&amp;</xml>", "a > b & c < d", "caf\u00e9 \u00e0 la cr\u00e8me", "\u65e5\u672c\u8a9e\r\n",
    "emoji \U0001F600", "nul\x00char", "c1\x85control", "del\x7f", "  leading and trailing  ",
    "Proto  Local Address          Foreign Address        State           PID\r\n  TCP    0.0.0.0:80",
]


def test_clixml_string_matches_psrpcore_on_samples():
    for value in SAMPLES:
        fast = clixml_string(value)
        if fast is None:  # left to psrpcore (controls other than CR/LF, non-BMP)
            assert any(ord(c) < 32 and c not in "\r\n" or 0x7F <= ord(c) <= 0x9F or ord(c) > 0xFFFF for c in value)
            continue
        assert fast.encode("utf-8") == _psrpcore_bytes(value), value


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab_xX\r\n\t &<>\"'\u00e9\u65e5") + ["\U0001F600", "\x85"]), max_size=60))
def test_clixml_string_matches_psrpcore_property(value):
    fast = clixml_string(value)
    if fast is not None:
        assert fast.encode("utf-8") == _psrpcore_bytes(value)


def test_fast_path_is_taken_for_ordinary_command_output():
    assert clixml_string("line one\r\nline two\r\n") == "<S>line one_x000D__x000A_line two_x000D__x000A_</S>"


# ---------------------------------------------------------------------------------- shared run results

from remote.lab.fleet import demo_fleet_dir  # noqa: E402

C = api.Command
NETSTAT = [[C("netstat.exe", parameters=[(None, "-ano")]), C("Out-String")]]
SERVICESTATE = [[C("netsh.exe", parameters=[(None, "http"), (None, "show"), (None, "servicestate"),
                                            (None, "view=requestq")]), C("Out-String")]]
STOP_SSRS = [[C("Stop-Service", parameters=[("Name", "SQLServerReportingServices")])]]


def _host(bundle: str, name: str) -> LabHost:
    return LabHost.from_bundle(demo_fleet_dir() / bundle, name)


def test_hosts_from_one_bundle_share_read_only_results_and_a_state_change_opts_out():
    lab_host._RUN_MEMO.clear()
    a, b = _host("ssrs", "ssrs-001"), _host("ssrs", "ssrs-002")
    first = a.run(SERVICESTATE)
    assert "REPORTSERVER" in first.output[0]
    assert b.run(SERVICESTATE) is first  # same bundle, same pipeline: computed once
    assert len(a.command_log) == len(b.command_log) == 1  # every host still logs what it ran

    stop = a.run(STOP_SSRS)
    assert stop.changed_state and not any(ex is stop for ex in lab_host._RUN_MEMO.values())
    after = a.run(SERVICESTATE)
    assert after is not first and "REPORTSERVER" not in after.output[0]  # a's own state, not the memo
    assert b.run(SERVICESTATE).output == first.output  # b is untouched


def test_results_are_not_shared_across_different_bundles_or_elevation():
    lab_host._RUN_MEMO.clear()
    ssrs, free = _host("ssrs", "x"), _host("free", "y")
    assert ssrs.run(NETSTAT).output != free.run(NETSTAT).output
    check = [[C("([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent())"
                ".IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)", is_script=True)]]
    assert _host("not-elevated", "n").run(check).output != _host("free", "f").run(check).output


def test_memo_equals_a_fresh_run():
    lab_host._RUN_MEMO.clear()
    cached = [_host("iis-worker", f"w{i}").run(NETSTAT + SERVICESTATE) for i in range(2)]
    lab_host._RUN_MEMO.clear()
    fresh = _host("iis-worker", "w9").run(NETSTAT + SERVICESTATE)
    assert cached[0] is cached[1] and cached[0].output == fresh.output and cached[0].errors == fresh.errors


# ---------------------------------------------------------------------------------- pool open, byte for byte


def _open_reply(pool) -> bytes:
    client = psrpcore.ClientRunspacePool()
    client.open()
    payload = client.data_to_send()
    pool.receive_data(psrpcore.PSRPPayload(payload.data, payload.stream_type, None))
    while pool.next_event() is not None:
        pass
    out = b""
    while True:
        p = pool.data_to_send()
        if p is None:
            return out
        out += p.data


def _same_client_ids(monkeypatch):
    # two client pools with the same RunspacePool id, so both servers answer the same ids
    fixed = uuid.UUID("11111111-2222-3333-4444-555555555555")
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)


def test_pool_open_answer_is_byte_identical_with_the_shared_app_data(monkeypatch):
    from remote.lab.engine.shell import _cached_psversion_table

    _same_client_ids(monkeypatch)
    table = _cached_psversion_table({"PSVersion": "5.1.17763.1"})
    stock = psrpcore.ServerRunspacePool(application_private_data={"PSVersionTable": dict(table)})
    fast = LabRunspacePool(application_private_data={"PSVersionTable": dict(table)})
    fast.app_data_key = id(table)
    expected = _open_reply(stock)
    assert b"PSVersionTable" in expected
    assert _open_reply(fast) == expected
    again = LabRunspacePool(application_private_data={"PSVersionTable": dict(table)})
    again.app_data_key = id(table)
    assert _open_reply(again) == expected  # from the shared CLIXML this time


def test_boolean_and_shared_string_outputs_match_psrpcore():
    from remote.lab.engine.shell import _clixml_of

    pool = psrpcore.ServerRunspacePool()
    for value in (True, False, "shared\r\noutput", ""):
        ref = ElementTree.tostring(serialize(value, pool._cipher), encoding="utf-8", method="xml")
        ref = b"<S></S>" if ref == b"<S />" else ref  # PowerShell's form of the empty string
        assert _clixml_of(value) == ref
        assert _clixml_of(value) is _clixml_of(value) or isinstance(value, bool)
    assert _clixml_of(5) is None and _clixml_of("\x01") is None


# ---------------------------------------------------------------------------------- CREATE_PIPELINE memo


def _pipeline_statements(server_cls, monkeypatch, script_commands):
    from remote.lab.engine.shell import statements_from_pipeline

    _same_client_ids(monkeypatch)
    client = psrpcore.ClientRunspacePool()
    server = server_cls()
    client.open()
    server.receive_data(client.data_to_send())
    while server.next_event() is not None:
        pass
    client.receive_data(server.data_to_send())
    while client.next_event() is not None:
        pass
    ps = psrpcore.ClientPowerShell(client)
    for name, params in script_commands:
        ps.add_command(psrpcore.Command(name))
        for k, v in params:
            ps.add_parameter(k, v)
        ps.add_statement()
    ps.start()
    spipe = psrpcore.ServerPipeline(server, ps.pipeline_id)
    server.receive_data(client.data_to_send())
    while server.next_event() is not None:
        pass
    return statements_from_pipeline(spipe.metadata), spipe.metadata


def test_decoded_pipeline_equals_psrpcores_and_is_shared(monkeypatch):
    cmds = [("Write-Output", [("InputObject", "port80:evidence:netstat")]), ("netstat.exe", [(None, "-ano")]),
            ("Get-CimInstance", [("ClassName", "Win32_Service")])]
    ref, _ = _pipeline_statements(psrpcore.ServerRunspacePool, monkeypatch, cmds)
    a, meta_a = _pipeline_statements(LabRunspacePool, monkeypatch, cmds)
    b, meta_b = _pipeline_statements(LabRunspacePool, monkeypatch, cmds)
    assert a == ref == b and len(ref) == 3
    assert meta_a is meta_b  # the same bytes: decoded once
    other, _ = _pipeline_statements(LabRunspacePool, monkeypatch, cmds[:1])
    assert other != ref  # other bytes: decoded on their own


def test_pool_open_fields_and_state_messages_equal_psrpcores(monkeypatch):
    """The pool-open messages are decoded once per lab process and our SessionCapability and the error-free
    pool/pipeline states serialized once: each pool ends up with psrpcore's values and sends its bytes (a
    state with an error record still takes psrpcore's own path)."""
    from psrpcore.types import PipelineState

    from remote.lab.engine.psrp import _constant_xml, _pool_memo, error_record

    _same_client_ids(monkeypatch)
    _pool_memo.clear()
    _constant_xml.clear()
    stock, fast, again = psrpcore.ServerRunspacePool(), LabRunspacePool(), LabRunspacePool()
    opened = [_open_reply(p) for p in (stock, fast, again)]
    assert opened[0] == opened[1] == opened[2] and len(_pool_memo) == 2
    for attr in ("apartment_state", "thread_options", "_max_runspaces", "_min_runspaces", "application_arguments",
                 "runspace_pool_id", "state"):
        assert getattr(fast, attr) == getattr(stock, attr) == getattr(again, attr), attr
    assert type(fast.host) is type(stock.host) and repr(fast.host) == repr(stock.host) == repr(again.host)
    assert [str(p.their_capability.protocolversion) for p in (stock, fast)] == ["2.3", "2.3"]
    pid = uuid.UUID("66666666-2222-3333-4444-555555555555")
    err = error_record(api.ErrorSpec(message="boom", fully_qualified_error_id="Boom"))
    sent = []
    for pool in (stock, fast, again):
        pool.prepare_message(PipelineState(PipelineState=4), pipeline_id=pid)
        pool.prepare_message(PipelineState(PipelineState=3, ExceptionAsErrorRecord=err), pipeline_id=pid)
        out = b""
        while (p := pool.data_to_send()) is not None:
            out += p.data
        sent.append(out)
    assert b"boom" in sent[0] and sent[0] == sent[1] == sent[2]
    assert sorted(k[0][0] for k in _constant_xml._data) == ["PipelineState", "RunspacePoolState", "SessionCapability"]
