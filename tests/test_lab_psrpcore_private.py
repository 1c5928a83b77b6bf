"""The psrpcore behaviour and private API the lab's shell.py relies on (pinned psrpcore==0.3.1).

If a psrpcore upgrade changes any of this, these tests fail loudly: fix remote/lab/engine/shell.py, then the pin.
"""

from __future__ import annotations

import inspect
import uuid
from importlib.metadata import version

import psrpcore
import pytest
from psrpcore import PSRPPayload, StreamType
from psrpcore._payload import PSRPMessage, create_message
from psrpcore.types import PSInvocationState, PSRPMessageType, RunspacePoolState

from remote.lab import api
from remote.lab.engine.shell import error_record, queue_raw_clixml, statements_from_pipeline


def test_pinned_version():
    assert version("psrpcore") == "0.3.1"


def _opened_pair():
    client = psrpcore.ClientRunspacePool()
    server = psrpcore.ServerRunspacePool()
    client.open()
    server.receive_data(client.data_to_send())
    while server.next_event():
        pass
    assert server.state == RunspacePoolState.Opened
    # SessionCapability + ApplicationPrivateData + RunspacePoolState all queued for the pool (one payload)
    payload = server.data_to_send()
    assert payload.pipeline_id is None
    client.receive_data(payload)
    while client.next_event():
        pass
    assert client.state == RunspacePoolState.Opened
    return client, server


def test_private_members_exist():
    sig = inspect.signature(psrpcore.ServerPipeline._change_state)
    assert list(sig.parameters) == ["self", "state", "error", "emit"]
    pool = psrpcore.ServerRunspacePool()
    assert isinstance(pool._send_buffer, list)
    first = pool._fragment_counter
    assert isinstance(first, int) and pool._fragment_counter == first + 1
    assert list(inspect.signature(create_message).parameters) == [
        "client", "message_type", "data", "runspace_pool_id", "pipeline_id"]
    assert list(inspect.signature(PSRPMessage.__init__).parameters) == [
        "self", "message_type", "data", "runspace_pool_id", "pipeline_id", "object_id", "stream_type"]


def test_create_pipeline_needs_server_pipeline_first_and_decodes_commands():
    client, server = _opened_pair()
    ps = psrpcore.ClientPowerShell(client)
    ps.add_command("netstat.exe").add_argument("-ano").add_command("Out-String")
    ps.add_statement()
    ps.add_command("Get-Service").add_parameter("Name", ["a", "b"])
    ps.add_command("Out-String").add_parameter("Stream", None)  # what pypsrp sends for add_parameter("Stream")
    ps.start()
    data = client.data_to_send()
    # without a ServerPipeline registered, psrpcore refuses the CREATE_PIPELINE
    other = psrpcore.ServerRunspacePool()
    other.receive_data(client_open_payload())
    while other.next_event():
        pass
    other.receive_data(data)
    with pytest.raises(psrpcore.PSRPCoreError):
        other.next_event()
    pipe = psrpcore.ServerPipeline(server, ps.pipeline_id)
    server.receive_data(data)
    ev = server.next_event()
    assert isinstance(ev, psrpcore.CreatePipelineEvent)
    assert pipe.metadata is not None and pipe.metadata.no_input is True
    cmds = [(c.command_text, c.is_script, list(c.parameters), c.end_of_statement) for c in pipe.metadata.commands]
    assert cmds == [("netstat.exe", False, [(None, "-ano")], False), ("Out-String", False, [], True),
                    ("Get-Service", False, [("Name", ["a", "b"])], False), ("Out-String", False, [("Stream", None)], True)]
    assert statements_from_pipeline(pipe.metadata) == [
        [api.Command("netstat.exe", False, [(None, "-ano")]), api.Command("Out-String")],
        [api.Command("Get-Service", False, [("Name", ["a", "b"])]), api.Command("Out-String", False, [("Stream", True)])],
    ]


def client_open_payload():
    c = psrpcore.ClientRunspacePool()
    c.open()
    return c.data_to_send()


def test_start_without_running_message_then_failed_with_error_record():
    client, server = _opened_pair()
    ps = psrpcore.ClientPowerShell(client)
    ps.add_command("Get-Nothing")
    ps.start()
    pipe = psrpcore.ServerPipeline(server, ps.pipeline_id)
    server.receive_data(client.data_to_send())
    server.next_event()
    pipe._change_state(PSInvocationState.Running, emit=False)
    assert pipe.state == PSInvocationState.Running
    assert server.data_to_send() is None  # no PipelineState Running went out
    pipe.write_output("partial")
    spec = api.ErrorSpec(message="nope", fully_qualified_error_id="CommandNotFoundException", category=13,
                         target="Get-Nothing", exception_type="System.Management.Automation.CommandNotFoundException")
    pipe._change_state(PSInvocationState.Failed, error_record(spec))
    assert pipe.state == PSInvocationState.Failed
    payload = server.data_to_send()
    assert payload.pipeline_id == ps.pipeline_id
    client.receive_data(payload)
    events = []
    while True:
        ev = client.next_event()
        if ev is None:
            break
        events.append(ev)
    assert [type(e).__name__ for e in events] == ["PipelineOutputEvent", "PipelineStateEvent"]
    assert events[1].state == PSInvocationState.Failed
    assert str(events[1].reason) == "nope"


def test_stop_requires_running_state():
    """shell.py checks the state before stop()/write_*: psrpcore raises otherwise."""
    client, server = _opened_pair()
    pipe = psrpcore.ServerPipeline(server, uuid.uuid4())
    with pytest.raises(psrpcore.InvalidPipelineState):
        pipe.write_output("x")
    with pytest.raises(psrpcore.InvalidPipelineState):
        pipe.stop()


def test_data_to_send_batches_one_target_only_and_respects_amount():
    client, server = _opened_pair()
    p1, p2 = uuid.uuid4(), uuid.uuid4()
    a, b = psrpcore.ServerPipeline(server, p1), psrpcore.ServerPipeline(server, p2)
    for p in (a, b):
        p._change_state(PSInvocationState.Running, emit=False)
    a.write_output("a1")
    b.write_output("b1")
    a.write_output("a2" * 40000)
    first = server.data_to_send(32768)
    assert first.pipeline_id == p1  # stops at the first message of another target
    second = server.data_to_send(32768)
    assert second.pipeline_id == p2
    rest = []
    while (payload := server.data_to_send(32768)) is not None:
        assert payload.pipeline_id == p1 and len(payload.data) <= 32768
        rest.append(payload)
    assert len(rest) >= 3


def test_raw_clixml_passthrough_keeps_type_names():
    client, server = _opened_pair()
    ps = psrpcore.ClientPowerShell(client)
    ps.add_command("Get-Service")
    ps.start()
    pipe = psrpcore.ServerPipeline(server, ps.pipeline_id)
    server.receive_data(client.data_to_send())
    server.next_event()
    pipe._change_state(PSInvocationState.Running, emit=False)
    xml = ('<Obj RefId="0"><TN RefId="0"><T>System.ServiceProcess.ServiceController</T>'
           '<T>System.ComponentModel.Component</T><T>System.Object</T></TN><ToString>System.ServiceProcess.'
           'ServiceController</ToString><Props><S N="Name">W3SVC</S><S N="Status">Running</S></Props></Obj>')
    queue_raw_clixml(server, pipe.pipeline_id, xml)
    pipe.complete()
    client.receive_data(server.data_to_send())
    out = client.next_event()
    assert isinstance(out, psrpcore.PipelineOutputEvent)
    # psrpcore's own deserializer marks unknown types Deserialized.*, but the bytes on the wire are the real ones
    assert out.data.PSObject.type_names[0].endswith("System.ServiceProcess.ServiceController")
    assert out.data.Name == "W3SVC"
    assert isinstance(client.next_event(), psrpcore.PipelineStateEvent)


def test_payload_type():
    p = PSRPPayload(b"x", StreamType.default, None)
    assert (p.data, p.stream_type, p.pipeline_id) == (b"x", StreamType.default, None)
    assert PSRPMessageType.PipelineOutput.value == 0x00041004
