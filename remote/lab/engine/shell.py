"""WinRS shells and PSRP pipelines of one emulated host, on psrpcore's sans-IO server side.

``HostRuntime.handle(request)`` answers one parsed WS-Management request (Create, Receive, Command,
Send, Signal, Delete, Get) for one emulated host. One ``Shell`` is one RunspacePool
(``psrpcore.ServerRunspacePool``); psrpcore is not thread-safe, so each shell has one
``threading.Condition`` guarding its psrpcore objects and its outgoing queues; the same condition
is what a Receive long-polls on.

Outgoing PSRP data is drained from psrpcore right after every operation into per-target queues
(one for the pool, one per pipeline: ``data_to_send`` only batches messages of one target) as
payloads of at most ``FRAGMENT_SIZE`` bytes; a Receive sends as many of them as fit the client's
MaxEnvelopeSize, so the pool-open Receive and a pipeline Receive with everything ready need ONE
response.

psrpcore 0.3.1 private API used here (pinned; covered by tests/test_lab_psrpcore_private.py):
``ServerPipeline._change_state(state, error, emit=False)`` (a pipeline starts without the Running
state message real servers never send; a failed pipeline ends Failed with its ErrorRecord),
``RunspacePool._send_buffer`` and ``RunspacePool._fragment_counter`` (raw CLIXML passthrough),
``RunspacePool._process_message`` / ``_cipher`` / ``pipeline_table`` (the decoded-message memo below).

Cost: the lab stands in for hundreds of hosts in ONE Python process, so what every host would
compute the same way is computed once (see ``LabRunspacePool`` and ``clixml_string``); the bytes on
the wire are the same as without the shortcuts (tests/test_lab_fast_paths.py).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

import psrpcore
from psrpcore import PSRPPayload, StreamType
from psrpcore.types import HostMethodIdentifier, PSInvocationState, PSRPMessageType, RunspacePoolState

from remote.lab import api
from remote.lab.protocol import wsman
from remote.lab.protocol.faults import Faults
from remote.lab.engine import winrs
from remote.lab.engine.psrp import (  # noqa: F401  (names kept importable from here)
    DEFAULT_PSVERSION, FIRST_USE_PROGRESS, FRAGMENT_SIZE, MIN_RECEIVE_BUDGET, PS_RESOURCE_PREFIX, LabRunspacePool, _cached_psversion_table,
    _clixml_of, _statements_of, clixml_string, error_record, psversion_table, queue_raw_clixml, queue_raw_message,
    statements_from_pipeline,
)

log = logging.getLogger("port80.lab.shell")

# the configurations every Windows PowerShell 5.1 host has registered (lower case); others are JEA endpoints
DEFAULT_CONFIGURATIONS = frozenset({"microsoft.powershell", "microsoft.powershell32", "microsoft.powershell.workflow",
                                    "microsoft.windows.servermanagerworkflows"})
CODE_RESOURCE_NOT_FOUND = 2150858811  # 0x80338000 + 0x3B: ERROR_WSMAN_INVALID_RESOURCE_URI


class LabHostLike(Protocol):
    name: str
    psversion: dict

    def run(self, statements: list[api.Statement]) -> api.Execution: ...


class Hang(Exception):
    """The request must never be answered (the server holds the connection until shutdown)."""


@dataclass
class Reply:
    status: int
    body: bytes


# ---------------------------------------------------------------------------------- state


class Pipe:
    """One pipeline (WSMan command) of a shell."""

    __slots__ = ("pipeline", "command_id", "queue", "started", "executed", "finished", "input_done", "ready_at",
                 "done_sent")

    def __init__(self, pipeline: psrpcore.ServerPipeline, command_id: str) -> None:
        self.pipeline = pipeline
        self.command_id = command_id
        self.queue: deque[bytes] = deque()
        self.started = False
        self.executed = False
        self.finished = False  # the terminal PipelineState is queued
        self.input_done = False
        self.ready_at = 0.0  # monotonic time when a delayed (slow) pipeline runs
        self.done_sent = False


class Shell:
    """One WinRS shell = one PSRP RunspacePool."""

    def __init__(self, shell_id: str, resource_uri: str, owner: str, client_ip: str, app_data: dict) -> None:
        self.id = shell_id
        self.resource_uri = resource_uri
        self.owner = owner
        self.client_ip = client_ip
        self.pool = LabRunspacePool(application_private_data=app_data)
        self.cond = threading.Condition()
        self.pool_queue: deque[bytes] = deque()
        self.pipes: dict[uuid.UUID, Pipe] = {}
        self.closed = False
        self.created = time.monotonic()
        self.last_use = self.created
        self.first_pipeline_done = False  # the first pipeline starts with the "first use" progress record
        self.open_groups: list[int] = []  # fragments per pool-open Receive still to come (2 Receives; 3 on JEA)
        self.state_ready_at = 0.0  # slow_open: when the RUNSPACEPOOL_STATE Opened may be sent

    def feed(self, data: bytes, pipeline_id: Optional[uuid.UUID], stream_type: StreamType) -> list:
        self.pool.receive_data(PSRPPayload(data, stream_type, pipeline_id))
        events = []
        while True:
            ev = self.pool.next_event()
            if ev is None:
                return events
            events.append(ev)

    def drain(self) -> None:
        """Move everything psrpcore has to send into the per-target queues; wake long-polls."""
        while True:
            payload = self.pool.data_to_send(FRAGMENT_SIZE)
            if payload is None:
                break
            # one PSRP fragment per rsp:Stream, as Windows sends them (recordings: real-receive-fragment-sizes.txt)
            if payload.pipeline_id is None:
                self.pool_queue.extend(split_fragments(payload.data))
            else:
                pipe = self.pipes.get(payload.pipeline_id)
                if pipe is not None:
                    pipe.queue.extend(split_fragments(payload.data))
        self.cond.notify_all()


def _iso_duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"P{d}DT{h}H{m}M{s}S"


class WSManFault(Exception):
    def __init__(self, code: int, message: str, subcode: str = "w:InternalError", value: str = "s:Receiver",
                 detail: Optional[str] = None, provider: Optional[tuple[str, str]] = None,
                 reason: Optional[str] = None):
        super().__init__(message)
        self.code, self.message, self.subcode, self.value = code, message, subcode, value
        self.detail, self.provider, self.reason = detail, provider, reason


def unknown_command_fault() -> "WSManFault":
    """A Receive for a CommandId the shell does not have (recorded: real-fault-unknown-commandid-receive.xml)."""
    return WSManFault(wsman.CODE_SHELL_NOT_FOUND,
                      "The Windows Remote Shell received a request to perform an operation on a command identifier "
                      "that does not exist. Either the command has completed execution or the client specified an "
                      "invalid command identifier. ", subcode="w:InvalidSelectors", value="s:Sender",
                      detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
                      reason="The WS-Management service cannot process the request because the request contained "
                             "invalid selectors for the resource. ")


RECEIVE_PSRP_BYTES = 131072  # Windows stops filling a Receive at 128 KiB of PSRP data (real-receive-fragment-sizes.txt)
_RUNSPACEPOOL_STATE = 0x00021005


def split_fragments(data: bytes) -> list[bytes]:
    """PSRP fragments of a payload (MS-PSRP 2.2.4: object id 8, fragment id 8, flags 1, length 4, blob)."""
    out = []
    i, n = 0, len(data)
    while i < n:
        end = i + 21 + int.from_bytes(data[i + 17:i + 21], "big")
        out.append(data[i:end])
        i = end
    return out


def open_groups(fragments: Any, receives: int) -> list[int]:
    """How many of the pool-open fragments each open Receive carries: two Receives (SESSION_CAPABILITY +
    APPLICATION_PRIVATE_DATA, then RUNSPACEPOOL_STATE), three on a JEA endpoint (one message each) —
    recordings real-open-receive1/2.txt, real-jea-open-receive1.txt, real-message-flow-summary.txt."""
    frags = list(fragments)
    state_at = next((k for k, f in enumerate(frags) if f[16] & 0x1 and len(f) >= 29
                     and int.from_bytes(f[25:29], "little") == _RUNSPACEPOOL_STATE), len(frags))
    if receives >= 3 and state_at >= 2:
        return [1, state_at - 1, len(frags) - state_at]
    return [state_at, len(frags) - state_at] if 0 < state_at < len(frags) else [len(frags)]


def _host_of(url: str) -> str:
    m = re.match(r"^\w+://(\[[^\]]+\]|[^:/]+)", url)
    return m.group(1).strip("[]") if m else url


class HostRuntime:
    """The WS-Management service of one emulated host."""

    def __init__(
        self,
        host: LabHostLike,
        faults: Optional[Faults] = None,
        machine: Optional[str] = None,
        stopping: Optional[threading.Event] = None,
        on_pipeline: Optional[Callable[[list[api.Statement], api.Execution], None]] = None,
    ) -> None:
        self.host = host
        self.faults = faults or Faults()
        self.machine = machine or host.name
        self.stopping = stopping or threading.Event()
        self.on_pipeline = on_pipeline
        self._lock = threading.Lock()
        self.shells: dict[str, Shell] = {}
        self._app_data_table: Optional[dict] = None  # built at the first Create (costly: psrpcore objects)
        # JEA session configurations (lower-case name -> remote.lab.engine.jea.JeaGate), besides the default ones
        self.endpoints: dict[str, Any] = {}
        self._address = ""  # the host address clients use (the fault's Machine)

    # ----------------------------------------------------------------------------- dispatch

    def handle(self, req: wsman.Request, client_ip: str = "127.0.0.1", user: str = "auditor",
               address: str = "") -> Reply:
        """Answer one request: a ``Reply`` (200 response or 500 fault); raises ``Hang`` to never answer."""
        if address and not self._address:
            self._address = _host_of(address)
        try:
            injected = self.faults.wsman_fault_for(req.name)
            if injected is not None:
                raise WSManFault(injected[0], injected[1])
            if req.name == "Create" and self.faults.access_denied:
                raise WSManFault(wsman.CODE_ACCESS_DENIED, "Access is denied. ", subcode="w:AccessDenied",
                                 value="s:Sender")
            if req.name == "Create" and self.faults.provider_fault:
                # the recorded shape (real-fault-winrs-file-not-found-providerfault.xml) with an empty Reason
                return Reply(500, wsman.fault(
                    req.message_id, 2152992672, "The WinRM plugin failed to start the PowerShell session: "
                    "the lab's provider_fault. ", self._machine_for(req), provider=(
                        "microsoft.powershell", "C:\\Windows\\system32\\pwrshplugin.dll"), reason=""))
            handler = getattr(self, "_do_" + req.name.lower(), None)
            if handler is None:
                raise WSManFault(wsman.CODE_ACTION_NOT_SUPPORTED,
                                 f"The WS-Management service does not support the specified action {req.action}.",
                                 subcode="a:ActionNotSupported", value="s:Sender")
            return handler(req, client_ip=client_ip, user=user, address=address)
        except WSManFault as f:
            return Reply(500, wsman.fault(req.message_id, f.code, f.message, self._machine_for(req), f.subcode,
                                          f.value, detail=f.detail, provider=f.provider, reason=f.reason))
        except Hang:
            raise
        except Exception as e:  # a PSRP decoding error, a bug: a WSMan fault, as Windows answers garbage input
            log.exception("lab %s: %s failed", self.machine, req.name)
            return Reply(500, wsman.fault(req.message_id, wsman.CODE_INTERNAL,
                                          f"The WS-Management service cannot process the request: "
                                          f"{type(e).__name__}: {e}", self.machine))

    def _shell(self, req: wsman.Request) -> Shell:
        sid = req.shell_id
        with self._lock:
            shell = self.shells.get((sid or "").upper())
        if shell is None or shell.closed:
            raise WSManFault(
                wsman.CODE_SHELL_NOT_FOUND,
                f"The request for the Windows Remote Shell with ShellId {sid or ''} failed because the shell was not "
                "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
                "exists on the server. Provide the correct ShellId or create a new shell and retry the operation. ",
                subcode="w:InvalidSelectors", value="s:Sender")
        shell.last_use = time.monotonic()
        return shell

    # ----------------------------------------------------------------------------- actions

    def configurations(self) -> dict[str, dict]:
        """Session configurations (PSSession endpoints) this host serves, lower-case name -> settings.
        Windows registers Microsoft.PowerShell (and the 32-bit/workflow ones); a host adds its own (a JEA
        endpoint, registered by remote/lab's JEA support) through its ``configurations`` attribute:
        ``{"name": {"open_receives": 3}}``."""
        conf: dict[str, dict] = {name: {} for name in DEFAULT_CONFIGURATIONS}
        for name in self.endpoints:  # JEA endpoints open in three Receives (real-jea-open-receive1.txt)
            conf[name] = {"open_receives": 3}
        extra = getattr(self.host, "configurations", None)
        if isinstance(extra, dict):
            conf.update({str(k).lower(): (v if isinstance(v, dict) else {}) for k, v in extra.items()})
        return conf

    def _configuration(self, req: wsman.Request) -> Optional[dict]:
        name = req.resource_uri[len(PS_RESOURCE_PREFIX):].strip("/").lower()
        return self.configurations().get(name)

    def _open_receives(self, req: wsman.Request) -> int:
        conf = self._configuration(req) or {}
        return int(conf.get("open_receives") or 2)

    def _machine_for(self, req: wsman.Request) -> str:
        """The fault's Machine attribute: the address the client used (recordings: Machine="127.0.0.1")."""
        return self._address or self.machine

    def _do_create(self, req: wsman.Request, client_ip: str, user: str, address: str) -> Reply:
        body = req.body
        if body is None or body.tag != "{%s}Shell" % wsman.NS["rsp"]:
            raise WSManFault(wsman.CODE_INTERNAL, "The WS-Management service cannot process the request: "
                             "the Create body holds no rsp:Shell.")
        if winrs.is_cmd_shell(req.resource_uri):
            return self._create_cmd_shell(req, body, client_ip, user, address)
        if not req.resource_uri.startswith(PS_RESOURCE_PREFIX) or self._configuration(req) is None:
            # MS-WSMV 2.2.4.41 / Windows: a resource URI not in the WinRM plugin catalog (no recording in the
            # corpus; wording from Windows Server's WinRM message table)
            raise WSManFault(
                wsman.CODE_INVALID_RESOURCE_URI,
                "The WS-Management service cannot process the request. The resource URI "
                f"({req.resource_uri}) was not found in the WS-Management catalog. The catalog contains the metadata "
                "that describes resources, or logical endpoints. ", subcode="w:DestinationUnreachable",
                value="s:Sender", detail=wsman.DETAIL_INVALID_RESOURCE_URI)
        creation = body.find("{%s}creationXml" % wsman.NS["pwsh"])
        if creation is None or not (creation.text or "").strip():
            raise WSManFault(wsman.CODE_INTERNAL, "The WS-Management service cannot process the request: "
                             "no creationXml in the PowerShell shell Create.")
        shell_id = (body.get("ShellId") or str(uuid.uuid4())).upper()
        try:
            data = base64.b64decode(creation.text.strip())
        except (binascii.Error, ValueError):
            raise WSManFault(wsman.CODE_INTERNAL, "creationXml is not base64") from None
        if self._app_data_table is None:
            self._app_data_table = _cached_psversion_table(getattr(self.host, "psversion", None))
        app_data = {"PSVersionTable": dict(self._app_data_table)}
        shell = Shell(shell_id, req.resource_uri, user, client_ip, app_data)
        shell.pool.app_data_key = id(self._app_data_table)  # tables live in _PSV_CACHE for the process
        with shell.cond:
            shell.feed(data, None, StreamType.default)
            if shell.pool.state != RunspacePoolState.Opened:
                raise WSManFault(wsman.CODE_INTERNAL, "The PowerShell runspace pool could not be opened "
                                 f"(state {shell.pool.state.name}).")
            shell.drain()
        shell.open_groups = open_groups(shell.pool_queue, self._open_receives(req))
        if self.faults.slow_open_seconds > 0:
            shell.state_ready_at = time.monotonic() + self.faults.slow_open_seconds
        with self._lock:
            self.shells[shell_id] = shell
        input_streams = (body.findtext("{%s}InputStreams" % wsman.NS["rsp"]) or "stdin pr").strip()
        output_streams = (body.findtext("{%s}OutputStreams" % wsman.NS["rsp"]) or "stdout").strip()
        return Reply(200, wsman.create_response(req, shell_id, address or req.to, user, client_ip,
                                                input_streams, output_streams))

    def _create_cmd_shell(self, req: wsman.Request, body: Any, client_ip: str, user: str, address: str) -> Reply:
        shell_id = (body.get("ShellId") or str(uuid.uuid4())).upper()
        try:
            codepage = int(req.options.get("WINRS_CODEPAGE") or 437)
        except ValueError:
            codepage = 437
        input_streams = (body.findtext("{%s}InputStreams" % wsman.NS["rsp"]) or "stdin").strip()
        output_streams = (body.findtext("{%s}OutputStreams" % wsman.NS["rsp"]) or "stdout stderr").strip()
        shell = winrs.CmdShell(shell_id, req.resource_uri, user, client_ip, codepage, input_streams, output_streams)
        with self._lock:
            self.shells[shell_id] = shell  # type: ignore[assignment]
        return Reply(200, wsman.create_response(req, shell_id, address or req.to, user, client_ip,
                                                input_streams, output_streams))

    def _cmd_command(self, req: wsman.Request, shell: Any) -> Reply:
        body = req.body
        if body is None or body.tag != "{%s}CommandLine" % wsman.NS["rsp"]:
            raise WSManFault(wsman.CODE_INTERNAL, "The Command body holds no rsp:CommandLine.")
        command_id = (body.get("CommandId") or winrs.new_command_id()).upper()
        exe = body.findtext("{%s}Command" % wsman.NS["rsp"]) or ""
        args = [a.text or "" for a in body.findall("{%s}Arguments" % wsman.NS["rsp"])]
        argv = winrs.split_command_line(exe) + args
        skip_cmd = str(req.options.get("WINRS_SKIP_CMD_SHELL", "")).lower() == "true"
        out, err, code = winrs.run_command_line(self.host, argv, shell.codepage)
        if skip_cmd and code == 1 and not out and b"is not recognized" in err:
            return Reply(500, winrs.provider_fault(req.message_id, winrs.CODE_FILE_NOT_FOUND,
                                                   "The system cannot find the file specified. ", self.machine,
                                                   "Shell cmd plugin", "%systemroot%\\system32\\winrscmd.dll"))
        with shell.cond:
            shell.commands[command_id] = winrs.CmdCommand(command_id, out, err, code)
        return Reply(200, wsman.command_response(req, command_id))

    def _do_command(self, req: wsman.Request, **_: Any) -> Reply:
        shell = self._shell(req)
        if isinstance(shell, winrs.CmdShell):
            return self._cmd_command(req, shell)
        body = req.body
        if body is None or body.tag != "{%s}CommandLine" % wsman.NS["rsp"]:
            raise WSManFault(wsman.CODE_INTERNAL, "The Command body holds no rsp:CommandLine.")
        command_id = body.get("CommandId") or str(uuid.uuid4()).upper()
        try:
            pid = uuid.UUID(command_id)
        except ValueError:
            raise WSManFault(wsman.CODE_INTERNAL, f"CommandId {command_id!r} is not a GUID.") from None
        args = [a.text or "" for a in body.findall("{%s}Arguments" % wsman.NS["rsp"])]
        with shell.cond:
            if pid in shell.pipes:
                raise WSManFault(wsman.CODE_INTERNAL, f"A command with CommandId {command_id} already exists.")
            # the ServerPipeline must exist before its CREATE_PIPELINE fragment is fed in
            pipe = Pipe(psrpcore.ServerPipeline(shell.pool, pid), command_id)
            shell.pipes[pid] = pipe
            for a in args:
                if a.strip():
                    self._feed_pipe(shell, pipe, base64.b64decode(a.strip()), StreamType.default)
            shell.drain()
        return Reply(200, wsman.command_response(req, command_id))

    def _feed_pipe(self, shell: Shell, pipe: Pipe, data: bytes, stream_type: StreamType) -> None:
        for ev in shell.feed(data, pipe.pipeline.pipeline_id, stream_type):
            if isinstance(ev, psrpcore.EndOfPipelineInputEvent):
                target = shell.pipes.get(ev.pipeline_id) if ev.pipeline_id else None
                if target is not None:
                    target.input_done = True
        for p in list(shell.pipes.values()):
            self._maybe_start(shell, p)

    def _maybe_start(self, shell: Shell, pipe: Pipe) -> None:
        p = pipe.pipeline
        if pipe.started or p.metadata is None:
            return
        if not getattr(p.metadata, "no_input", True) and not pipe.input_done:
            return
        pipe.started = True
        # real servers never send PipelineState Running: change the state without emitting it
        p._change_state(PSInvocationState.Running, emit=False)  # private API (psrpcore 0.3.1)
        if self.faults.slow_seconds > 0:
            pipe.ready_at = time.monotonic() + self.faults.slow_seconds
            return
        self._execute(shell, pipe)

    def _execute(self, shell: Shell, pipe: Pipe) -> None:
        """Run the pipeline on the emulated host and queue what it wrote (call with ``shell.cond`` held)."""
        pipe.executed = True
        p = pipe.pipeline
        if p.state != PSInvocationState.Running:  # stopped meanwhile
            return
        statements = _statements_of(p.metadata)
        gate = self.endpoints.get(shell.resource_uri[len(PS_RESOURCE_PREFIX):].lower()) if self.endpoints else None
        try:
            refused = gate.refuse(statements) if gate is not None else None
            ex = refused if refused is not None else self.host.run(statements)
        except Exception as e:
            log.exception("lab %s: host.run failed for %s", self.machine, api.canonical_key(statements))
            ex = api.Execution(failed=True, failure=api.ErrorSpec(
                message=f"lab: the emulated host failed to run the pipeline ({type(e).__name__}: {e})",
                fully_qualified_error_id="LabHostError",
                exception_type="System.Management.Automation.RuntimeException"))
        if self.on_pipeline is not None:
            try:
                self.on_pipeline(statements, ex)
            except Exception:
                log.exception("lab %s: on_pipeline hook failed", self.machine)
        if p.state != PSInvocationState.Running:
            return
        if not shell.first_pipeline_done:
            shell.first_pipeline_done = True
            queue_raw_message(shell.pool, PSRPMessageType.ProgressRecord, FIRST_USE_PROGRESS, p.pipeline_id)
        for item in ex.output:
            if isinstance(item, api.RawClixml):
                queue_raw_clixml(shell.pool, p.pipeline_id, item.xml)
                continue
            xml = _clixml_of(item)
            if xml is not None:
                queue_raw_clixml(shell.pool, p.pipeline_id, xml)
            else:
                p.write_output(item)
        for err in ex.errors:
            rec = error_record(err)
            p.write_error(rec.Exception, rec.CategoryInfo, rec.TargetObject, rec.FullyQualifiedErrorId,
                          invocation_info=rec.InvocationInfo)
        if ex.exit_code is not None:
            # `exit N`: PowerShell's LocalPipeline calls the host's SetShouldExit(N) (a PIPELINE_HOST_CALL the
            # client answers or ignores); the pipeline itself still ends Completed
            p.host_call(HostMethodIdentifier.SetShouldExit, [int(ex.exit_code)])
        if ex.failed:
            failure = ex.failure or api.ErrorSpec(message="The pipeline failed.", fully_qualified_error_id="Failed")
            p._change_state(PSInvocationState.Failed, error_record(failure))  # private API (psrpcore 0.3.1)
        else:
            p.complete()
        pipe.finished = True
        shell.drain()

    def _do_receive(self, req: wsman.Request, **_: Any) -> Reply:
        shell = self._shell(req)
        if isinstance(shell, winrs.CmdShell):
            desired = req.body.find("{%s}DesiredStream" % wsman.NS["rsp"]) if req.body is not None else None
            cid = ((desired.get("CommandId") if desired is not None else None) or "").upper()
            with shell.cond:
                cmd = shell.commands.get(cid)
                if cmd is None:
                    raise unknown_command_fault()
                budget = max(req.max_envelope_size - wsman.RECEIVE_OVERHEAD, MIN_RECEIVE_BUDGET)
                return Reply(200, winrs.receive_response(req, cmd, budget))
        desired = req.body.find("{%s}DesiredStream" % wsman.NS["rsp"]) if req.body is not None else None
        command_id = desired.get("CommandId") if desired is not None else None
        budget = max(req.max_envelope_size - wsman.RECEIVE_OVERHEAD, MIN_RECEIVE_BUDGET)
        deadline = time.monotonic() + max(req.operation_timeout, 0.05)
        with shell.cond:
            pipe: Optional[Pipe] = None
            if command_id:
                try:
                    pipe = shell.pipes.get(uuid.UUID(command_id))
                except ValueError:
                    pipe = None
                if pipe is None:
                    raise unknown_command_fault()
                if self.faults.hang_receive:
                    raise Hang()
            queue = pipe.queue if pipe is not None else shell.pool_queue
            opening = pipe is None and bool(shell.open_groups)
            while True:
                if shell.closed:
                    raise WSManFault(wsman.CODE_SHELL_NOT_FOUND, f"The shell {shell.id} was closed.",
                                     subcode="w:InvalidSelectors", value="s:Sender")
                now = time.monotonic()
                if pipe is not None and pipe.started and not pipe.executed and now >= pipe.ready_at:
                    self._execute(shell, pipe)
                # the pool's Opened state waits for slow_open (the last open group)
                gated = opening and len(shell.open_groups) == 1 and now < shell.state_ready_at
                if (queue and not gated) or (pipe is not None and pipe.finished and not pipe.done_sent):
                    break
                if self.stopping.is_set():
                    raise Hang()
                wake = deadline
                if pipe is not None and pipe.started and not pipe.executed:
                    wake = min(wake, pipe.ready_at)
                if gated:
                    wake = min(wake, shell.state_ready_at)
                if now >= deadline:
                    return Reply(500, wsman.operation_timeout_fault(req.message_id, self._machine_for(req)))
                shell.cond.wait(min(max(wake - now, 0.0), 0.5))
            chunks: list[str] = []
            used = psrp_bytes = 0
            limit = shell.open_groups.pop(0) if opening else len(queue)
            while queue and len(chunks) < limit:
                size = (len(queue[0]) + 2) // 3 * 4 + wsman.STREAM_OVERHEAD
                if chunks and (used + size > budget or psrp_bytes >= RECEIVE_PSRP_BYTES):
                    break
                frag = queue.popleft()
                psrp_bytes += len(frag)
                chunks.append(base64.b64encode(frag).decode("ascii"))
                used += size
            done = pipe is not None and pipe.finished and not queue
            if done:
                pipe.done_sent = True
        return Reply(200, wsman.receive_response(req, chunks, pipe.command_id if pipe else None, done))

    def _do_send(self, req: wsman.Request, **_: Any) -> Reply:
        shell = self._shell(req)
        if isinstance(shell, winrs.CmdShell):
            return Reply(200, wsman.send_response(req))  # the emulated programs read no input
        body = req.body
        if body is None:
            raise WSManFault(wsman.CODE_INTERNAL, "The Send body is empty.")
        with shell.cond:
            for st in body.findall("{%s}Stream" % wsman.NS["rsp"]):
                text = (st.text or "").strip()
                if not text:
                    continue
                data = base64.b64decode(text)
                stream_type = StreamType.prompt_response if st.get("Name") == "pr" else StreamType.default
                cid = st.get("CommandId")
                if cid:
                    pipe = shell.pipes.get(uuid.UUID(cid))
                    if pipe is None:
                        raise WSManFault(wsman.CODE_INVALID_SELECTORS, f"No command with CommandId {cid}.",
                                         subcode="w:InvalidSelectors", value="s:Sender")
                    self._feed_pipe(shell, pipe, data, stream_type)
                else:
                    shell.feed(data, None, stream_type)
            shell.drain()
        return Reply(200, wsman.send_response(req))

    def _do_signal(self, req: wsman.Request, **_: Any) -> Reply:
        shell = self._shell(req)
        if isinstance(shell, winrs.CmdShell):
            cid = ((req.body.get("CommandId") if req.body is not None else None) or "").upper()
            code = (req.body.findtext("{%s}Code" % wsman.NS["rsp"]) or "") if req.body is not None else ""
            with shell.cond:
                if code.lower().endswith("/signal/terminate") or code.lower().endswith("/signal/ctrl_c"):
                    shell.commands.pop(cid, None)
            return Reply(200, wsman.signal_response(req))
        body = req.body
        command_id = body.get("CommandId") if body is not None else None
        code = (body.findtext("{%s}Code" % wsman.NS["rsp"]) or "") if body is not None else ""
        with shell.cond:
            pipe = None
            if command_id:
                try:
                    pipe = shell.pipes.get(uuid.UUID(command_id))
                except ValueError:
                    pipe = None
            if pipe is not None:
                p = pipe.pipeline
                if p.state in (PSInvocationState.Running, PSInvocationState.Stopping):
                    p.stop()  # emits PipelineState Stopped (what ctrl_c gives on a real host)
                    pipe.finished = True
                    shell.drain()
                if code.lower().endswith("/signal/terminate"):
                    p.close()
                    shell.pipes.pop(p.pipeline_id, None)
                shell.cond.notify_all()
        return Reply(200, wsman.signal_response(req))

    def _do_delete(self, req: wsman.Request, **_: Any) -> Reply:
        shell = self._shell(req)
        with self._lock:
            self.shells.pop(shell.id, None)
        with shell.cond:
            shell.closed = True
            shell.cond.notify_all()
        return Reply(200, wsman.delete_response(req))

    def _do_get(self, req: wsman.Request, **_: Any) -> Reply:
        if req.resource_uri.rstrip("/").endswith("/wsman/1/config"):  # WSMan.update_max_payload_size()
            return Reply(200, wsman.get_response(req, wsman.CONFIG_XML))
        shell = self._shell(req)
        now = time.monotonic()
        xml = wsman.shell_element(shell.id, shell.resource_uri, shell.owner, shell.client_ip,
                                  run_time=_iso_duration(now - shell.created),
                                  inactivity=_iso_duration(now - shell.last_use))
        return Reply(200, wsman.get_response(req, xml))

    # ----------------------------------------------------------------------------- lifecycle

    def close_all(self) -> None:
        with self._lock:
            shells = list(self.shells.values())
            self.shells.clear()
        for shell in shells:
            with shell.cond:
                shell.closed = True
                shell.cond.notify_all()

