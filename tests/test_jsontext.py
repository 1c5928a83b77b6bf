"""remote/jsontext.py writes what ``json.dumps(obj, indent=2, ensure_ascii=False)`` writes, and fails as it fails."""

from __future__ import annotations

import enum
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outcome import outcome
from remote.jsontext import dumps_indented


def _ref(obj):
    return outcome(json.dumps, obj, indent=2, ensure_ascii=False)


def _ours(obj):
    return outcome(dumps_indented, obj)


scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.text() | st.sampled_from(["", "\x00\x1f\x7f\ud800 caf\u00e9 \"q\" \\ / \u2028", "0", "1e5"]))
keys = st.text() | st.integers() | st.floats() | st.booleans() | st.none()
docs = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
                    | st.dictionaries(keys, inner, max_size=5), max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(docs)
def test_same_text_as_json_dumps(doc):
    assert _ours(doc) == _ref(doc)


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class MyList(list):
    pass


class MyDict(dict):
    pass


@pytest.mark.parametrize("doc", [
    {}, [], {"a": {}}, {"a": []}, [[], {}], (1, 2), {"k": Color.RED, Color.RED: Level.HIGH, Level.HIGH: 1.5},
    MyList([1, MyDict(a=MyList())]), {1.5: 1, True: 2, None: 3, 7: math.nan, "x": -math.inf},
    {"bad": {1, 2}}, {(1, 2): "tuple key"}, {"obj": object()}, b"bytes", 10 ** 30, -0.0, 1e300,
])
def test_odd_documents_are_json_dumps(doc):
    assert _ours(doc) == _ref(doc)


def test_a_cycle_fails_as_json_fails():
    a: list = []
    a.append(a)
    assert _ours(a) == _ref(a) == ("raise", ValueError)


def test_deep_nesting_is_json_dumps():
    doc: list = []
    for _ in range(50):
        doc = [doc, {"k": doc}] if len(str(doc)) < 10000 else [doc]
    assert _ours(doc) == _ref(doc)
