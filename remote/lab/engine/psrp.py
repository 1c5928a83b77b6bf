"""PSRP encoding for the lab's shells: CREATE_PIPELINE → ``api.Statement``s, ErrorRecords, PSVersionTable,
the CLIXML fast paths, the shared decoded-message memo (``LabRunspacePool``) and raw CLIXML passthrough.
psrpcore 0.3.1 private API use is listed in remote/lab/engine/shell.py's docstring."""

from __future__ import annotations

import re
import threading
import uuid
from types import SimpleNamespace
from typing import Any, Optional, Union

import psrpcore
from psrpcore import StreamType
import psrpcore._base as _psrpcore_base
from psrpcore._payload import PSRPMessage, create_message as _create_message
from psrpcore._events import PSRPEvent
from psrpcore.types import deserialize, serialize
from xml.etree import ElementTree
from psrpcore.types import (
    CommandOrigin,
    CommandTypes,
    InvocationInfo,
    SessionStateEntryVisibility,
    ApplicationPrivateData,
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSRPMessageType,
    PipelineState,
    PSVersion,
    RunspacePoolState,
    RunspacePoolStateMsg,
)

from remote.lab import api
from remote.lab.engine.memo import SharedMemo

UTF8_BOM = b"\xef\xbb\xbf"


def create_message(client: bool, message_type: Any, data: bytes, runspace_pool_id: uuid.UUID,
                   pipeline_id: Optional[uuid.UUID] = None) -> bytes:
    """psrpcore's ``create_message``, with the UTF-8 BOM Windows puts before every server message's CLIXML
    (recordings: every decoded message shows bom=True; pypsrp strips it, messages.py)."""
    if not client and data[:3] != UTF8_BOM:
        data = UTF8_BOM + data
    return _create_message(client, message_type, data, runspace_pool_id, pipeline_id)


# psrpcore builds server messages in _base (private API, psrpcore 0.3.1): the lab is its only user here
_psrpcore_base.create_message = create_message  # type: ignore[attr-defined]



FRAGMENT_SIZE = 32768  # bytes of PSRP data per outgoing payload (Windows fragments at 32 KiB too)
MIN_RECEIVE_BUDGET = 8192
PS_RESOURCE_PREFIX = "http://schemas.microsoft.com/powershell/"

DEFAULT_PSVERSION = {
    "PSVersion": "5.1.17763.1",
    "PSEdition": "Desktop",
    "PSCompatibleVersions": ["1.0", "2.0", "3.0", "4.0", "5.0", "5.1.17763.1"],
    "BuildVersion": "10.0.17763.1",
    "CLRVersion": "4.0.30319.42000",
    "WSManStackVersion": "3.0",
    "PSRemotingProtocolVersion": "2.3",
    "SerializationVersion": "1.1.0.1",
}
_VERSION_RE = re.compile(r"^\d+(\.\d+){1,3}$")




# ------------------------------------------------------------------------------- conversions


def _plain(value: Any) -> Any:
    """psrpcore's deserialized values (PSString, PSInt32, PSList...) as plain Python values."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _parameter(name: Any, value: Any) -> tuple[Optional[str], Any]:
    """One (name, value) pair. A named parameter sent without a value (pypsrp's ``add_parameter("Stream")``,
    PowerShell's ``AddParameter("Stream")``) is a switch that is present: ``True``, so its canonical
    key is ``-Stream``, as typed."""
    if name is None:
        return None, _plain(value)
    return str(name), True if value is None else _plain(value)


def statements_from_pipeline(ps: psrpcore.PowerShell) -> list[api.Statement]:
    """CREATE_PIPELINE (psrpcore ``PowerShell`` metadata, ExtraCmds included) as ``api.Statement``s.

    ``Client.execute_ps(script)`` arrives as ``Invoke-Expression -Command <script> | Out-String -Stream``."""
    statements: list[api.Statement] = []
    current: api.Statement = []
    for c in ps.commands:
        current.append(
            api.Command(
                text=str(c.command_text),
                is_script=bool(c.is_script),
                parameters=[_parameter(n, v) for n, v in c.parameters],
            )
        )
        if c.end_of_statement:
            statements.append(current)
            current = []
    if current:
        statements.append(current)
    return statements


def psversion_table(psversion: Optional[dict]) -> dict:
    """A host's PSVersionTable for ApplicationPrivateData, version strings typed as ``Version`` like Windows."""
    table = dict(DEFAULT_PSVERSION)
    table.update(psversion or {})
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, str) and _VERSION_RE.match(v) and k != "PSEdition":
            out[k] = PSVersion(v)
        elif isinstance(v, (list, tuple)) and all(isinstance(x, str) and _VERSION_RE.match(x) for x in v):
            out[k] = [PSVersion(x) for x in v]
        else:
            out[k] = v
    return out


class _CategoryInfo(ErrorCategoryInfo):
    """ErrorCategoryInfo whose text (``ErrorCategory_Message``) is PowerShell's:
    ``ObjectNotFound: (foo:String) [], CommandNotFoundException`` (psrpcore leaves out the colon)."""

    def __str__(self) -> str:
        return (f"{self.Category.name}: ({self.TargetName or ''}:{self.TargetType or ''}) "
                f"[{self.Activity or ''}], {self.Reason or ''}")


_PSV_CACHE: dict[str, dict] = {}
_PSV_LOCK = threading.Lock()


def _cached_psversion_table(psversion: Optional[dict]) -> dict:
    """``psversion_table``, shared by every host with the same table (thousands of hosts, a few tables)."""
    key = repr(sorted((psversion or {}).items()))
    with _PSV_LOCK:
        table = _PSV_CACHE.get(key)
        if table is None:
            table = _PSV_CACHE[key] = psversion_table(psversion)
        return table


def error_record(spec: api.ErrorSpec) -> ErrorRecord:
    """An ``ErrorRecord`` as PowerShell would serialize it, from the engine's ``ErrorSpec``."""
    exc = NETException(Message=spec.message, HResult=-2146233087)
    type_names = [spec.exception_type]
    if spec.exception_type != "System.Exception":
        type_names.append("System.Exception")
    type_names.append("System.Object")
    exc.PSObject.type_names = type_names
    try:
        category = ErrorCategory(int(spec.category))
    except ValueError:
        category = ErrorCategory.NotSpecified
    target = spec.target
    info = _CategoryInfo(
        Category=category,
        Activity=spec.command_name or "",
        Reason=spec.exception_type.rsplit(".", 1)[-1],
        TargetName=target if target is not None else "",
        TargetType="String" if target is not None else "",
    )
    rec = ErrorRecord(
        Exception=exc,
        CategoryInfo=info,
        TargetObject=target,
        FullyQualifiedErrorId=spec.fully_qualified_error_id,
        InvocationInfo=invocation_info(spec.command_name) if spec.command_name else None,
    )
    rec.serialize_extended_info = rec.InvocationInfo is not None
    return rec


def invocation_info(command: str) -> InvocationInfo:
    """The InvocationInfo/CommandInfo a real error record of a command carries (SerializeExtendedInfo; recorded:
    real-pipeline-error-record-jea.txt), from which pypsrp fills ``invocation_name`` and ``command_name``."""
    native = command.lower().endswith(".exe")
    my_command = SimpleNamespace(CommandType=CommandTypes.Application if native else CommandTypes.Cmdlet,
                                 Definition="", Name=command, Visibility=SessionStateEntryVisibility.Public)
    return InvocationInfo(BoundParameters={}, CommandOrigin=CommandOrigin.Internal, ExpectingInput=False,
                          InvocationName=command, Line="", OffsetInLine=0, HistoryId=1, PipelineLength=0,
                          PipelinePosition=0, PSScriptRoot="", PSCommandPath=None, PositionMessage="",
                          ScriptLineNumber=0, ScriptName="", UnboundArguments=[], MyCommand=my_command,
                          DisplayScriptPosition=None)





# ---------------------------------------------------------------------------------- fast paths

# MS-PSRP 2.2.5.3.2 string escaping, as psrpcore's _serialize_string does it: "_x" (any case) first,
# then C0/C1 controls as _xHHHH_. Control characters other than CR/LF and non-BMP characters are rare
# in command output: those strings take psrpcore's own path.
_ESCAPE_ESCAPE = re.compile("(?i)_(x)")
_NEEDS_PSRPCORE = re.compile("[\u0000-\u0009\u000B\u000C\u000E-\u001F\u007F-\u009F\uD800-\uDFFF"
                             "\U00010000-\U0010FFFF]")


def clixml_string(value: str) -> Optional[str]:
    """``<S>…</S>`` for ``value`` exactly as psrpcore serializes a ``str`` output object, or None when
    the string holds characters this shortcut leaves to psrpcore. Linear C-level string work instead
    of one Python call per CR and LF (the lab's biggest cost per host with Out-String output)."""
    if not value:
        return "<S></S>"  # as PowerShell's serializer (XmlWriter) writes an empty string; psrpcore writes <S />
    if _NEEDS_PSRPCORE.search(value):
        return None
    if "_" in value:
        value = _ESCAPE_ESCAPE.sub("_x005F_\\1", value)
    if "\r" in value or "\n" in value:
        value = value.replace("\r", "_x000D_").replace("\n", "_x000A_")
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return "<S>" + value + "</S>"


_STATEMENTS: "dict[int, tuple[Any, list]]" = {}  # id(shared pipeline metadata) -> (metadata, statements)
_CLIXML: dict = {}  # output value -> its CLIXML, for the strings and booleans shared run results are made of
_CLIXML_MAX_CHARS = 64 * 1024 * 1024
_clixml_chars = 0
_clixml_lock = threading.Lock()


def _statements_of(metadata: Any) -> list:
    """``statements_from_pipeline``, once per shared (memoized) pipeline metadata object."""
    got = _STATEMENTS.get(id(metadata))
    if got is not None and got[0] is metadata:
        return got[1]
    with _shared_use:
        statements = statements_from_pipeline(metadata)
    if len(_STATEMENTS) < 256:
        _STATEMENTS[id(metadata)] = (metadata, statements)  # keeps metadata alive: the id stays its own
    return statements


def _clixml_of(item: Any) -> Optional[bytes]:
    """UTF-8 CLIXML of a ``str`` or ``bool`` output object, as psrpcore serializes it; None for others.
    Hosts made from one bundle share their run results, so the same strings come back for each: the
    escaped form is kept (a str caches its hash; a lookup of the same object is an identity check)."""
    if type(item) is bool:
        return b"<B>true</B>" if item else b"<B>false</B>"
    if type(item) is not str:
        return None
    got = _CLIXML.get(item)
    if got is None:
        xml = clixml_string(item)
        if xml is None:
            return None
        got = xml.encode("utf-8")
        global _clixml_chars
        with _clixml_lock:
            if _clixml_chars + len(item) <= _CLIXML_MAX_CHARS and item not in _CLIXML:
                _CLIXML[item] = got
                _clixml_chars += len(item)
    return got


class _Decoded:
    __slots__ = ("ps_object", "pipeline")

    def __init__(self, ps_object: Any) -> None:
        self.ps_object = ps_object
        self.pipeline: Any = None  # CreatePipeline: the psrpcore PowerShell built from it, once


# the client message every host of a fleet receives byte for byte (one scanner, one fixed pipeline)
_MEMO_TYPES = frozenset({PSRPMessageType.CreatePipeline})
_memo = SharedMemo(64)
# the pool-open messages every host receives byte for byte too: what their handlers read is read once
_POOL_FIELDS = {
    PSRPMessageType.SessionCapability: ("ps_version", "protocol_version", "serialization_version"),
    PSRPMessageType.InitRunspacePool: ("apartment_state", "application_arguments", "host_info", "ps_thread_options",
                                       "max_runspaces", "min_runspaces"),
}
_pool_memo = SharedMemo(64)
# server messages whose CLIXML is the same on every host: our SessionCapability, a pool or pipeline state
# without an error record (serialized once per protocol version)
_constant_xml = SharedMemo(64)


_app_data_xml = SharedMemo(64)  # ApplicationPrivateData CLIXML by PSVersionTable (a few distinct tables)
_shared_use = threading.RLock()  # held while shared psrpcore objects are used (see _process_message)


class LabRunspacePool(psrpcore.ServerRunspacePool):
    """psrpcore's server RunspacePool, except that a CREATE_PIPELINE is decoded once per lab process,
    not once per host: CLIXML deserialization of a many-statement pipeline was about 40% of the lab's
    CPU per host (py-spy). Messages holding a SecureString (``<SS>``, whose decryption depends on the
    pool's session key) are always decoded by psrpcore. The decoded pipeline is turned into its
    psrpcore ``PowerShell`` once, under a lock; hosts share that result and only read it. The
    ApplicationPrivateData answer is serialized once per PSVersionTable."""

    def _process_message(self, message: PSRPMessage) -> Any:  # private API (psrpcore 0.3.1)
        mt = message.message_type
        data = message.data
        if mt in _POOL_FIELDS and b"<SS" not in data:
            return self._process_pool_message(message)
        if mt not in _MEMO_TYPES or b"<SS" in data:
            return super()._process_message(message)
        key = (mt, bytes(data), str(getattr(self.their_capability, "protocolversion", "")))
        entry = _memo.get_or_compute(key, lambda: _Decoded(deserialize(
            ElementTree.fromstring(data), cipher=self._cipher, our_capability=self.our_capability,
            their_capability=self.their_capability)))
        event = PSRPEvent.create(mt, entry.ps_object, message.runspace_pool_id, message.pipeline_id)
        pipe = self.pipeline_table.get(event.pipeline_id)
        if pipe is None:
            raise psrpcore.PSRPCoreError(f"Failed to find pipeline for incoming event {event.pipeline_id!s}")
        if entry.pipeline is None:
            # psrpcore objects are not thread-safe even to read (a 200-client run saw "dictionary keys
            # changed during iteration"): the shared decoded object is only read here, once, locked
            with _shared_use:
                if entry.pipeline is None:
                    entry.pipeline = event.pipeline
        pipe.metadata = entry.pipeline
        return event

    def _process_pool_message(self, message: PSRPMessage) -> Any:
        """SessionCapability / InitRunspacePool as psrpcore's ``_process_message`` handles them, with the CLIXML
        decoded and the event's fields read once per lab process (under the lock, as shared psrpcore objects
        must be); each pool gets the same values its own decoding would give."""
        mt = message.message_type
        key = (mt, bytes(message.data), str(getattr(self.their_capability, "protocolversion", "")))

        def decode() -> tuple[Any, dict]:
            ps_object = deserialize(ElementTree.fromstring(message.data), cipher=self._cipher,
                                    our_capability=self.our_capability, their_capability=self.their_capability)
            with _shared_use:
                ev = PSRPEvent.create(mt, ps_object, message.runspace_pool_id, message.pipeline_id)
                return ps_object, {f: getattr(ev, f) for f in _POOL_FIELDS[mt]}

        ps_object, fields = _pool_memo.get_or_compute(key, decode)
        view = SimpleNamespace(runspace_pool_id=message.runspace_pool_id, pipeline_id=message.pipeline_id, **fields)
        getattr(self, f"_process_{mt.name}")(view)
        return PSRPEvent.create(mt, ps_object, message.runspace_pool_id, message.pipeline_id)

    def prepare_message(self, message: Any, message_type: Any = None, pipeline_id: Optional[uuid.UUID] = None,
                        stream_type: StreamType = StreamType.default) -> None:  # psrpcore 0.3.1
        kind: Any = None
        t = type(message)
        if message is self.our_capability:
            kind = ("SessionCapability", str(message.PSVersion), str(message.protocolversion),
                    str(message.SerializationVersion))
        elif t is RunspacePoolStateMsg and message.ExceptionAsErrorRecord is None:
            kind = ("RunspacePoolState", int(message.RunspaceState))
        elif t is PipelineState and message.ExceptionAsErrorRecord is None:
            kind = ("PipelineState", int(message.PipelineState))
        if kind is None or message_type is not None or stream_type != StreamType.default:
            return super().prepare_message(message, message_type, pipeline_id, stream_type)
        key = (kind, str(getattr(self.their_capability, "protocolversion", "")))
        xml = _constant_xml.get_or_compute(key, lambda: ElementTree.tostring(serialize(
            message, self._cipher, our_capability=self.our_capability, their_capability=self.their_capability),
            encoding="utf-8", method="xml"))
        queue_raw_message(self, PSRPMessageType.get_message_id(t), xml, pipeline_id)

    app_data_key: Any = None  # set by Shell: the shared PSVersionTable this pool answers with

    def _process_InitRunspacePool(self, event: Any) -> None:  # private API (psrpcore 0.3.1)
        if self.app_data_key is None:
            return super()._process_InitRunspacePool(event)
        # as psrpcore does it, with the ApplicationPrivateData CLIXML serialized once per table
        self.apartment_state = event.apartment_state
        self.application_arguments = event.application_arguments
        self.host = event.host_info
        self.thread_options = event.ps_thread_options
        self._max_runspaces = event.max_runspaces
        self._min_runspaces = event.min_runspaces
        key = (self.app_data_key, str(getattr(self.their_capability, "protocolversion", "")))
        xml = _app_data_xml.get_or_compute(key, lambda: ElementTree.tostring(
            serialize(ApplicationPrivateData(ApplicationPrivateData=self.application_private_data), self._cipher,
                      our_capability=self.our_capability, their_capability=self.their_capability),
            encoding="utf-8", method="xml"))
        queue_raw_message(self, PSRPMessageType.ApplicationPrivateData, xml, None)
        self._change_state(RunspacePoolState.Opened)


def queue_raw_clixml(pool: psrpcore.ServerRunspacePool, pipeline_id: uuid.UUID, clixml: Union[str, bytes]) -> None:
    """Queue one PipelineOutput whose CLIXML is sent byte for byte (captured objects keep their
    real type names; psrpcore's deserialize/serialize round trip would make them ``Deserialized.*``)."""
    data = clixml if isinstance(clixml, bytes) else clixml.encode("utf-8")
    queue_raw_message(pool, PSRPMessageType.PipelineOutput, data, pipeline_id)


def queue_raw_message(pool: psrpcore.ServerRunspacePool, message_type: PSRPMessageType, data: bytes,
                      pipeline_id: Optional[uuid.UUID]) -> None:
    """Queue one PSRP message of already serialized CLIXML, as psrpcore's ``prepare_message`` would."""
    msg = create_message(False, message_type, data, pool.runspace_pool_id, pipeline_id)
    pool._send_buffer.append(  # private API (psrpcore 0.3.1)
        PSRPMessage(message_type, bytearray(msg), pool.runspace_pool_id, pipeline_id,
                    pool._fragment_counter, StreamType.default)
    )




# The progress record PowerShell writes on a runspace's first pipeline while it loads modules (recorded byte
# for byte: real-pipeline-all-streams.txt, and PROGRESS_RECORD first in most pipelines of
# real-message-flow-summary.txt)
FIRST_USE_PROGRESS = (
    b'<Obj RefId="0"><MS><S N="Activity">Preparing modules for first use.</S><I32 N="ActivityId">0</I32>'
    b'<S N="StatusDescription"> </S><Nil N="CurrentOperation" /><I32 N="ParentActivityId">-1</I32>'
    b'<I32 N="PercentComplete">-1</I32><Obj N="Type" RefId="1"><TN RefId="0">'
    b'<T>System.Management.Automation.ProgressRecordType</T><T>System.Enum</T><T>System.ValueType</T>'
    b'<T>System.Object</T></TN><ToString>Completed</ToString><I32>1</I32></Obj>'
    b'<I32 N="SecondsRemaining">-1</I32></MS></Obj>')
