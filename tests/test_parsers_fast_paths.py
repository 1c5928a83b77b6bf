"""The parsers' fast paths (the exact shapes port80's own commands print) give the records the generic
paths give: on every bundle of the demo fleet, on the corpus fixtures, and on hypothesis variants that
step off the fast path in every way it checks for (key case, missing/extra keys, value types, blank
names, duplicate or padded names, non-ASCII text)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote.lab.fleet import demo_fleet_dir
from remote.parsers import getservice, services, urlacl
from remote.parsers.common import iter_lines, split_lines
from remote.parsers.getservice import parse_getservice
from remote.parsers.services import parse_processes_json, parse_services_json
from remote.parsers.urlacl import parse_urlacl

try:
    from test_parsers_common import DAMAGES, FIX, SETTINGS, mutated
except ImportError:  # pragma: no cover - tests/ as a package
    from tests.test_parsers_common import DAMAGES, FIX, SETTINGS, mutated

PROFILES = sorted(p for p in demo_fleet_dir().iterdir() if p.is_dir() and not p.name.startswith("_"))


@contextlib.contextmanager
def generic_only():
    old = services.FAST_PATHS
    services.FAST_PATHS = False
    try:
        yield
    finally:
        services.FAST_PATHS = old


def both(parse, text):
    """(fast-path result, generic result) of one parser on one text."""
    fast = parse(text)
    with generic_only():
        slow = parse(text)
    return fast, slow


def profile_texts(name: str) -> list[str]:
    return [(p / name).read_text(encoding="utf-8") for p in PROFILES if (p / name).is_file()]


JSON_PARSERS = {"services.json": parse_services_json, "processes.json": parse_processes_json,
                "getservice.json": parse_getservice}


@pytest.mark.parametrize("name", sorted(JSON_PARSERS))
def test_demo_fleet_json_fast_equals_generic(name):
    texts = profile_texts(name)
    assert len(texts) >= 10
    for text in texts:
        fast, slow = both(JSON_PARSERS[name], text)
        assert fast == slow
        assert fast.services if hasattr(fast, "services") else fast.processes


def test_fast_paths_are_taken_on_the_demo_fleet():
    """The point of the fast paths: the collector's own shapes take them (else this file tests nothing)."""
    items = json.loads(profile_texts("services.json")[0])
    assert services._services_fast(items) is not None
    items = json.loads(profile_texts("processes.json")[0])
    assert services._processes_fast(items) is not None
    text = profile_texts("getservice.json")[0]
    items = json.loads(text)
    lines = getservice._json_lines(text, len(items))
    assert getservice._nodes_fast(items, lines) is not None and 0 not in lines
    assert lines == getservice._json_lines_regex(text, len(items))


# --- hypothesis: variants of the collector's objects -----------------------------------------------------

# the values that matter to the conversions (whitespace, blanks, enums as numbers, bools that equal 1, …)
_ODD = [None, True, False, 0, 1, 4, 7, 2.0, 2.5, -1, 10**15, "", "  ", " x ", "Running", " running ", "Stopped",
        "Start Pending", "startpending", "Unknown", "OK", "Auto", "Automatic", " manual", "Disabled", "Boot", "4",
        " 12 ", "12a", "\u00e9t\u00e9", "\ud800"]
_SCALARS = st.one_of(st.sampled_from(_ODD), st.text(max_size=6))
_VALUES = st.one_of(
    _SCALARS,
    st.lists(st.sampled_from(["RPCSS", " HTTP ", "", "WAS", "WAS", "\u00e9t\u00e9"]), max_size=4),
    st.lists(_SCALARS, max_size=3),
    st.fixed_dictionaries({"value": st.lists(st.sampled_from(["a", "b"]), max_size=2), "Count": st.integers(0, 2)}),
    st.fixed_dictionaries({"Name": _SCALARS}),
)
_OPS = ["value"] * 6 + ["recase", "drop", "add", "dup-fold", "not-dict"]


@st.composite
def variant_items(draw, keys: tuple[str, ...], base: list[dict]):
    """Real items (from the demo fleet), some of them changed: a key re-cased, dropped or added, a value
    replaced by another type; sometimes the items are not all dicts."""
    items = [dict(o) for o in draw(st.lists(st.sampled_from(base), min_size=1, max_size=4))]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(items) - 1))
        o = items[i]
        if type(o) is not dict:
            continue
        op = draw(st.sampled_from(_OPS))
        k = draw(st.sampled_from(keys))
        if op == "value":
            o[k] = draw(_VALUES)
        elif op == "recase" and k in o:
            o[k.upper()] = o.pop(k)
        elif op == "drop":
            o.pop(k, None)
        elif op == "add":
            o[draw(st.sampled_from(["Caption", "Extra", "ServiceName", "name", "StartType", "Status"]))] = draw(_VALUES)
        elif op == "dup-fold":
            o[k.lower()] = draw(_VALUES)
        elif op == "not-dict":
            items[i] = draw(st.one_of(_SCALARS, st.just(list(o))))
    return items


def _base(name: str) -> list[dict]:
    return json.loads(profile_texts(name)[0])[:40]


@pytest.mark.parametrize("parse, keys, base", [
    (parse_services_json, ("Name", "DisplayName", "State", "StartMode", "ProcessId"), "services.json"),
    (parse_processes_json, ("Id", "ProcessName", "Path"), "processes.json"),
], ids=["services", "processes"])
@given(data=st.data())
@SETTINGS
def test_json_variants_fast_equals_generic(parse, keys, base, data):
    items = data.draw(variant_items(keys, _base(base)))
    text = json.dumps(items, indent=4, ensure_ascii=data.draw(st.booleans()))
    fast, slow = both(parse, text)
    assert fast == slow


@given(st.data())
@SETTINGS
def test_getservice_variants_fast_equals_generic(data):
    items = data.draw(variant_items(("Name", "DisplayName", "Status", "StartType", "DependentServices",
                                     "ServicesDependedOn"), _base("getservice.json")))
    text = json.dumps(items, indent=data.draw(st.sampled_from([2, 4])), ensure_ascii=data.draw(st.booleans()))
    if data.draw(st.booleans()):
        text = text.replace('": ', '" : ').replace("\n", "\r\n")
    fast, slow = both(parse_getservice, text)
    assert fast == slow


@given(st.lists(st.sampled_from(['"name"', '"NAME"', '"Name"', '"n\u00e1me"', ":", " ", "\n", "\t", "x",
                                 "\u212a", '"', "{", "}", "\r\n"]), max_size=60).map("".join),
       st.integers(0, 6))
@SETTINGS
def test_json_lines_equals_the_regex(text, extra):
    n = len(getservice._NAME_KEY.findall(text))
    for k in (n, n + extra, max(0, n - extra)):
        assert getservice._json_lines(text, k) == getservice._json_lines_regex(text, k)


def test_fixture_texts_fast_equals_generic():
    """The corpus's service listings (text tables: the generic path) and anything JSON-shaped in the fixtures."""
    for p in sorted(Path(FIX).glob("services/*.txt")) + sorted(Path(FIX).glob("getservice/*.txt")):
        text = p.read_text(encoding="utf-8")
        for parse in JSON_PARSERS.values():
            fast, slow = both(parse, text)
            assert fast == slow, p.name


# --- line-oriented text parsers: the demo fleet's text as the fast path expects it, the corpus, damage ---------

TEXT_PARSERS = {"urlacl": ("urlacl.txt", parse_urlacl, urlacl._parse_fast)}
_LINE_ENDS = [lambda t: t, lambda t: t.replace("\r\n", "\n"), lambda t: t.replace("\r\n", "\r\r\n"),
              lambda t: t.replace("\r\n", "\r"), lambda t: "\ufeff" + t, lambda t: t.rstrip("\r\n"),
              lambda t: t + "\r\n\r\n  "]


def text_corpus(kind: str) -> list[str]:
    name = TEXT_PARSERS[kind][0]
    fixtures = [p.read_text(encoding="utf-8") for p in sorted((Path(FIX) / kind).glob("*.txt"))]
    return profile_texts(name) + fixtures


@pytest.mark.parametrize("kind", sorted(TEXT_PARSERS))
def test_text_fast_path_taken_on_the_demo_fleet_and_equal(kind):
    name, parse, fast_path = TEXT_PARSERS[kind]
    taken = 0
    for text in profile_texts(name):
        for end in _LINE_ENDS:
            fast, slow = both(parse, end(text))
            assert fast == slow
            if not slow.error:  # a healthy host's text (not-elevated's is an error message)
                assert fast_path(end(text)) is not None
                taken += 1
    assert taken >= 10 * len(_LINE_ENDS)


@pytest.mark.parametrize("kind", sorted(TEXT_PARSERS))
def test_text_corpus_and_damage_fast_equals_generic(kind):
    parse = TEXT_PARSERS[kind][1]
    for text in text_corpus(kind):
        for damage in DAMAGES.values():
            fast, slow = both(parse, damage(text))
            assert fast == slow


@given(st.data())
@SETTINGS
def test_urlacl_mutations_fast_equals_generic(data):
    text = data.draw(mutated(text_corpus("urlacl")[:6]))
    fast, slow = both(parse_urlacl, text)
    assert fast == slow


@given(st.lists(st.sampled_from(["a", " ", "\t", "\r", "\n", "\r\r\n", "\\", "-", "\\-", "\ufeff", "\x00", "\x0b",
                                 "\u2028", "\x85", "\u00e9", "  x  "]), max_size=40).map("".join))
@SETTINGS
def test_split_lines_equals_iter_lines(text):
    from remote.parsers import common

    assert split_lines(text) == list(iter_lines(text))
    saved = common._CHUNK
    try:
        for chunk in (0, 1, 2, 5):  # iter_lines makes its lines a chunk at a time: cut everywhere
            common._CHUNK = chunk
            assert split_lines(text) == list(iter_lines(text)), chunk
    finally:
        common._CHUNK = saved


# --- write_bundle: host.json without the surrogate walk when its text encodes ----------------------------

_META_STR = st.sampled_from(["ok", "h\u00e9te", "\ud800", "a\udfffb", "\ud83d\ude00", "\U0001f600", "", "x" * 3])
_META = st.dictionaries(_META_STR, st.one_of(_META_STR, st.integers(), st.none(), st.lists(_META_STR, max_size=3),
                                             st.dictionaries(_META_STR, _META_STR, max_size=2)), max_size=4)


@given(_META, st.dictionaries(st.sampled_from(["netstat", "urlacl", "services"]), _META_STR, max_size=2))
@SETTINGS
def test_bundle_host_json_equals_the_surrogate_walk(meta, texts):
    import tempfile

    from remote.evidence.bundle import FILES, HOST_FILE, Bundle, read_bundle, write_bundle
    from remote.evidence.textio import valid_unicode, valid_unicode_value

    replaced = {FILES[k]: n for k, t in texts.items() if (n := valid_unicode(t)[1])}
    ref_meta, n = valid_unicode_value(meta)  # what write_bundle did before its shortcut
    if n:
        replaced[HOST_FILE] = n
    if replaced:
        ref_meta = {**ref_meta, "replaced_characters": replaced}
    ref = json.dumps(ref_meta, indent=2, ensure_ascii=False) + "\n"
    with tempfile.TemporaryDirectory() as d:
        written = write_bundle(Path(d) / "h", Bundle(host="h", texts=dict(texts), meta=meta))
        assert (Path(d) / "h" / HOST_FILE).read_text(encoding="utf-8") == ref
        back = read_bundle(Path(d) / "h")
        assert (written.meta, written.texts, written.host) == (back.meta, back.texts, back.host)


# --- check_getservice: what the fleet analysis reads of getservice.json, without the records -----------------

def _read_by_analysis(res) -> tuple:
    return res.error, list(res.warnings), res.has_graph


def _check_equals_parse(text: str) -> None:
    from remote.parsers.getservice import check_getservice

    got = check_getservice(text)
    assert _read_by_analysis(got) == _read_by_analysis(parse_getservice(text))
    with generic_only():
        assert _read_by_analysis(check_getservice(text)) == _read_by_analysis(parse_getservice(text))


def test_check_getservice_on_the_demo_fleet_skips_the_records():
    from remote.evidence.kinds import KINDS
    from remote.parsers.getservice import check_getservice
    from remote.parsers.records import GetServiceCheck

    assert KINDS["getservice"].analyse is check_getservice and KINDS["getservice"].parse is parse_getservice
    for text in profile_texts("getservice.json"):
        got = check_getservice(text)
        assert type(got) is GetServiceCheck and got.has_graph and not got.services
        _check_equals_parse(text)


@given(st.data())
@SETTINGS
def test_check_getservice_on_variants_equals_the_parser(data):
    items = data.draw(variant_items(("Name", "DisplayName", "Status", "StartType", "DependentServices",
                                     "ServicesDependedOn"), _base("getservice.json")))
    if data.draw(st.booleans()):
        items = items[:0]
    text = json.dumps(items, indent=data.draw(st.sampled_from([2, 4])), ensure_ascii=data.draw(st.booleans()))
    cut = data.draw(st.sampled_from([None, 0.5, 0.9]))
    if cut:
        text = text[:int(len(text) * cut)]  # a cut-off array: salvaged (a note) or not JSON
    _check_equals_parse(text)


def test_check_getservice_on_fixtures_and_odd_texts_equals_the_parser():
    texts = [p.read_text(encoding="utf-8") for p in sorted(Path(FIX).glob("getservice/*"))
             if p.suffix in (".txt", ".json")]
    texts += ["", "   ", "not json", "[]", "{}", "null", "[1, 2]", '{"value": [], "Count": 0}',
              '[{"Name": "a", "DisplayName": "A", "Status": "Running", "StartType": "Manual", '
              '"DependentServices": [[[[["x"]]]]], "ServicesDependedOn": null}]',
              "\ufeff" + profile_texts("getservice.json")[0], "Get-Service : Access is denied"]
    for text in texts:
        _check_equals_parse(text)
