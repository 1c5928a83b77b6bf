"""WS-Management SOAP for the lab: parse what pypsrp sends, build what Windows answers.

Pure (bytes in, bytes out). Responses are built from string templates shaped like the ones a real
Windows host sends (see pypsrp's recorded fixtures): every response carries ``a:RelatesTo`` equal
to the request's MessageID (pypsrp raises ``WinRMError`` otherwise) and every fault is meant to be
sent with HTTP 500 (pypsrp only parses a fault on a non-2xx status).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Optional
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "wsmid": "http://schemas.dmtf.org/wbem/wsman/identify/1/wsmanidentity.xsd",
}

A_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
A_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTIONS = {
    A_TRANSFER + "Create": "Create",
    A_TRANSFER + "Delete": "Delete",
    A_TRANSFER + "Get": "Get",
    A_SHELL + "Command": "Command",
    A_SHELL + "Receive": "Receive",
    A_SHELL + "Send": "Send",
    A_SHELL + "Signal": "Signal",
}
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
SHELL_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
COMMAND_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
COMMAND_RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
SIGNAL_CTRL_C = "powershell/signal/ctrl_c"  # the tail of http://schemas.microsoft.com/powershell/signal/ctrl_c

DEFAULT_MAX_ENVELOPE = 153600
DEFAULT_OPERATION_TIMEOUT = 20.0

# WSManFault codes a real host sends
CODE_OPERATION_TIMEOUT = 2150858793  # 0x80338029 w:TimedOut
CODE_SHELL_NOT_FOUND = 2150858843  # 0x8033805B
CODE_INTERNAL = 2150858752  # 0x80338000
CODE_INVALID_SELECTORS = 2150858813  # 0x8033803D
CODE_ACTION_NOT_SUPPORTED = 2150858778  # 0x8033801A
CODE_INVALID_RESOURCE_URI = 2150858811  # 0x8033803B: unknown configuration name / resource URI
CODE_ACCESS_DENIED = 5  # Win32 ERROR_ACCESS_DENIED: a valid account without remoting rights
DETAIL_INVALID_RESOURCE_URI = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI"

MSG_OPERATION_TIMEOUT = (
    "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "
)


class WSManParseError(Exception):
    """The request is not a WS-Management envelope this lab can serve."""


@dataclass
class Request:
    """The parts of a WS-Management request the lab acts on."""

    action: str  # full wsa:Action URI
    name: str  # short name: Create, Receive, Command, Send, Signal, Delete, Get, or the URI's last segment
    message_id: str
    resource_uri: str = ""
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    max_envelope_size: int = DEFAULT_MAX_ENVELOPE
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT
    to: str = ""
    body: Optional[ET.Element] = None  # first child of s:Body, or None

    @property
    def shell_id(self) -> Optional[str]:
        for k, v in self.selectors.items():
            if k.lower() == "shellid":
                return v
        return None


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: Optional[str], default: float = DEFAULT_OPERATION_TIMEOUT) -> float:
    """xs:duration as WSMan uses it (``PT20S``, ``PT60.000S``) in seconds."""
    if not text:
        return default
    m = _DURATION.match(text.strip())
    if not m or not any(m.groupdict().values()):
        return default
    g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]


def _q(prefix: str, local: str) -> str:
    return "{%s}%s" % (NS[prefix], local)


_H_ACTION = _q("a", "Action")
_H_MSGID = _q("a", "MessageID")
_H_TO = _q("a", "To")
_H_RESOURCE = _q("w", "ResourceURI")
_H_MAXENV = _q("w", "MaxEnvelopeSize")
_H_OPTIMEOUT = _q("w", "OperationTimeout")
_H_SELECTORS = _q("w", "SelectorSet")
_H_OPTIONS = _q("w", "OptionSet")


def parse_request(data: bytes) -> Request:
    """Parse a SOAP request (raises ``WSManParseError`` on anything that is not one)."""
    try:
        env = ET.fromstring(data)
    except ET.ParseError as e:
        raise WSManParseError(f"not XML: {e}") from None
    if env.tag != _q("s", "Envelope"):
        raise WSManParseError(f"not a SOAP 1.2 envelope: {env.tag}")
    header = env.find(_q("s", "Header"))
    body = env.find(_q("s", "Body"))
    if header is None:
        raise WSManParseError("no s:Header")
    action = message_id = resource = to = ""
    max_env = DEFAULT_MAX_ENVELOPE
    op_timeout = DEFAULT_OPERATION_TIMEOUT
    selectors: dict[str, str] = {}
    options: dict[str, str] = {}
    for el in header:
        tag = el.tag
        text = (el.text or "").strip()
        if tag == _H_ACTION:
            action = text
        elif tag == _H_MSGID:
            message_id = text
        elif tag == _H_RESOURCE:
            resource = text
        elif tag == _H_TO:
            to = text
        elif tag == _H_MAXENV:
            try:
                max_env = int(text)
            except ValueError:
                pass
        elif tag == _H_OPTIMEOUT:
            op_timeout = parse_duration(text)
        elif tag == _H_SELECTORS:
            for sel in el:
                selectors[sel.get("Name", "")] = (sel.text or "").strip()
        elif tag == _H_OPTIONS:
            for opt in el:
                options[opt.get("Name", "")] = (opt.text or "").strip()
    if not message_id:
        raise WSManParseError("no wsa:MessageID")
    name = ACTIONS.get(action) or action.rstrip("/").rsplit("/", 1)[-1]
    first = None
    if body is not None and len(body):
        first = body[0]
    return Request(
        action=action,
        name=name,
        message_id=message_id,
        resource_uri=resource,
        selectors=selectors,
        options=options,
        max_envelope_size=max_env,
        operation_timeout=op_timeout,
        to=to,
        body=first,
    )


def relates_to_of(data: bytes) -> Optional[str]:
    """Best-effort MessageID of a request that could not be fully parsed (so a fault can relate to it)."""
    m = re.search(rb"MessageID[^>]*>\s*([^<\s]+)\s*<", data[:8192])
    return m.group(1).decode("ascii", "replace") if m else None


# ---------------------------------------------------------------------------------------- responses

_ENV_OPEN = (
    '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
    ' xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer"'
    ' xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"'
    ' xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"'
    ' xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
)

# size of everything in a ReceiveResponse but the streams' base64, rounded up (used for MaxEnvelopeSize)
RECEIVE_OVERHEAD = 1400
STREAM_OVERHEAD = 90  # <rsp:Stream Name="stdout" CommandId="...">...</rsp:Stream>


def new_message_id() -> str:
    return "uuid:" + str(uuid.uuid4()).upper()


def envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f"{_ENV_OPEN}<s:Header><a:Action>{action}</a:Action><a:MessageID>{new_message_id()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode("utf-8")


def create_response(
    req: Request,
    shell_id: str,
    address: str,
    owner: str,
    client_ip: str,
    input_streams: str = "stdin pr",
    output_streams: str = "stdout",
) -> bytes:
    ru = escape(req.resource_uri)
    body = (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{ru}</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">{shell_id}</w:Selector>"
        f"</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
        + shell_element(shell_id, req.resource_uri, owner, client_ip, input_streams, output_streams)
    )
    return envelope(A_TRANSFER + "CreateResponse", req.message_id, body)


def shell_element(
    shell_id: str,
    resource_uri: str,
    owner: str,
    client_ip: str,
    input_streams: str = "stdin pr",
    output_streams: str = "stdout",
    state: str = "Connected",
    run_time: str = "P0DT0H0M0S",
    inactivity: str = "P0DT0H0M0S",
) -> str:
    return (
        f'<rsp:Shell xmlns:rsp="{NS["rsp"]}"><rsp:ShellId>{shell_id}</rsp:ShellId>'
        f"<rsp:ResourceUri>{escape(resource_uri)}</rsp:ResourceUri><rsp:Owner>{escape(owner)}</rsp:Owner>"
        f"<rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP><rsp:ProcessId>4242</rsp:ProcessId>"
        f"<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>{escape(input_streams)}</rsp:InputStreams>"
        f"<rsp:OutputStreams>{escape(output_streams)}</rsp:OutputStreams>"
        f"<rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut><rsp:Locale>en-US</rsp:Locale>"
        f"<rsp:DataLocale>en-US</rsp:DataLocale><rsp:CompressionMode>NoCompression</rsp:CompressionMode>"
        f"<rsp:ProfileLoaded>Yes</rsp:ProfileLoaded><rsp:Encoding>UTF8</rsp:Encoding>"
        f"<rsp:BufferMode>Block</rsp:BufferMode><rsp:State>{state}</rsp:State>"
        f"<rsp:ShellRunTime>{run_time}</rsp:ShellRunTime><rsp:ShellInactivity>{inactivity}</rsp:ShellInactivity>"
        f"</rsp:Shell>"
    )


# winrm/config as a default Windows Server answers it (what pypsrp reads: MaxEnvelopeSizekb)
CONFIG_XML = (
    '<cfg:Config xmlns:cfg="http://schemas.microsoft.com/wbem/wsman/1/config">'
    "<cfg:MaxEnvelopeSizekb>500</cfg:MaxEnvelopeSizekb><cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms>"
    "<cfg:MaxBatchItems>32000</cfg:MaxBatchItems><cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests>"
    "</cfg:Config>"
)


def get_response(req: Request, shell_xml: str) -> bytes:
    return envelope(A_TRANSFER + "GetResponse", req.message_id, shell_xml)


def command_response(req: Request, command_id: str) -> bytes:
    return envelope(
        A_SHELL + "CommandResponse",
        req.message_id,
        f"<rsp:CommandResponse><rsp:CommandId>{escape(command_id)}</rsp:CommandId></rsp:CommandResponse>",
    )


def receive_response(
    req: Request,
    chunks_b64: list[str],
    command_id: Optional[str] = None,
    done: bool = False,
    exit_code: int = 0,
) -> bytes:
    cid = f" CommandId={quoteattr(command_id)}" if command_id else ""
    parts = ["<rsp:ReceiveResponse>"]
    for c in chunks_b64:
        parts.append(f'<rsp:Stream Name="stdout"{cid}>{c}</rsp:Stream>')
    if command_id and done:
        parts.append(
            f'<rsp:CommandState CommandId={quoteattr(command_id)} State="{COMMAND_DONE}">'
            f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
        )
    # a non-final Receive carries no CommandState (real-receive-partial-no-commandstate.txt; never Running)
    parts.append("</rsp:ReceiveResponse>")
    return envelope(A_SHELL + "ReceiveResponse", req.message_id, "".join(parts))


def send_response(req: Request) -> bytes:
    return envelope(A_SHELL + "SendResponse", req.message_id, "<rsp:SendResponse/>")


def signal_response(req: Request) -> bytes:
    return envelope(A_SHELL + "SignalResponse", req.message_id, "<rsp:SignalResponse/>")


def delete_response(req: Request) -> bytes:
    return envelope(A_TRANSFER + "DeleteResponse", req.message_id, "")


def fault(
    relates_to: Optional[str],
    code: int | str,
    message: str,
    machine: str = "localhost",
    subcode: str = "w:InternalError",
    value: str = "s:Receiver",
    detail: Optional[str] = None,
    provider: Optional[tuple[str, str]] = None,
    reason: Optional[str] = None,
) -> bytes:
    """A WSManFault envelope (send it with HTTP 500). ``code`` is the WSManFault Code pypsrp reports.

    Shapes as recorded (real-fault-*.xml): ``detail`` adds a ``w:FaultDetail`` URI before the WSManFault;
    ``provider`` = (name, path) puts the text inside ``f:Message/f:ProviderFault`` (its only place when
    ``reason`` is ""), as many real faults carry it."""
    msg = escape(message)
    why = msg if reason is None else escape(reason)
    fd = f"<w:FaultDetail>{escape(detail)}</w:FaultDetail>" if detail else ""
    if provider is not None:
        inner = f"<f:ProviderFault provider={quoteattr(provider[0])} path={quoteattr(provider[1])}>{msg}</f:ProviderFault>"
    else:
        inner = msg
    return envelope(
        FAULT_ACTION,
        relates_to or "",
        f"<s:Fault><s:Code><s:Value>{value}</s:Value><s:Subcode><s:Value>{subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{why}</s:Text></s:Reason>'
        f'<s:Detail>{fd}<f:WSManFault xmlns:f="{NS["f"]}" Code={quoteattr(str(code))} Machine={quoteattr(machine)}>'
        f"<f:Message>{inner}</f:Message></f:WSManFault></s:Detail></s:Fault>",
    )


def operation_timeout_fault(relates_to: str, machine: str = "localhost") -> bytes:
    return fault(relates_to, CODE_OPERATION_TIMEOUT, MSG_OPERATION_TIMEOUT, machine, subcode="w:TimedOut")


def shell_not_found_fault(relates_to: str, shell_id: Optional[str], machine: str = "localhost") -> bytes:
    return fault(
        relates_to,
        CODE_SHELL_NOT_FOUND,
        f"The request for the Windows Remote Shell with ShellId {shell_id or ''} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists "
        "on the server. Provide the correct ShellId or create a new shell and retry the operation. ",
        machine,
        subcode="w:InvalidSelectors",
        value="s:Sender",
    )
