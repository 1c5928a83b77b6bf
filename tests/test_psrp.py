"""remote/remoting/psrp.py, port80's straight-line PSRP client, against pypsrp's own path (the
RunspacePool/PowerShell objects remote/remoting/collect.py falls back to): the same requests on the
wire (ids aside), the same evidence and errors from every host of the lab's demo fleet (faults
included), the same output, error records and states from real Windows responses
(tests/fixtures/recordings), and replies read the same with or without ElementTree."""

from __future__ import annotations

import base64
import re
import struct
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import NAMESPACES

from remote.lab.fixture import lab_fleet
from remote.remoting import psrp, transport
from remote.remoting.collect import ConnectionSpec, collect, connect, open_pool, run_pipeline
from remote.remoting.psrp import Session, Unsupported, scan_reply, tree_reply
from remote.remoting.transport import Port80WSMan, tune_pool

RECORDINGS = Path(__file__).parent / "fixtures" / "recordings"
UUID_RE = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
B64_RE = re.compile(r"(<creationXml[^>]*>|<rsp:Arguments>)([A-Za-z0-9+/=]+)(<)")


@pytest.fixture(scope="module")
def demo_lab(tmp_path_factory):
    with lab_fleet(base_address="127.0.0.1", port=0, workdir=tmp_path_factory.mktemp("lab")) as fleet:
        yield fleet


def _spec(fleet, name: str, **kw) -> ConnectionSpec:
    h = fleet.host(name)
    args = dict(name=h.name, address=h.address, port=h.port, scheme="https", auth="basic", user=fleet.user,
                cert_validation=str(fleet.ca_path), read_timeout=4, operation_timeout=2, connection_timeout=3)
    args.update(kw)
    return ConnectionSpec(**args)


def _pypsrp_path(monkeypatch):
    """collect() on pypsrp's RunspacePool (what it does when a Session cannot be used)."""
    def refuse(self, *a, **k):
        raise Unsupported("test: pypsrp's path")

    monkeypatch.setattr(Session, "__init__", refuse)


def _recorded(monkeypatch) -> list:
    sent: list = []
    original = transport.Port80Transport.send

    def send(self, message, **kw):
        sent.append(message)
        return original(self, message, **kw)

    monkeypatch.setattr(transport.Port80Transport, "send", send)
    return sent


def _normalized(messages: list[bytes]) -> list[str]:
    """Requests with every id (text uuids, and the binary pool/pipeline ids inside the PSRP fragments)
    replaced by its order of first appearance."""
    names: dict[str, str] = {}

    def name(u: str) -> str:
        return names.setdefault(u.upper(), f"<id{len(names)}>")

    out = []
    for m in messages:
        text = m.decode("utf-8")

        def fragments(mo):
            raw = base64.b64decode(mo.group(2))
            parts, pos = [], 0
            while pos < len(raw):
                oid, fid, flags, n = struct.unpack_from(">QQBI", raw, pos)
                blob = raw[pos + 21:pos + 21 + n]
                pos += 21 + n
                rpid = name(str(uuid.UUID(bytes_le=blob[8:24])))
                pid = name(str(uuid.UUID(bytes_le=blob[24:40])))
                parts.append(f"[{oid} {fid} {flags} {blob[:8].hex()} {rpid} {pid} {blob[40:].decode()}]")
            return mo.group(1) + "".join(parts) + mo.group(3)

        text = B64_RE.sub(fragments, text)
        out.append(UUID_RE.sub(lambda mo: name(mo.group(0)), text))
    return out


def _outcome(spec, fleet):
    try:
        c = collect(spec, fleet.password)
    except Exception as e:  # noqa: BLE001 - a failure must be the same failure on both paths
        return ("raise", type(e).__name__, str(e))
    meta = {k: v for k, v in c.meta.items() if k != "collected_at"}
    return ("ok", c.texts, c.command_errors, meta)


def test_session_sends_pypsrps_requests(demo_lab, monkeypatch):
    spec = _spec(demo_lab, "branchcache")
    sent = _recorded(monkeypatch)
    collect(spec, demo_lab.password)
    ours = _normalized(sent)
    sent.clear()
    _pypsrp_path(monkeypatch)
    collect(spec, demo_lab.password)
    ref = _normalized(sent)
    assert len(ours) == 6 and ours == ref
    assert "Microsoft.PowerShell" in ours[0] and "<id1>" in ours[0]


def test_session_sends_pypsrps_requests_over_ntlm(monkeypatch, tmp_path):
    with lab_fleet(auth="ntlm", base_address="127.0.0.1", port=0, workdir=tmp_path / "lab", hosts=1) as fleet:
        h = fleet.hosts[0]
        spec = ConnectionSpec(name=h.name, address=h.address, port=h.port, scheme="http", auth="ntlm",
                              user=fleet.user, read_timeout=4, operation_timeout=2)
        sent = _recorded(monkeypatch)
        collect(spec, fleet.password)
        ours = _normalized(sent)  # what the transport encrypts: the envelopes
        sent.clear()
        _pypsrp_path(monkeypatch)
        collect(spec, fleet.password)
        assert len(ours) == 6 and ours == _normalized(sent)


@pytest.mark.parametrize("name", ["branchcache", "faulty-auth", "faulty-wsman", "free", "hyperv-winnat",
                                  "iis-hostheaders", "iis-idle", "iis-worker", "iplisten-split", "nginx",
                                  "not-elevated", "server2022-processes", "shadowed-wildcard", "ssrs", "ssrs-tls",
                                  "winrm-compat"])
def test_session_collects_what_pypsrps_path_collects(demo_lab, monkeypatch, name):
    spec = _spec(demo_lab, name)
    ours = _outcome(spec, demo_lab)
    _pypsrp_path(monkeypatch)
    assert ours == _outcome(spec, demo_lab)
    if name.startswith("faulty"):
        assert ours[0] == "raise"
    else:
        assert ours[0] == "ok" and ours[1]["netstat"]


def test_session_under_an_output_cap_keeps_what_came_whole(demo_lab, monkeypatch):
    spec = _spec(demo_lab, "server2022-processes", max_output_bytes=60000)
    ours = _outcome(spec, demo_lab)
    _pypsrp_path(monkeypatch)
    assert ours == _outcome(spec, demo_lab)
    assert ours[0] == "ok" and any("cut off" in e or "not collected" in e for e in ours[2].values())


def test_a_hanging_receive_fails_as_on_pypsrps_path(demo_lab, monkeypatch):
    spec = _spec(demo_lab, "faulty-hang", read_timeout=2, operation_timeout=1)
    ours = _outcome(spec, demo_lab)
    _pypsrp_path(monkeypatch)
    ref = _outcome(spec, demo_lab)
    assert ours[0] == ref[0] == "raise" and ours[1] == ref[1]


def test_open_pool_is_a_session_and_pypsrps_pool_with_other_prefixes(demo_lab):
    spec = _spec(demo_lab, "free")
    with connect(spec, demo_lab.password) as wsman:
        assert isinstance(open_pool(wsman, spec), Session)
    try:
        with connect(spec, demo_lab.password) as wsman:  # pypsrp's WSMan registers its prefixes: after it
            ET.register_namespace("soap", NAMESPACES["s"])
            pool = open_pool(wsman, spec)
            assert isinstance(pool, RunspacePool)
            with pool:
                results, errors = run_pipeline(pool, ["iplisten"], {"iplisten": psrp_builder("iplisten")})
            assert "iplisten" in results and not errors
    finally:
        ET.register_namespace("s", NAMESPACES["s"])


def psrp_builder(kind: str):
    from remote.evidence.kinds import KINDS

    return KINDS[kind].build


# ------------------------------------------------------------------------- real Windows responses

def _response(path: Path) -> bytes:
    text = path.read_text(encoding="utf-8")
    if "<!-- response -->" in text:
        text = text[text.index("<!-- response -->") + len("<!-- response -->"):]
    return text.strip().encode("utf-8")


def _replies() -> list[tuple[str, bytes]]:
    return [(p.name, _response(p)) for p in sorted(RECORDINGS.glob("*.xml"))]


def _fields(r) -> tuple:
    return r.relates_to, r.streams, r.selectors, r.command_id


@pytest.mark.parametrize("name,data", _replies())
def test_scan_reply_reads_what_elementtree_reads_on_real_windows_replies(name, data):
    got = scan_reply(data)
    if "fault" not in name:  # a fault comes with HTTP 500 and is read by pypsrp's fault parser
        assert got is not None, name  # Windows' shape: no ElementTree needed
    assert got is None or _fields(got) == _fields(tree_reply(data))


def _variants(data: bytes) -> list[bytes]:
    """Well-formed changes of a reply that the regular-expression reader must leave to ElementTree or
    read the same: entities, comments, CDATA, a default namespace, a prefix bound twice, other prefixes,
    attributes in another order, whitespace."""
    out = [data.replace(b"<s:Body>", b"<s:Body><!-- c -->", 1),
           data.replace(b"<s:Body>", b'<s:Body xmlns:a="urn:other">', 1),
           data.replace(b"</a:RelatesTo>", b"&#x20;</a:RelatesTo>", 1),
           data.replace(b"<s:Header>", b'<s:Header xmlns="urn:default">', 1),
           data.replace(b"xmlns:a=", b"xmlns:addr=").replace(b"<a:", b"<addr:").replace(b"</a:", b"</addr:"),
           data.replace(b'<rsp:Stream Name="stdout"', b'<rsp:Stream  Name="stdout" ', 1),
           data.replace(b"<rsp:Stream ", b"<rsp:Stream xmlns:rsp='urn:x' ", 1),
           data.replace(b"</s:Body>", b"<rsp:Streams/></s:Body>", 1),
           # the review's shapes: rsp declared below the root, a single-quoted rebinding, markup between
           # streams, a prefix bound on an inner element only
           data.replace(b' xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"', b"", 1)
               .replace(b"<rsp:ReceiveResponse>", b'<rsp:ReceiveResponse xmlns:rsp="http://schemas.microsoft.com/'
                        b'wbem/wsman/1/windows/shell">', 1)
               .replace(b"<rsp:CommandResponse>", b'<rsp:CommandResponse xmlns:rsp="http://schemas.microsoft.com/'
                        b'wbem/wsman/1/windows/shell">', 1),
           data.replace(b"<s:Body>", b"<s:Body xmlns:rsp='urn:other'>", 1),
           data.replace(b' xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"',
                        b" xmlns:rsp='http://schemas.microsoft.com/wbem/wsman/1/windows/shell'", 1),
           data.replace(b"</rsp:Stream><rsp:Stream", b"</rsp:Stream><rsp:Other/><rsp:Stream", 1),
           data.replace(b"</rsp:Stream>", b"</rsp:Stream><q:x xmlns:q='urn:q'/>", 1)]
    if b'CommandId="' in data:
        out.append(re.sub(rb'(<rsp:Stream) (Name="[^"]*") (CommandId="[^"]*")', rb"\1 \3 \2", data, count=1))
    return [v for v in out if v != data]


def test_scan_reply_leaves_oversized_markup_to_elementtree():
    """What a hostile host can make slow for a regular expression (a padded stream start tag, thousands of
    ResourceCreated elements) is longer than Windows ever writes: None, read by ElementTree in linear time."""
    data = _response(RECORDINGS / "real-open-receive2.xml")
    assert scan_reply(data) is not None
    padded = data.replace(b'<rsp:Stream Name="stdout"', b"<rsp:Stream" + b" " * 20000 + b'Name="stdout"', 1)
    assert padded != data and scan_reply(padded) is None
    assert _fields(tree_reply(padded)) == _fields(tree_reply(data))
    many = data.replace(b"</s:Body>", b"<x:ResourceCreated></x:ResourceCreated>" * 2000 + b"</s:Body>", 1)
    assert scan_reply(many) is None


@pytest.mark.parametrize("name,data", _replies())
def test_scan_reply_on_changed_replies_is_elementtrees_or_none(name, data):
    for v in _variants(data):
        try:
            want = _fields(tree_reply(v))
        except ET.ParseError:
            assert scan_reply(v) is None
            continue
        got = scan_reply(v)
        assert got is None or _fields(got) == want, v[:300]


def _pypsrp_pipeline(responses: list[bytes]):
    pool = RunspacePool(Port80WSMan("host.example", username="u", password="p", ssl=True, auth="basic",
                                    cert_validation=False))
    tune_pool(pool)
    ps = PowerShell(pool)
    ps.state = 1  # running
    for r in responses:
        for mtype, value in pool._parse_responses(r, ps):
            if mtype == 0x00041004:
                ps.output.append(value.data.data)
    return ps.output, [str(e) for e in ps.streams.error], ps.had_errors, ps.state


def _session_pipeline(responses: list[bytes]):
    """What ``Session.run`` keeps of these Receive streams (its own ``pipeline_messages``)."""
    s = Session(Port80WSMan("host.example", username="u", password="p", ssl=True, auth="basic",
                            cert_validation=False))
    out = psrp.Pipeline()
    for r in responses:
        s.pipeline_messages(r, out)
    return out.output, [str(e) for e in out.errors], out.had_errors, out.state


def _streams(data: bytes) -> list[bytes]:
    return [base64.b64decode(t) for _, t in tree_reply(data).streams]


@pytest.mark.parametrize("name", ["real-pipeline-all-streams.xml", "real-pipeline-error-record-jea.xml",
                                  "real-receive-partial-no-commandstate.xml"])
def test_session_decodes_real_pipelines_as_pypsrp(name):
    responses = _streams(_response(RECORDINGS / name))
    assert responses
    assert _session_pipeline(responses) == _pypsrp_pipeline(responses)


def _fragment_stream(payloads: list[bytes], size: int) -> list[bytes]:
    """Messages cut in fragments of ``size`` bytes, every fragment in its own Receive."""
    out = []
    for oid, data in enumerate(payloads, 1):
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        for fid, chunk in enumerate(chunks):
            flags = (1 if fid == 0 else 0) | (2 if fid == len(chunks) - 1 else 0)
            out.append(struct.pack(">QQBI", oid, fid, flags, len(chunk)) + chunk)
    return out


def test_session_joins_messages_cut_across_receives():
    pid = uuid.uuid4().bytes_le
    texts = ["x" * 5000, "caf\u00e9 _x000D__x000A_ line", ""]
    msgs = [struct.pack("<II", 1, 0x00041004) + bytes(16) + pid + ("<S>%s</S>" % t).encode() for t in texts]
    for size in (7, 100, 4096):
        responses = _fragment_stream(msgs, size)
        ours = _session_pipeline(responses)
        assert ours == _pypsrp_pipeline(responses)
        assert ours[0] == ["x" * 5000, "caf\u00e9 \r\n line", ""]


def test_a_fragment_out_of_order_is_pypsrps_error():
    from pypsrp.exceptions import FragmentError

    msg = struct.pack("<II", 1, 0x00041004) + bytes(32) + b"<S>abc</S>"
    bad = struct.pack(">QQBI", 1, 1, 2, len(msg)) + msg
    s = Session(Port80WSMan("host.example", username="u", password="p", ssl=True, auth="basic",
                            cert_validation=False))
    with pytest.raises(FragmentError):
        s._messages(bad)
