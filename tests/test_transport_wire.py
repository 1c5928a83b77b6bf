"""remote/remoting/transport.py's CPU cuts on the wire path give exactly what pypsrp gives: the SOAP
envelopes (``xml_bytes``, ``Port80WSMan``) byte for byte, and the PSRP messages (``Port80Fragmenter``)
field for field, on real Windows responses (tests/fixtures/recordings) and on the lab's."""

from __future__ import annotations

import base64
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypsrp.exceptions import FragmentError
from pypsrp.powershell import Fragment, Fragmenter, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.shell import WinRS
from pypsrp.wsman import NAMESPACES, OptionSet, SelectorSet, WSMan

from remote.remoting import transport
from outcome import outcome
from remote.remoting.transport import FastSerializer, Port80Fragmenter, Port80WSMan, tune_pool, xml_bytes

RECORDINGS = Path(__file__).parent / "fixtures" / "recordings"
NS = {"rsp": NAMESPACES["rsp"], "s": NAMESPACES["s"]}


# ------------------------------------------------------------------------------------------ xml_bytes

def _tostring(el):  # ElementTree's failures must be xml_bytes' failures
    return outcome(ET.tostring, el, encoding="utf-8", method="xml")


def _xml_bytes(el):
    return outcome(xml_bytes, el)


def _odd_trees():
    rsp, s = NAMESPACES["rsp"], NAMESPACES["s"]
    trees = []
    e = ET.Element("{%s}Envelope" % s)
    ET.SubElement(e, "{%s}Body" % s)
    trees.append(e)
    e = ET.Element("creationXml", xmlns="http://schemas.microsoft.com/powershell")
    e.text = "QUJD"
    trees.append(e)
    e = ET.Element("{%s}Receive" % rsp, {"{http://www.w3.org/XML/1998/namespace}lang": "en-US"})
    d = ET.SubElement(e, "{%s}DesiredStream" % rsp, CommandId='a&b<c>"d\r\n\te')
    d.text = "stdout & <err>"
    d.tail = "tail & <t>"
    ET.SubElement(e, "{%s}Stream" % rsp).text = ""  # empty text: ElementTree writes <x />
    trees.append(e)
    trees.append(ET.Element("{urn:not-registered}x"))  # ElementTree invents ns0
    e = ET.Element("{%s}Shell" % rsp)
    e.append(ET.Comment("a comment"))
    trees.append(e)
    e = ET.Element("{%s}Shell" % rsp)
    e.text = "caf\u00e9 \ud800 lone surrogate"  # UTF-8 cannot encode it: a character reference
    trees.append(e)
    e = ET.Element("{%s}Shell" % rsp, Name=ET.QName("{%s}Name" % s))
    trees.append(e)
    e = ET.Element("{%s}Shell" % rsp)
    e.text = 5  # type: ignore[assignment]  # not a string: ElementTree's error
    trees.append(e)
    e = ET.Element("{%s}Shell" % rsp, Name=7)  # type: ignore[arg-type]
    trees.append(e)
    e = ET.Element("{%s}Shell" % rsp)
    e.tail = "root tail"
    trees.append(e)
    e = ET.Element("plain", {"{%s}mustUnderstand" % s: "true", "b": "2", "a": "1"})
    ET.SubElement(ET.SubElement(e, "{%s}Body" % s), "{%s}Send" % rsp)
    trees.append(e)
    return trees


def test_xml_bytes_is_elementtrees_bytes_on_odd_trees():
    for tree in _odd_trees():
        assert _xml_bytes(tree) == _tostring(tree), ET.tostring(tree, encoding="unicode") if _tostring(tree)[0] == "ok" else tree


_TAGS = [f"{{{NAMESPACES[p]}}}{n}" for p in ("s", "wsa", "wsman", "rsp", "wsmv") for n in ("A", "Body")] + [
    "plain", "{urn:unregistered}u", "{http://www.w3.org/XML/1998/namespace}lang"]
_TEXT = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("ab &<>\"'\r\n\t_x\u00e9\u3000")), max_size=8))


@st.composite
def _trees(draw, depth=0):
    el = ET.Element(draw(st.sampled_from(_TAGS)))
    for k in draw(st.lists(st.sampled_from(_TAGS + ["Name", "CommandId"]), max_size=3, unique=True)):
        el.set(k, draw(st.text(alphabet=st.sampled_from(list("ab &<>\"\r\n\t")), max_size=6)))
    el.text = draw(_TEXT)
    el.tail = draw(_TEXT) if depth else None
    if depth < 3:
        for child in draw(st.lists(_trees(depth=depth + 1), max_size=3)):
            el.append(child)
    return el


@settings(max_examples=300, deadline=None)
@given(_trees())
def test_xml_bytes_is_elementtrees_bytes(tree):
    assert _xml_bytes(tree) == _tostring(tree)


# ------------------------------------------------------------------------------------------ envelopes

class _Sent(Exception):
    pass


def _record(wsman):
    sent = []

    def send(message, retries_on_read_timeout=0, timeout=None):
        sent.append((message, retries_on_read_timeout, timeout))
        raise _Sent()

    wsman.transport.send = send
    return sent


def _pair(monkeypatch, **kw):
    """pypsrp's WSMan and port80's, with the same settings and the same ids."""
    ids = iter(uuid.UUID(int=i) for i in range(1, 10000))
    monkeypatch.setattr("pypsrp.wsman.uuid.uuid4", lambda: next(ids))
    args = dict(server="host.example", username="u", password="p", ssl=True, auth="basic", cert_validation=False)
    args.update(kw)
    ours = Port80WSMan(**args)
    ref = WSMan(**args)
    ref.session_id = ours.session_id
    return ref, ours


def _calls(w) -> list:
    """Every kind of request port80 and pypsrp send, on WSMan ``w``."""
    shell = WinRS(w, resource_uri="http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
                  id="11111111-2222-3333-4444-555555555555", input_streams="stdin pr", output_streams="stdout")
    opts = OptionSet()
    opts.add_option("protocolversion", "2.3", {"MustComply": "true"})
    content = ET.Element("creationXml", xmlns="http://schemas.microsoft.com/powershell")
    content.text = base64.b64encode(b"\x00\x01 fragment").decode()
    return [lambda: shell.open(opts, content),
            lambda: shell.receive("stdout", command_id="C0FFEE00-0000-0000-0000-000000000000", timeout=7),
            lambda: shell.receive("stdout"),
            lambda: shell.command("", arguments=["QUJD"], command_id="C0FFEE00-0000-0000-0000-00000000000A"),
            lambda: shell.send("stdin", b"input & <data>", command_id="C0FFEE00", end=True),
            lambda: shell.signal("powershell/signal/crtl_c", "C0FFEE00"),
            lambda: w.delete("http://schemas.microsoft.com/powershell/Microsoft.PowerShell", selector_set=_selectors()),
            lambda: w.get("http://schemas.microsoft.com/wbem/wsman/1/config")]


@pytest.mark.parametrize("kw", [dict(), dict(locale="de-DE", data_locale="fr-FR&<\"x\">", operation_timeout=99,
                                          path="a&b<c>", port=1234, max_envelope_size=512000),
                                dict(ssl=False, auth="negotiate", server="WIN-01.example.com", encryption="never")])
def test_port80_wsman_sends_pypsrps_envelopes(monkeypatch, kw):
    ref, ours = _pair(monkeypatch, **kw)
    assert ours.max_payload_size == ref.max_payload_size and type(ours.transport) is transport.Port80Transport
    got = _envelopes(monkeypatch, ref, ours)
    assert len(got["ours"]) == 8 and got["ours"] == got["ref"]


def _envelopes(monkeypatch, ref, ours) -> dict:
    """What pypsrp's WSMan (``ref``) and port80's (``ours``) send for the same calls, with the same ids."""
    got = {}
    for name, w in (("ref", ref), ("ours", ours)):
        sent = _record(w)
        ids = iter(uuid.UUID(int=i) for i in range(1, 10000))
        monkeypatch.setattr("pypsrp.wsman.uuid.uuid4", lambda ids=ids: next(ids))
        for call in _calls(w):
            with pytest.raises(_Sent):
                call()
        got[name] = sent
    return got


def test_envelopes_with_other_namespace_prefixes_are_pypsrps(monkeypatch):
    """Another library re-registered a prefix pypsrp uses: pypsrp's tree (and xml_bytes) write it."""
    ref, ours = _pair(monkeypatch)
    original = ET.register_namespace
    try:
        original("soap", NAMESPACES["s"])
        got = _envelopes(monkeypatch, ref, ours)
        assert b"<soap:Envelope" in got["ours"][0][0] and got["ours"] == got["ref"]
    finally:
        original("s", NAMESPACES["s"])


def _selectors():
    sel = SelectorSet()
    sel.add_option("ShellId", "11111111-2222-3333-4444-555555555555")
    return sel


@pytest.mark.parametrize("kw", [dict(), dict(max_envelope_size=512000), dict(locale="de-DE", data_locale="fr-FR"),
                                dict(operation_timeout=120, path="custom/path&x", port=15986),
                                dict(server="a-much-longer-host-name.example.com"), dict(server="h\u00e9&<x>"),
                                dict(server="10.0.0.1", port=5986), dict(server="::1", ssl=False, encryption="never",
                                                                         auth="negotiate")])
def test_envelope_size_is_pypsrps(monkeypatch, kw):
    for _ in range(2):  # the second time from port80's cache (one size per key, the endpoint's length in it)
        ref, ours = _pair(monkeypatch, **kw)
        assert ours.max_payload_size == ref.max_payload_size
        ours.update_max_payload_size(256000)
        ref.update_max_payload_size(256000)
        assert ours.max_payload_size == ref.max_payload_size


def test_message_ids_are_random_version_4_uuids():
    ids = {transport.new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    for i in ids:
        u = uuid.UUID(i)
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u).upper() == i


def test_wsman_faults_and_related_ids_are_pypsrps(monkeypatch):
    from pypsrp.exceptions import WinRMError, WinRMTransportError, WSManFaultError

    fault = _response(RECORDINGS / "real-fault-operation-timeout-receive.xml")
    outcomes = {}
    for name, w in zip(("ref", "ours"), _pair(monkeypatch)):
        row = []
        for reply in (WinRMTransportError("http", 500, fault), WinRMTransportError("http", 500, "not xml"),
                      b"<s:Envelope xmlns:s='%s'><s:Header/></s:Envelope>" % NAMESPACES["s"].encode()):
            def send(message, retries_on_read_timeout=0, timeout=None, reply=reply):
                if isinstance(reply, Exception):
                    raise reply
                return reply

            w.transport.send = send
            try:
                w.delete("http://schemas.microsoft.com/powershell/Microsoft.PowerShell", selector_set=_selectors())
                row.append("ok")
            except (WSManFaultError, WinRMTransportError, WinRMError) as e:
                row.append((type(e).__name__, str(e).replace(str(w.session_id).upper(), "SID")))
        outcomes[name] = row
    assert outcomes["ours"][0][0] == "WSManFaultError" and outcomes["ours"][1][0] == "WinRMTransportError"
    assert outcomes["ours"][2][0] == "WinRMError"
    assert [o[0] for o in outcomes["ours"]] == [o[0] for o in outcomes["ref"]]
    assert outcomes["ours"][:2] == outcomes["ref"][:2]


# ------------------------------------------------------------------------------------------ messages in

def _response(path: Path) -> str:
    """The recorded response envelope of a recordings file (some hold the request first)."""
    text = path.read_text(encoding="utf-8")
    return text[text.index("<!-- response -->") + len("<!-- response -->"):].strip()


def _streams(path: Path) -> list[bytes]:
    root = ET.fromstring(_response(path))
    return [base64.b64decode(s.text) for s in root.iter("{%s}Stream" % NS["rsp"]) if s.text]


def _canon(x, seen=frozenset()):
    """A structural copy of a pypsrp message for comparison (object graphs, not addresses)."""
    if isinstance(x, (str, int, float, bool, type(None), bytes, uuid.UUID)):
        return x
    if id(x) in seen:
        return "<cycle>"
    seen = seen | {id(x)}
    if isinstance(x, dict):
        return {_canon(k, seen): _canon(v, seen) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x).__name__, [_canon(v, seen) for v in x]
    d = getattr(x, "__dict__", None)
    if d is None:
        return type(x).__name__, repr(x)
    return type(x).__name__, {k: _canon(v, seen) for k, v in d.items() if k != "_serializer"}


def _messages(cls, responses: list[bytes], serializer=FastSerializer) -> list:
    frag = Fragmenter(512000, serializer())
    frag.__class__ = cls
    out = []
    for r in responses:
        out.extend(frag.defragment(r))
    return [_canon(m) for m in out]


@pytest.mark.parametrize("name", sorted(p.name for p in RECORDINGS.glob("*.xml") if _streams(p)))
def test_port80_fragmenter_gives_pypsrps_messages_on_real_windows_responses(name):
    responses = _streams(RECORDINGS / name)
    ours = _messages(Port80Fragmenter, responses)
    assert ours and ours == _messages(Fragmenter, responses)
    assert ours == _messages(Port80Fragmenter, responses)  # again, decoded from the shared ones this time
    assert _messages(Fragmenter, responses, Serializer) == _messages(Fragmenter, responses)


def _fragments(payloads: list[bytes], size: int) -> bytes:
    """Fragments of ``size`` bytes at most, as a server sends them (one object id per message)."""
    out = b""
    for oid, data in enumerate(payloads, 1):
        chunks = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        for fid, chunk in enumerate(chunks):
            out += Fragment(oid, fid, chunk, start=fid == 0, end=fid == len(chunks) - 1).pack()
    return out


def _output_message(text: str, pid: bytes) -> bytes:
    import struct

    xml = "<S>" + text.replace("&", "&amp;").replace("<", "&lt;").replace("\r", "_x000D_").replace(
        "\n", "_x000A_") + "</S>"
    return struct.pack("<II", 1, 0x41004) + b"\x11" * 16 + pid + b"\xef\xbb\xbf" + xml.encode("utf-8")


def test_port80_fragmenter_on_multi_fragment_messages_split_across_responses():
    big = "line & <more>\n" * 5000 + "caf\u00e9 \u3000"
    payloads = [_output_message(t, b"\x22" * 16) for t in ("marker", big, "", "tail\r\n")]
    wire = _fragments(payloads, 1000)
    responses = [wire[:7000], wire[7000:7001], wire[7001:50000], wire[50000:]]
    responses = [r for r in responses if r]
    # responses cut at fragment boundaries, as Receives are
    cuts, pos, data = [], 0, wire
    while pos < len(data):
        length = int.from_bytes(data[pos + 17:pos + 21], "big")
        cuts.append(data[pos:pos + 21 + length])
        pos += 21 + length
    responses = [b"".join(cuts[i:i + 7]) for i in range(0, len(cuts), 7)]
    ours = _messages(Port80Fragmenter, responses)
    assert len(ours) == 4 and ours == _messages(Fragmenter, responses)


def test_port80_fragmenter_raises_pypsrps_error_on_a_fragment_out_of_order():
    bad = Fragment(1, 0, b"x" * 10, start=True, end=False).pack() + Fragment(1, 2, b"y", end=True).pack()
    for cls in (Fragmenter, Port80Fragmenter):
        frag = Fragmenter(512000, FastSerializer())
        frag.__class__ = cls
        with pytest.raises(FragmentError, match="Fragment Fragment Id: 2 != Expected Fragment Id: 1"):
            frag.defragment(bad)


def test_tune_pool_gives_the_port80_fragmenter():
    class _Conn:  # RunspacePool only reads these from its WSMan at construction
        max_payload_size = 153600

    pool = RunspacePool(_Conn())
    tune_pool(pool)
    assert type(pool._fragmenter) is Port80Fragmenter and pool._fragmenter.serializer is pool._serializer


def _decoded_twice(name: str) -> list[tuple]:
    """(message type, first decode, second decode) of a recording's messages, decoded by two hosts' fragmenters."""
    out = []
    for _ in range(2):
        frag = Fragmenter(512000, FastSerializer())
        frag.__class__ = Port80Fragmenter
        out.append([m for r in _streams(RECORDINGS / name) for m in frag.defragment(r)])
    return [(a.message_type, a.data, b.data) for a, b in zip(*out)]


def test_state_and_progress_messages_are_decoded_once_and_error_records_per_host():
    from pypsrp.messages import MessageType

    opened = _decoded_twice("real-open-receive2.xml") + _decoded_twice("real-pipeline-all-streams.xml")
    shared = [t for t, a, b in opened if a is b]
    assert MessageType.RUNSPACEPOOL_STATE in shared and MessageType.PIPELINE_STATE in shared
    assert MessageType.PROGRESS_RECORD in shared
    assert all(t in transport._SHARED_TYPES or t == MessageType.APPLICATION_PRIVATE_DATA for t in shared)
    failed = [(a, b) for t, a, b in _decoded_twice("real-pipeline-error-record-jea.xml")
              if t == MessageType.PIPELINE_STATE]
    assert failed and all(a.error_record is not None and a is not b for a, b in failed)


# ------------------------------------------------------------------------------------------ environment

@pytest.mark.parametrize("cert_validation", [True, False, "/etc/custom-ca.pem"])
@pytest.mark.parametrize("env", [{}, {"REQUESTS_CA_BUNDLE": "/corp/ca.pem"}, {"CURL_CA_BUNDLE": "/curl/ca.pem"},
                                 {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": "/curl/ca.pem"},
                                 {"REQUESTS_CA_BUNDLE": "/corp/ca.pem", "CURL_CA_BUNDLE": "/curl/ca.pem"}])
def test_certificate_validation_from_the_environment_is_pypsrps(monkeypatch, cert_validation, env):
    """port80's connection takes the CA bundle pypsrp's requests session would (without building one)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    w = Port80WSMan("127.0.0.1", username="u", password="p", ssl=True, auth="basic",
                    cert_validation=cert_validation, no_proxy=True)
    assert w.transport._port80_verify() == w.transport._build_session().verify


@pytest.mark.parametrize("auth", ["ntlm", "negotiate", "kerberos"])
def test_negotiate_auth_settings_are_pypsrps(auth):
    w = Port80WSMan("127.0.0.1", username="u@LAB.TEST", password="p", ssl=False, auth=auth, no_proxy=True,
                    negotiate_delegate=True, negotiate_hostname_override="web-01.lab.test", negotiate_service="HTTP",
                    negotiate_send_cbt=False)
    ours, ref = w.transport._port80_auth(), w.transport._build_session().auth
    assert type(ours) is type(ref) and vars(ours) == vars(ref)
    assert w.transport.session is None  # nothing built for port80's own path


@pytest.mark.lab(hosts=1)
def test_the_ca_bundle_from_the_environment_is_read_per_host_and_proxies_are_not_used(lab, monkeypatch):
    """A lab host with validation on and no CA named: its CA from REQUESTS_CA_BUNDLE, read when each host
    connects (set it, unset it). Proxy variables change nothing: port80 connects directly (``no_proxy``, as
    pypsrp does with it)."""
    import requests

    from remote.remoting.collect import ConnectionSpec, collect
    from remote.runner.failures import classify

    h = lab.hosts[0]
    spec = ConnectionSpec(name=h.name, address=h.address, port=h.port, scheme="https", auth="basic", user=lab.user,
                          cert_validation=True)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(lab.ca_path))
    got = collect(spec, lab.password)
    assert got.texts.get("netstat") and not got.command_errors
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    with pytest.raises(requests.exceptions.SSLError) as e:  # requests' own bundle does not know the lab's CA
        collect(spec, lab.password)
    assert classify(e.value)[0] == "tls"


# ------------------------------------------------------------------------------------------ pool open

def _open_messages(**pool_kw) -> list[bytes]:
    """The fragments a pool's open sends (SESSION_CAPABILITY + INIT_RUNSPACEPOOL), pypsrp-serialized or tuned."""
    from pypsrp.complex_objects import ApartmentState, HostInfo, PSThreadOptions
    from pypsrp.messages import InitRunspacePool, SessionCapability

    class _Conn:
        max_payload_size = 153600

    out = []
    for tuned in (False, True):
        pool = RunspacePool(_Conn(), **pool_kw)
        if tuned:
            tune_pool(pool)
        pool.id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
        msgs = [SessionCapability("2.3", "2.0", "1.1.0.1"),
                InitRunspacePool(pool.min_runspaces, pool.max_runspaces, PSThreadOptions(value=pool.thread_options),
                                 ApartmentState(value=pool.apartment_state), HostInfo(host=pool.host), None)]
        out.append(b"".join(pool._fragmenter.fragment_multiple(msgs, pool.id)))
    return out


@pytest.mark.parametrize("pool_kw", [{}, {"min_runspaces": 2, "max_runspaces": 5}, {"apartment_state": 0},
                                     {"thread_options": 2}, {"min_runspaces": 1, "max_runspaces": 1,
                                                             "apartment_state": 1, "thread_options": 3}])
def test_pool_open_messages_are_pypsrps_bytes(pool_kw):
    ref, ours = _open_messages(**pool_kw)
    assert ours == ref
    ref2, ours2 = _open_messages(**pool_kw)  # the second time from the memo
    assert ours2 == ref2 == ref


def test_pool_open_with_a_host_is_serialized_by_pypsrp():
    from pypsrp.host import PSHost

    from pypsrp.complex_objects import HostInfo
    from pypsrp.messages import InitRunspacePool

    host = PSHost(None, None, False, "port80", None, None, "1.0")
    ref, ours = _open_messages(host=host)
    assert ours == ref
    assert transport._open_key(InitRunspacePool(1, 1, None, None, HostInfo(host=host), None)) is None


# ------------------------------------------------------------------------------------------ responses in

_B64_TEXT = base64.b64encode(bytes(range(256)) * 4).decode()
_ENVELOPE = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="%s"><s:Body>'
             '<rsp:ReceiveResponse>%%s</rsp:ReceiveResponse></s:Body></s:Envelope>' % NS["rsp"])
_ODD_BODIES = [
    '<rsp:Stream Name="stdout" CommandId="C">%s</rsp:Stream>' % _B64_TEXT,
    '<rsp:Stream Name="stdout">%s</rsp:Stream><rsp:Stream Name="stdout" End="true">%s</rsp:Stream>'
    '<rsp:CommandState CommandId="C" State="http://x/Done"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>'
    % (_B64_TEXT, _B64_TEXT[:300]),
    '<rsp:Stream Name="stdout">%s&#65;</rsp:Stream>' % _B64_TEXT,  # a character reference after the text
    '<rsp:Stream Name="stdout"><!-- c -->%s</rsp:Stream>' % _B64_TEXT,  # the text is a comment's tail
    '<rsp:Stream Name="stdout"><![CDATA[%s]]></rsp:Stream>' % _B64_TEXT,
    '<rsp:Stream Name="a>%s">x</rsp:Stream>' % _B64_TEXT,  # ">" in an attribute value
    '<other:Stream xmlns:other="urn:other" Name="stdout">%s</other:Stream>' % _B64_TEXT,  # not rsp's Stream
    '<rsp:Stream Name="stdout">#0</rsp:Stream><rsp:Stream Name="stdout">%s</rsp:Stream>' % _B64_TEXT,  # a "placeholder"
    '<rsp:Stream Name="stdout">%s</rsp:Stream><rsp:Stream Name="stdout">#0</rsp:Stream>' % _B64_TEXT,
    '<rsp:Stream Name="stdout">%s\r\n%s</rsp:Stream>' % (_B64_TEXT, _B64_TEXT),  # CR LF (normalized by expat)
    '<rsp:Stream Name="stdout">%s<x/>tail</rsp:Stream>' % _B64_TEXT,  # text then a child
    '<rsp:Stream Name="stdout" />' + 'A' * 400,
    '<rsp:Stream Name="stdout">%s' % _B64_TEXT,  # not well-formed
    '<rsp:Stream Name="stdout">%s</rsp:Stream><rsp:Stream>\x01</rsp:Stream>' % _B64_TEXT,  # a character XML forbids
]


def _same_parse(data: bytes) -> None:
    try:
        ref = ET.tostring(ET.fromstring(data))
    except ET.ParseError as e:
        with pytest.raises(ET.ParseError) as got:
            transport.parse_response(data)
        assert str(got.value) == str(e)
        return
    assert ET.tostring(transport.parse_response(data)) == ref


@pytest.mark.parametrize("name", sorted(p.name for p in RECORDINGS.glob("*.xml")))
def test_parse_response_is_elementtrees_tree_on_real_windows_responses(name):
    _same_parse(_response(RECORDINGS / name).encode("utf-8"))


@pytest.mark.parametrize("body", range(len(_ODD_BODIES)))
def test_parse_response_is_elementtrees_tree_on_odd_responses(body):
    _same_parse((_ENVELOPE % _ODD_BODIES[body]).encode("utf-8"))


def test_parse_response_keeps_long_stream_texts_out_of_the_parser(monkeypatch):
    data = (_ENVELOPE % _ODD_BODIES[1]).encode("utf-8")
    seen = []
    real = ET.fromstring
    monkeypatch.setattr(transport.ET, "fromstring", lambda d: seen.append(len(d)) or real(d))
    assert ET.tostring(transport.parse_response(data)) == ET.tostring(real(data))
    assert seen and seen[0] < len(data) - len(_B64_TEXT) - 200  # the fast path was taken, once


class _Answers:
    """A stand-in for a WSMan that answers every request with the body of one response."""

    def __init__(self, response: bytes) -> None:
        self.body = ET.fromstring(response).find("s:Body", namespaces=NAMESPACES)

    def receive(self, *args, **kwargs):
        return self.body


_CREATED = ('<s:Envelope xmlns:s="%s" xmlns:x="%s" xmlns:a="%s" xmlns:w="%s" xmlns:rsp="%s"><s:Body>'
            '<x:ResourceCreated><a:Address>https://h:5986/wsman</a:Address><a:ReferenceParameters>'
            '<w:ResourceURI>http://schemas.microsoft.com/powershell/Microsoft.PowerShell</w:ResourceURI>'
            '<w:SelectorSet><w:Selector Name="ShellId">9E2A5B1C-0000-4000-8000-000000000001</w:Selector>'
            '<w:Selector Name="Other"/></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>'
            '<rsp:Shell><rsp:ShellId>9E2A5B1C-0000-4000-8000-000000000001</rsp:ShellId><rsp:Name>WinRM1</rsp:Name>'
            '<rsp:ResourceUri>http://schemas.microsoft.com/powershell/Microsoft.PowerShell</rsp:ResourceUri>'
            '<rsp:Owner>LAB\\auditor</rsp:Owner><rsp:ClientIP>127.0.0.1</rsp:ClientIP>'
            '<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin pr</rsp:InputStreams>'
            '<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>'
            '<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell></s:Body></s:Envelope>'
            % (NS["s"], NAMESPACES["wst"], NAMESPACES["wsa"], NAMESPACES["wsman"], NS["rsp"]))


def _receive_responses() -> list[str]:
    out = []
    for p in sorted(RECORDINGS.glob("*.xml")):
        text = p.read_text(encoding="utf-8")
        if "<!-- response -->" in text and ET.fromstring(_response(p)).find(
                "s:Body/rsp:ReceiveResponse", namespaces=NAMESPACES) is not None:
            out.append(p.name)
    return out


@pytest.mark.parametrize("name", _receive_responses())
def test_port80_winrs_receives_as_pypsrp_on_real_windows_responses(name):
    data = _response(RECORDINGS / name).encode("utf-8")
    got = []
    for cls in (WinRS, transport.Port80WinRS):
        shell = WinRS(_Answers(data), id="S")
        shell.__class__ = cls
        got.append([shell.receive("stdout"), shell.receive("stdout stderr", command_id="C", timeout=3)])
    assert got[0] == got[1]


def test_port80_winrs_reads_a_created_shell_as_pypsrp():
    body = ET.fromstring(_CREATED).find("s:Body", namespaces=NAMESPACES)
    shells = []
    for cls in (WinRS, transport.Port80WinRS):
        shell = WinRS(_Answers(_CREATED.encode()))
        shell.__class__ = cls
        shell._parse_shell_create(body)
        shells.append({k: (v.values if isinstance(v, SelectorSet) else v) for k, v in vars(shell).items()
                       if k != "wsman"})
    assert shells[0] == shells[1] and shells[1]["id"] == "9E2A5B1C-0000-4000-8000-000000000001"


def _wsman_sets():
    o = OptionSet()
    o.add_option("protocolversion", "2.3", {"MustComply": "true"})
    o.add_option("x", "a&<b>\"'\u00e9", {})
    o.add_option("e", "")
    o.add_option("n", 5)
    s = SelectorSet()
    s.add_option("ShellId", "S")
    q = OptionSet()
    q.add_option("k", "v", {"Name": "override", "A": "1&\""})
    odd = OptionSet()
    odd.add_option("k", "v", {"{%s}lang" % "http://www.w3.org/XML/1998/namespace": "en"})  # namespaced: ElementTree's
    return [o, s, OptionSet(), SelectorSet(), q, odd]


@pytest.mark.parametrize("index", range(6))
def test_option_and_selector_sets_are_written_as_elementtree_writes_them(monkeypatch, index):
    _pair(monkeypatch)  # pypsrp's namespaces registered
    wset = _wsman_sets()[index]
    parts: list[str] = []
    transport._emit(wset.pack(), parts.append, transport._namer({}))
    got = transport._set_text(wset)
    assert got == "".join(parts) or (got is None and index == 5)
