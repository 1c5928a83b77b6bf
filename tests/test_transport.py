"""remote/remoting/transport.py: port80's pypsrp tuning gives exactly what pypsrp gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pypsrp.powershell import RunspacePool
from pypsrp.serializer import Serializer

from remote.remoting.transport import FastSerializer, decode_clixml_string, tune_pool

SLOW = Serializer()._deserialize_string
FAST = FastSerializer()._deserialize_string

SAMPLES = [
    None, "", "plain", "line_x000D__x000A_", "a_x000D__x000A_b_x000D__x000A_", "_x000D_x000A_", "_x000A_x000D_",
    "_x005F_x000D_", "_x005F__x000D_", "lower_x000d_", "tab_x0009_", "_x0041_", "snake_x_case", "_xZZZZ_",
    "\u65e5\u672c_x000D__x000A_", "caf\u00e9", "_X000D_", "__x000A_", "_x000D__x000D__x000A_",
    "_x000D__x000A_x000D__x000A_", "a_x000D__x000A__x000D__x000A_b", "_x000A__x000D__x000A_", "_x000D__x000A_x",
]


def _same(value):
    try:
        expected = ("ok", SLOW(value))
    except Exception as e:  # pypsrp raises on some malformed escapes: the fast path must too
        expected = ("raise", type(e))
    try:
        got = ("ok", FAST(value))
    except Exception as e:
        got = ("raise", type(e))
    assert got == expected, value


def test_samples_match_pypsrp():
    for v in SAMPLES:
        _same(v)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(["_x000D_", "_x000A_", "_x000D__x000A_", "x000D__x000A_", "_x", "_", "x", "000D", "A",
                                 "_x005F_", "_x0009_", "\r\n",
                                 "\u00e9", "\u3000", "\u5f00", " ", "ab"]), max_size=12).map("".join))
def test_fast_string_decoding_matches_pypsrp(value):
    _same(value)


def test_fast_path_does_not_call_pypsrp_for_plain_output():
    calls = []
    assert decode_clixml_string("a_x000D__x000A_b", lambda v: calls.append(v)) == "a\r\nb" and not calls
    decode_clixml_string("_x0009_", lambda v: calls.append(v))
    assert calls == ["_x0009_"]


def test_tune_pool_swaps_the_serializer_pypsrp_uses(monkeypatch):
    class _Conn:  # RunspacePool only reads these from its WSMan at construction
        max_payload_size = 153600

    pool = RunspacePool(_Conn())
    assert type(pool._serializer) is Serializer and pool._fragmenter.serializer is pool._serializer
    tune_pool(pool)
    assert isinstance(pool._serializer, FastSerializer) and pool._fragmenter.serializer is pool._serializer


def test_session_reads_the_environment_once(monkeypatch, tmp_path):
    from pypsrp.wsman import WSMan

    from remote.remoting.transport import tune_wsman

    ca = tmp_path / "corp-ca.pem"
    ca.write_text("not read here")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    w = WSMan("127.0.0.1", username="u", password="p", ssl=True, auth="basic", cert_validation=True, no_proxy=True)
    tune_wsman(w)
    session = w.transport._build_session()
    assert session.trust_env is False  # no proxy/netrc lookups per request...
    assert session.verify == str(ca)  # ...but the CA bundle from the environment is honoured
    assert session.proxies == {"https": False}


def test_application_private_data_is_decoded_once_with_pypsrps_result():
    from pypsrp.messages import ApplicationPrivateData
    from pypsrp.serializer import ObjectMeta

    from remote.lab.engine.shell import psversion_table
    import psrpcore
    from xml.etree import ElementTree
    from psrpcore.types import serialize

    table = psversion_table(None)
    xml = ElementTree.tostring(serialize(psrpcore.types.ApplicationPrivateData(ApplicationPrivateData={
        "PSVersionTable": table}), psrpcore.ServerRunspacePool()._cipher), encoding="unicode")
    meta = lambda: ObjectMeta("Obj", object=ApplicationPrivateData)  # noqa: E731
    fast = FastSerializer()
    a, b = fast.deserialize(xml, meta()), FastSerializer().deserialize(xml, meta())
    assert a is b
    ref = Serializer().deserialize(xml, meta())
    assert a.data == ref.data


def _outcome(fn, xml):
    try:
        return ("ok", fn(xml))
    except Exception as e:  # noqa: BLE001 - compare failures too
        return ("raise", type(e))


PRIMITIVES = [
    "<S>plain</S>", "<S />", "<S/>", "<S></S>", "<S> spaced </S>", "<S>a&amp;b &lt;x&gt; &quot;q&quot; &apos;</S>",
    "<S>&amp;lt;</S>", "<S>&#x41;</S>", "<S>&#65;</S>", "<S>bad & amp</S>", "<S>a\r\nb</S>", "<S>a\nb\tc</S>",
    "<S>line_x000D__x000A_</S>", "<S>x<B>nested</B></S>", "<S><![CDATA[a]]></S>", "<B>true</B>", "<B>false</B>",
    "<B>True</B>", "<I32>5</I32>", "<S>\u65e5\u672c_x000A_</S>", "<S>\x01</S>", "<S>\ufffe</S>",
]


def test_primitive_output_objects_match_pypsrp():
    for xml in PRIMITIVES:
        assert _outcome(FastSerializer().deserialize, xml) == _outcome(Serializer().deserialize, xml), xml


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list("ab _x0DA&;<>/\t\n\r'\"#") + ["&amp;", "&lt;", "&gt;", "_x000D_", "_x000A_",
                                                                     "\u00e9", "\u3000"]),
                max_size=20).map(lambda t: "<S>" + "".join(t) + "</S>"))
def test_string_objects_match_pypsrp(xml):
    assert _outcome(FastSerializer().deserialize, xml) == _outcome(Serializer().deserialize, xml)


def test_real_output_strings_match_pypsrp():
    from xml.etree import ElementTree

    import psrpcore
    from psrpcore.types import serialize

    for text in ["Active Connections\r\n\r\n  Proto  Local Address\r\n", '{\r\n    "Name":  "W3SVC & <co>"\r\n}', "",
                 "caf\u00e9\ttab", "_x005F_ literal"]:
        xml = ElementTree.tostring(serialize(text, psrpcore.ServerRunspacePool()._cipher), encoding="unicode")
        assert FastSerializer().deserialize(xml) == Serializer().deserialize(xml) == text


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["_", "x", "_x", "a", "__", "X", "\u00e9", "_" * 70, "x_"]), max_size=120).map("".join))
def test_has_escape_is_a_search_for_underscore_x(text):
    from remote.remoting.transport import _has_escape

    assert _has_escape(text) == ("_x" in text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["_x000D__x000A_", "_" * 70, "_x0041_", "a_b", "_", "x", "\u00e9"]),
                max_size=20).map("".join))
def test_decoding_with_many_underscores_matches_pypsrp(value):
    _same(value)
