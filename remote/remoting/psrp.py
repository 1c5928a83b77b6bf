"""port80's PSRP client for its one job: open a pool, run one pipeline (or a few), close.

pypsrp (pinned 0.9.1) models the whole protocol: a ``RunspacePool`` with its ``WinRS`` shell, a
``PowerShell`` per pipeline, a ``Fragmenter``, a ``Message`` object per PSRP message, a WSMan element
tree per request and reply. At 1,000 hosts in flight those layers were ~2.5 ms of the ~10 ms of client
CPU a collected host cost (per-thread CPU time; docs/scale.md). ``Session`` sends the same
requests straight from text: the same SOAP envelopes byte for byte but for the random ids (the
header is written as ``Port80WSMan._port80_header`` writes pypsrp's), the same PSRP messages and
fragments, over the same transport (``Port80WSMan.transport``: Basic, NTLM, Kerberos, certificates,
message encryption, the output cap), with pypsrp's checks (the reply's RelatesTo, WSMan faults as
pypsrp's ``WSManFaultError``, a broken pool as its ``InvalidPSRPOperation``, the OperationTimeout
fault asked again). What the evidence is made of is decoded here (strings, the pipeline's state);
anything else a host sends (error records, a state with an error, objects that are not plain
strings) is decoded by pypsrp's own code, so error records are pypsrp's ``ErrorRecord``s.
tests/test_psrp.py compares requests and results with pypsrp's path (remote/remoting/collect.py).
"""

from __future__ import annotations

import binascii
import functools
import logging
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any, Callable, Optional

from pypsrp.exceptions import FragmentError, InvalidPSRPOperation, WinRMError, WinRMTransportError
from pypsrp.messages import Message, MessageType
from pypsrp.wsman import NAMESPACES, WSManAction

from remote.remoting import transport as tp
from remote.remoting.collect import OPERATION_TIMEOUT_FAULT  # w:TimedOut: nothing within OperationTimeout

log = logging.getLogger("port80.psrp")

PROTOCOL_VERSION = "2.3"  # what pypsrp announces (pypsrp.powershell.PROTOCOL_VERSION)
_POOL_OPENED, _POOL_BROKEN, _POOL_NEGOTIATING = 2, 5, 6  # pypsrp's RunspacePoolState
_RUNNING = 1  # pypsrp's PSInvocationState.RUNNING
_FAILED = 5

_FRAGMENT, _HEADER = tp._FRAGMENT, tp._MESSAGE  # MS-PSRP 2.2.4 fragment and 2.2.1 message headers
_TO_SERVER = 2
_PROTOCOL_RE = re.compile(rb'<Version N="protocolversion">([0-9.]+)</Version>')

_RSP = NAMESPACES["rsp"]
_COMMAND_ID = tp._q("rsp:CommandResponse/rsp:CommandId")
_DECLARATIONS = "".join(' xmlns:%s="%s"' % (p, NAMESPACES[p]) for p in ("s", "wsa", "wsman", "wsmv"))
_DECLARATIONS_RSP = ' xmlns:rsp="%s"' % _RSP + _DECLARATIONS
_KEEPALIVE = ('<wsman:OptionSet s:mustUnderstand="true"><wsman:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">'
              'True</wsman:Option></wsman:OptionSet>')
_SKIP_CMD = ('<wsman:OptionSet s:mustUnderstand="true"><wsman:Option Name="WINRS_SKIP_CMD_SHELL">False'
             '</wsman:Option></wsman:OptionSet>')
_PROTOCOL = ('<wsman:OptionSet s:mustUnderstand="true"><wsman:Option MustComply="true" Name="protocolversion">'
             '%s</wsman:Option></wsman:OptionSet>' % PROTOCOL_VERSION)

# The XML of the two messages that open a pool and of port80's pipelines, as pypsrp serializes them
# (once per process, by pypsrp's own serializer)
_OPEN: list[bytes] = []
_PIPELINES: dict[tuple, bytes] = {}
_LOCK = threading.Lock()


class Unsupported(Exception):
    """This session cannot be run here (namespace prefixes pypsrp does not use, fields that are not
    text): nothing was sent, pypsrp's path runs it instead."""


def _open_messages() -> list[bytes]:
    if not _OPEN:
        with _LOCK:
            if not _OPEN:
                from pypsrp.complex_objects import ApartmentState, HostInfo, PSThreadOptions
                from pypsrp.messages import InitRunspacePool, SessionCapability
                from pypsrp.powershell import PS_VERSION, SERIALIZATION_VERSION

                ser = tp.FastSerializer()
                msgs = [SessionCapability(PROTOCOL_VERSION, PS_VERSION, SERIALIZATION_VERSION),
                        InitRunspacePool(1, 1, PSThreadOptions(value=0), ApartmentState(value=2), HostInfo(host=None),
                                         None)]
                xmls = []
                for m in msgs:
                    x = ser.serialize(m)
                    xmls.append(x if isinstance(x, bytes) else ET.tostring(x, encoding="utf-8", method="xml"))
                _OPEN.extend(xmls)
    return _OPEN


def pipeline_xml(kinds: list[str], builders: dict[str, Callable], add: Callable, wsman: Any,
                 protocol_version: Optional[str]) -> bytes:
    """The CREATE_PIPELINE XML pypsrp's ``PowerShell.begin_invoke`` sends for ``kinds`` (statements
    added by ``add(ps, kinds, builders)``), built and serialized by pypsrp once per process."""
    key = (tuple((k, builders[k]) for k in kinds), protocol_version)
    xml = _PIPELINES.get(key)
    if xml is not None:
        return xml
    with _LOCK:  # hundreds of hosts get here at once: one builds
        xml = _PIPELINES.get(key)
        if xml is None:
            from pypsrp.complex_objects import (ApartmentState, HostInfo, Pipeline, RemoteStreamOptions)
            from pypsrp.messages import CreatePipeline
            from pypsrp.powershell import PowerShell, RunspacePool

            pool = RunspacePool(wsman)  # no request: only what PowerShell reads from it
            pool.protocol_version = protocol_version
            ps = PowerShell(pool)
            add(ps, kinds, builders)
            create = CreatePipeline(True, ApartmentState(value=pool.apartment_state),
                                    RemoteStreamOptions(value=RemoteStreamOptions.ADD_INVOCATION_INFO), False,
                                    HostInfo(host=None),
                                    Pipeline(is_nested=False, cmds=ps.commands, history=None, redirect_err_to_out=False),
                                    False)
            x = tp.FastSerializer().serialize(create)
            xml = _PIPELINES[key] = x if isinstance(x, bytes) else ET.tostring(x, encoding="utf-8", method="xml")
    return xml


class Reply:
    """What port80 reads of a reply: its RelatesTo, its streams (name, base64 text), the selectors of a
    created shell, a command's id (None where the reply has none)."""

    __slots__ = ("relates_to", "streams", "selectors", "command_id")

    def __init__(self, relates_to: str, streams: list[tuple[str, bytes]], selectors: Optional[list[tuple[str, str]]],
                 command_id: Optional[str]) -> None:
        self.relates_to, self.streams, self.selectors, self.command_id = relates_to, streams, selectors, command_id


def tree_reply(data: bytes) -> Reply:
    """``Reply`` of any well-formed reply, by ElementTree (what pypsrp reads, where it reads it)."""
    root = tp.parse_response(data)
    relates = root.find(tp._RELATES_TO)
    body = root.find(tp._BODY)
    if body is None:
        return Reply((relates.text or "") if relates is not None else "", [], None, None)
    streams = [(s.get("Name", ""), s.text.encode("utf-8")) for s in body.iterfind(tp._RECEIVE_STREAMS) if s.text]
    sel = body.find(tp._CREATED_SELECTORS)
    selectors = [(x.get("Name", ""), x.text or "") for x in sel] if sel is not None else None
    cid = body.find(_COMMAND_ID)
    return Reply((relates.text or "") if relates is not None else "", streams, selectors,
                 (cid.text or "") if cid is not None else None)


# ``scan_reply``: the same fields read by regular expressions from a reply shaped as Windows writes them
# (tests/test_psrp.py: equal to ``tree_reply`` on every reply of the lab and the recordings). ElementTree
# took ~40 us for the smallest reply and ~400 us for a 140 KB Receive, 6 replies per host.
_DECL = re.compile(rb'\sxmlns(:[A-Za-z_][\w.-]*)?\s*=\s*"([^"]*)"')
_PREFIX_USE = re.compile(rb"</?([A-Za-z_][\w.-]*):")  # element names (an attribute's unbound prefix is let pass)
_ATTR = re.compile(rb'\s+([A-Za-z_][\w.:-]*)="([^"<&]*)"')
_B64_TEXT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n"
_WANTED = {NAMESPACES["s"]: "s", NAMESPACES["wsa"]: "a", NAMESPACES["wsman"]: "w", NAMESPACES["rsp"]: "rsp",
           NAMESPACES["wst"]: "x"}


_MAX_HEAD = 256  # bytes of a stream's start tag (Windows: ~70)
_MAX_MARKUP = 8192  # bytes of markup around the streams (Windows: ~1-2 KB)
_WS = b" \t\r\n"


def scan_reply(data: bytes) -> Optional[Reply]:
    """``Reply`` of a reply shaped as Windows writes them: every namespace prefix bound on the root
    element (a nested declaration may only repeat one), no default namespace, entity, comment, CDATA or
    processing instruction, the streams one after another, the markup around them short (so no search
    here can take long on what a hostile host sends); None for anything else (``tree_reply`` reads it,
    as pypsrp would). The streams' base64 texts are skipped with ``bytes.find``: a pass over a 140 KB
    Receive with a regular expression or a multi-byte search took ~100 us."""
    if not data.startswith(b"<") or b"&" in data or b"!" in data or b"?" in data:  # one memchr each
        return None
    root_end = data.find(b">")
    known: Any = _ROOTS.get(data[:root_end])  # every reply of one WinRM version starts with the same tag
    if known is None:
        known = _root_prefixes(data[:root_end]) if root_end <= _MAX_MARKUP else False
        if len(_ROOTS) < 64:
            _ROOTS[data[:root_end]] = known
    if known is False:
        return None
    bound, prefixes = known
    streams: list[tuple[str, bytes]] = []
    rsp = prefixes.get("rsp")
    first = last = -1
    if rsp is not None:
        start, close = b"<" + rsp + b":Stream", b"</" + rsp + b":Stream>"
        heads: dict[bytes, str] = {}
        i = data.find(start, root_end)
        first = i
        while i >= 0:
            gt = data.find(b">", i, i + _MAX_HEAD)
            if gt < 0:
                return None
            head = data[i + len(start):gt]
            name = heads.get(head)
            if name is None:
                if (head and head[:1] not in _WS and head != b"/") or b"<" in head or b"xmlns" in head \
                        or b"\t" in head or b"\r" in head or b"\n" in head:
                    return None  # another element whose name starts with "Stream", a declaration, a broken tag
                if _ATTR.sub(b"", head).strip(b" /"):
                    return None
                fields = _ATTR.findall(head)
                if len({k for k, _ in fields}) != len(fields):
                    return None  # an attribute twice
                name = heads[head] = dict(fields).get(b"Name", b"").decode("utf-8", "replace")
            if head.endswith(b"/"):
                last = gt + 1
            else:
                lt = data.find(b"<", gt)  # a memchr: the text is base64
                if lt < 0 or data[lt:lt + len(close)] != close:
                    return None
                if lt > gt + 1:
                    streams.append((name, data[gt + 1:lt]))
                last = lt + len(close)
            i = last if data.startswith(start, last) else -1  # the streams come one after another
    rest = data[root_end:first] + data[last:] if first >= 0 else data[root_end:]  # the markup around the streams
    if len(rest) > _MAX_MARKUP or b"xmlns=" in rest or (rsp is not None and start in rest):
        return None
    if b"xmlns" in rest:  # a nested declaration may only repeat one of the root's (the Create reply's rsp:Shell)
        decls = _DECL.findall(rest)
        if len(decls) != rest.count(b"xmlns") or any(bound.get(p[1:]) != u for p, u in decls):
            return None
    a, env = prefixes.get("a"), prefixes.get("s")
    if a is None or env is None or not rest.rstrip().endswith(b"</" + env + b":Envelope>"):
        return None  # cut short, or not a SOAP envelope
    if any(p not in bound for p in set(_PREFIX_USE.findall(rest))):
        return None  # a prefix nobody declared: not well-formed (ElementTree's error)
    header_end = rest.find(b"</" + env + b":Header>")
    relates = _one_text(rest, a + b":RelatesTo", header_end)
    if relates is None:
        return None
    selectors = None
    w, x = prefixes.get("w"), prefixes.get("x")
    if b":ResourceCreated>" in rest:
        selectors = _selectors(rest, w, x)
        if selectors is None:
            return None
    command_id = None
    if rsp is not None and b":CommandResponse>" in rest:
        command_id = _one_text(rest, rsp + b":CommandId")
        if command_id is None:
            return None
    return Reply(relates, streams, selectors, command_id)


@functools.lru_cache(maxsize=8)
def _selector_re(w: bytes) -> Any:
    e = re.escape(w)
    return re.compile(rb'<%s:Selector Name="([^"<&\t\r\n]*)">([^<&\r]*)</%s:Selector>' % (e, e))


def _selectors(rest: bytes, w: Optional[bytes], x: Optional[bytes]) -> Optional[list[tuple[str, str]]]:
    """The selectors of the one ``x:ResourceCreated/.../w:SelectorSet`` (None: anything else)."""
    if w is None or x is None:
        return None
    created = rest.find(b"<" + x + b":ResourceCreated>")
    if created < 0 or rest.find(b"<" + x + b":ResourceCreated>", created + 1) >= 0:
        return None
    end = rest.find(b"</" + x + b":ResourceCreated>", created)
    open_, close = b"<" + w + b":SelectorSet>", b"</" + w + b":SelectorSet>"
    i = rest.find(open_, created, end)
    j = rest.find(close, i, end)
    if end < 0 or i < 0 or j < 0 or rest.find(open_, i + 1, end) >= 0:
        return None
    body = rest[i + len(open_):j]
    selector = _selector_re(w)
    got = selector.findall(body)
    if selector.sub(b"", body).strip(_WS):
        return None
    try:
        return [(n.decode("utf-8"), t.decode("utf-8")) for n, t in got]
    except UnicodeDecodeError:
        return None


_ROOTS: dict[bytes, Any] = {}


def _root_prefixes(root: bytes) -> Any:
    """(prefix -> namespace, port80's name -> prefix) of a reply's root start tag; False when a prefix
    is bound twice, a default namespace is declared, a declaration is written another way (single quotes),
    or two prefixes name one of port80's namespaces."""
    bound: dict[bytes, bytes] = {}
    decls = _DECL.findall(root)
    if len(decls) != root.count(b"xmlns"):
        return False
    for prefix, uri in decls:
        if not prefix or bound.setdefault(prefix[1:], uri) != uri:
            return False
    prefixes: dict[str, bytes] = {}
    for prefix, uri in bound.items():
        name = _WANTED.get(uri.decode("utf-8", "replace"))
        if name is not None:
            if name in prefixes:
                return False
            prefixes[name] = prefix
    return bound, prefixes


def _one_text(data: bytes, name: bytes, before: int = -1) -> Optional[str]:
    """The text of the one ``<name>text</name>`` in ``data`` (before offset ``before`` when given); None:
    none, several, markup or a CR inside, or not UTF-8."""
    tag = b"<" + name + b">"
    i = data.find(tag)
    if i < 0 or data.find(tag, i + 1) >= 0 or (before >= 0 and i > before):
        return None
    j = data.find(b"<", i + len(tag))
    if data[j:j + len(tag) + 1] != b"</" + tag[1:] or b"\r" in data[i:j]:
        return None
    try:
        return data[i + len(tag):j].decode("utf-8")
    except UnicodeDecodeError:
        return None


class Pipeline:
    """What one pipeline gave: its output objects, error records (pypsrp's), and whether it failed."""

    __slots__ = ("output", "errors", "had_errors", "state")

    def __init__(self) -> None:
        self.output: list[Any] = []
        self.errors: list[Any] = []
        self.had_errors = False
        self.state = _RUNNING


class Session:
    """One host's pool over ``wsman`` (a ``Port80WSMan``): ``open()``, ``run(xml)`` per pipeline, ``close()``.
    Use as a context manager: the pool is closed (Delete) on the way out once it was opened, as pypsrp's
    ``with RunspacePool(...)`` does."""

    def __init__(self, wsman: Any, configuration_name: str = "Microsoft.PowerShell") -> None:
        uri = "http://schemas.microsoft.com/powershell/" + configuration_name
        if not wsman._port80_textual(WSManAction.CREATE, uri):
            raise Unsupported("namespace prefixes or fields pypsrp's header writer would write differently")
        self.wsman, self.transport, self.uri = wsman, wsman.transport, uri
        self.id = tp.new_message_id()  # the pool's id, which is also the shell's (pypsrp: uuid4, upper case)
        self.rpid = uuid.UUID(self.id).bytes_le
        self.serializer = tp.FastSerializer()
        self.protocol_version: Optional[str] = None
        self.opened = False
        self.closed = False
        self.state = 0  # pypsrp's RunspacePoolState: BEFORE_OPEN
        self._counter = 1  # the next outgoing message's object id
        self._incoming: dict[int, dict] = {}  # pypsrp's incoming_buffer: object id -> data so far, next id
        self._selectors = ""
        esc, att = tp._escape_text, tp._escape_attrib
        must, may = ' s:mustUnderstand="true"', ' s:mustUnderstand="false"'
        # _port80_header's text, in two pieces around Action / MessageID+OperationTimeout
        self._h1 = ('<wsmv:DataLocale%s xml:lang="%s" /><wsman:Locale%s xml:lang="%s" />'
                    "<wsman:MaxEnvelopeSize%s>%s</wsman:MaxEnvelopeSize>"
                    % (may, att(wsman.data_locale), may, att(wsman.locale), must, esc(str(wsman.max_envelope_size))))
        self._h2 = ('<wsa:ReplyTo><wsa:Address%s>%s</wsa:Address></wsa:ReplyTo><wsman:ResourceURI%s>%s'
                    '</wsman:ResourceURI><wsmv:SessionId%s>uuid:%s</wsmv:SessionId>%s'
                    % (must, tp._ANONYMOUS, must, esc(uri), may, esc(str(wsman.session_id).upper()),
                       tp._element("wsa:To", wsman.transport.endpoint)))
        self._op = "PT%sS" % str(wsman.operation_timeout)

    # ---- requests

    def _envelope(self, action: str, options: str, selectors: str, body: str, rsp: bool) -> tuple[str, bytes]:
        message_id = tp.new_message_id()
        text = ('<s:Envelope%s><s:Header><wsa:Action s:mustUnderstand="true">%s</wsa:Action>%s'
                "<wsa:MessageID>uuid:%s</wsa:MessageID><wsman:OperationTimeout>%s</wsman:OperationTimeout>%s%s%s"
                "</s:Header>%s</s:Envelope>"
                % (_DECLARATIONS_RSP if rsp else _DECLARATIONS, action, self._h1, message_id, self._op, self._h2,
                   options, selectors, body))
        return message_id, text.encode("utf-8", "xmlcharrefreplace")

    def _invoke(self, action: str, options: str, body: str, rsp: bool = True, retries: int = 0) -> "Reply":
        """Send one request; what port80 reads of the reply (``Port80WSMan.invoke``'s checks)."""
        message_id, envelope = self._envelope(action, options, self._selectors, body, rsp)
        try:
            response = self.transport.send(envelope, retries_on_read_timeout=retries, timeout=None)
        except WinRMTransportError as err:
            try:
                raise self.wsman._parse_wsman_fault(err.response_text)
            except ET.ParseError:
                raise err from None
        reply = scan_reply(response) or tree_reply(response)
        if reply.relates_to != "uuid:" + message_id:
            raise WinRMError("Received related id does not match related expected message id: Sent: uuid:%s, "
                             "Received: %s" % (message_id, reply.relates_to))
        return reply

    def _receive(self, command_id: Optional[str]) -> bytes:
        stream = ('<rsp:DesiredStream CommandId="%s">stdout</rsp:DesiredStream>' % tp._escape_attrib(command_id)
                  if command_id is not None else "<rsp:DesiredStream>stdout</rsp:DesiredStream>")
        reply = self._invoke(WSManAction.RECEIVE, _KEEPALIVE, "<s:Body><rsp:Receive>%s</rsp:Receive></s:Body>" % stream,
                             retries=5)
        return b"".join(binascii.a2b_base64(text) for name, text in reply.streams if name == "stdout" and text)

    def _fragments(self, msgs: list[tuple[int, bytes, bytes]]) -> bytes:
        """The first request's worth of fragments of ``msgs`` (type, pid, xml), as pypsrp's
        ``fragment_multiple`` packs them (an error if they do not fit in one)."""
        room = self.wsman.max_payload_size - 21
        out = []
        for mtype, pid, xml in msgs:
            data = _HEADER.pack(_TO_SERVER, mtype) + self.rpid + pid + xml
            if len(data) > room:  # port80's pipelines are ~48 KB against ~380 KB of room
                raise InvalidPSRPOperation("a PSRP message of %d bytes does not fit one request (%d)" % (len(data), room))
            out.append(_FRAGMENT.pack(self._counter, 0, 3, len(data)) + data)
            self._counter += 1
            room -= 21 + len(data)
        return b"".join(out)

    # ---- pool

    def open(self) -> None:
        """Create the shell with the pool's opening messages, then Receive until the pool's state comes
        (Windows answers in two Receives); the OperationTimeout fault is asked again until the
        transport's read timeout has passed (remote/remoting/collect.py ``_retry_open_timeouts``)."""
        capability, init = _open_messages()
        zero = bytes(16)
        blob = self._fragments([(MessageType.SESSION_CAPABILITY, zero, capability),
                                (MessageType.INIT_RUNSPACEPOOL, zero, init)])
        body = ('<s:Body><rsp:Shell ShellId="%s"><rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>'
                'stdout</rsp:OutputStreams><creationXml xmlns="http://schemas.microsoft.com/powershell">%s'
                "</creationXml></rsp:Shell></s:Body>" % (self.id, binascii.b2a_base64(blob, newline=False).decode()))
        reply = self._invoke(WSManAction.CREATE, _PROTOCOL, body)
        if reply.selectors:
            self._selectors = "<wsman:SelectorSet>%s</wsman:SelectorSet>" % "".join(
                tp._element("wsman:Selector", text, ' Name="%s"' % tp._escape_attrib(name))
                for name, text in reply.selectors)
        elif reply.selectors is not None:
            self._selectors = "<wsman:SelectorSet />"  # as pypsrp writes an empty SelectorSet
        self.opened = True
        self.state = _POOL_NEGOTIATING
        budget = float(getattr(self.transport, "read_timeout", None) or 30)
        while self.state == _POOL_NEGOTIATING:
            started = time.monotonic()  # per Receive, as _retry_open_timeouts times each
            while True:
                try:
                    data = self._receive(None)
                    break
                except Exception as e:
                    if getattr(e, "code", None) != OPERATION_TIMEOUT_FAULT or time.monotonic() - started >= budget:
                        raise
                    log.debug("pool Receive: OperationTimeout, asking again")
            for mtype, msg in self._messages(data):
                if mtype == MessageType.SESSION_CAPABILITY:
                    m = _PROTOCOL_RE.search(msg)
                    self.protocol_version = m.group(1).decode() if m else getattr(
                        Message.unpack(msg, self.serializer).data, "protocol_version", None)
                elif mtype == MessageType.RUNSPACEPOOL_STATE:
                    self._pool_state(mtype, msg)

    def _pool_state(self, mtype: int, msg: bytes) -> None:
        """pypsrp's ``_process_runspacepool_state``: a broken pool is an error (and is not closed again)."""
        st = self._shared(mtype, msg)
        self.state = st.state
        if self.state == _POOL_BROKEN:
            self.closed = True  # pypsrp's close() sends nothing to a broken pool
            raise InvalidPSRPOperation("Received a broken RunspacePoolState message: %s" % str(st.error_record))

    def close(self) -> None:
        if self.opened and not self.closed:
            self.closed = True
            self._invoke(WSManAction.DELETE, "", "<s:Body />", rsp=False)

    def __enter__(self) -> "Session":
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- pipelines

    def run(self, xml: bytes, result: Optional[Pipeline] = None) -> Pipeline:
        """Run the pipeline whose CREATE_PIPELINE XML is ``xml`` until it ends. ``result`` collects the
        output as it comes (an ``OutputCapExceeded`` from the transport leaves what came before it)."""
        out = result if result is not None else Pipeline()
        pid = tp.new_message_id()
        blob = self._fragments([(MessageType.CREATE_PIPELINE, uuid.UUID(pid).bytes_le, xml)])
        body = ('<s:Body><rsp:CommandLine CommandId="%s"><rsp:Command /><rsp:Arguments>%s</rsp:Arguments>'
                "</rsp:CommandLine></s:Body>" % (pid, binascii.b2a_base64(blob, newline=False).decode()))
        command_id = self._invoke(WSManAction.COMMAND, _SKIP_CMD, body).command_id
        while out.state == _RUNNING:
            try:
                data = self._receive(command_id)
            except Exception as e:
                if getattr(e, "code", None) == OPERATION_TIMEOUT_FAULT:
                    continue
                raise
            self.pipeline_messages(data, out)
        return out

    def pipeline_messages(self, data: bytes, out: Pipeline) -> None:
        """Take one Receive's worth of a pipeline's stream into ``out``, as pypsrp's ``_parse_responses``
        does for a pipeline: output, error records, its state (and a broken pool: pypsrp's error)."""
        for mtype, msg in self._messages(data):
            if mtype == MessageType.PIPELINE_OUTPUT:
                out.output.append(self._output(msg))
            elif mtype == MessageType.PIPELINE_STATE:
                st = self._shared(mtype, msg)
                out.state = st.state
                if st.error_record is not None:
                    out.errors.append(st.error_record)
                if out.state == _FAILED:
                    out.had_errors = True
            elif mtype == MessageType.ERROR_RECORD:
                out.errors.append(Message.unpack(msg, self.serializer).data)
            elif mtype == MessageType.RUNSPACEPOOL_STATE:
                self._pool_state(mtype, msg)

    # ---- messages in

    def _messages(self, data: bytes) -> list[tuple[int, bytes]]:
        """The whole messages in ``data`` (fragments, MS-PSRP 2.2.4), as (type, message bytes)."""
        done = []
        for msg in tp.whole_messages(data, self._incoming):
            if len(msg) < 40:  # pypsrp's Message.unpack fails on it too
                raise FragmentError("a PSRP message of %d bytes, shorter than its 40-byte header" % len(msg))
            done.append((_HEADER.unpack_from(msg, 0)[1], msg))
        return done

    def _output(self, msg: bytes) -> Any:
        return tp.output_object(msg, self.serializer)

    def _shared(self, mtype: int, msg: bytes) -> Any:
        return tp.shared_data(mtype, msg, self.serializer)


__all__ = ["Pipeline", "Session", "Unsupported", "pipeline_xml"]
