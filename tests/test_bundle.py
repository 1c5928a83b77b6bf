"""Evidence bundles on disk: Windows encodings, missing and broken files, bad paths — never a traceback."""

from __future__ import annotations

import codecs
import json
import shutil
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from remote.analysis.verdicts import analyze_bundle
from remote.evidence.bundle import MAX_FILE_BYTES, find_bundles, read_bundle
from remote.cli.app import app
from remote.evidence.textio import decode_text

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "seed-branchcache"


def seed_as(tmp: Path, encode) -> Path:
    d = tmp / "b"
    d.mkdir()
    for f in SEED.iterdir():
        text = f.read_text(encoding="utf-8")
        (d / f.name).write_bytes(encode(text) if f.suffix == ".txt" else text.encode())
    return d


def holder_and_pid(d: Path):
    p = analyze_bundle(read_bundle(d), [80]).ports[0]
    return p.holder, [r.pids for r in p.registrations], [r.users for r in p.reservations]


EXPECTED = ("http.sys", [[2668]], [["NT AUTHORITY\\NETWORK SERVICE"]])


def test_utf16_le_with_bom_crlf(tmp_path):  # what Windows PowerShell 5.1's `>` writes
    d = seed_as(tmp_path, lambda t: codecs.BOM_UTF16_LE + t.replace("\n", "\r\n").encode("utf-16-le"))
    assert holder_and_pid(d) == EXPECTED


def test_utf8_bom(tmp_path):
    d = seed_as(tmp_path, lambda t: codecs.BOM_UTF8 + t.encode())
    assert holder_and_pid(d) == EXPECTED


def test_oem_code_page(tmp_path):  # cmd.exe `>` on a western console; é is 0x82 in cp850
    d = seed_as(tmp_path, lambda t: (t + "\nCaractère\n").encode("cp850"))
    assert holder_and_pid(d) == EXPECTED
    assert "Caractère" in read_bundle(d).texts["netstat"]


def test_utf16_without_bom(tmp_path):
    d = seed_as(tmp_path, lambda t: t.encode("utf-16-le"))
    assert holder_and_pid(d) == EXPECTED


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_decode_never_raises(data):
    assert isinstance(decode_text(data), str)


def test_broken_host_json_and_oversized_file(tmp_path):
    d = tmp_path / "h"
    shutil.copytree(SEED, d)
    (d / "host.json").write_text("{not json")
    with open(d / "iplisten.txt", "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    b = read_bundle(d)
    assert b.texts["iplisten"] is None
    assert any("host.json" in p for p in b.problems) and any("limit" in p for p in b.problems)
    r = analyze_bundle(b, [80])
    assert r.ports[0].holder == "http.sys"
    assert any("host.json" in w for w in r.warnings)


def test_folder_of_bundles_and_bad_paths(tmp_path):
    shutil.copytree(SEED, tmp_path / "fleet" / "a")
    shutil.copytree(SEED, tmp_path / "fleet" / "b")
    assert [p.name for p in find_bundles([tmp_path / "fleet"])] == ["a", "b"]
    r = CliRunner().invoke(app, ["analyze", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "nope: no such file or folder" in r.output and "Traceback" not in r.output
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(app, ["analyze", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "not an evidence bundle" in r.output


def test_garbage_bundle_is_analysed_without_error(tmp_path):
    d = tmp_path / "g"
    d.mkdir()
    for name in ("netstat.txt", "servicestate.txt", "urlacl.txt", "iplisten.txt", "services.json"):
        (d / name).write_bytes(bytes(range(256)) * 20)
    r = CliRunner().invoke(app, ["analyze", str(d), "-f", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["hosts"][0]["ports"][0]["holder"] in ("free", "unknown")


def test_parse_command_outputs_json(tmp_path):
    r = CliRunner().invoke(app, ["parse", "servicestate", str(SEED / "servicestate.txt")])
    doc = json.loads(r.stdout)
    assert list(doc)[:3] == ["view", "request_queues", "url_groups"]
    q = doc["request_queues"][0]
    assert (q["name"], q["pids"], q["controller_pid"], q["urls"]) == (
        None, [2668], None, ["HTTP://+:80/116B50EB-ECE2-41AC-8429-9F9E963361B7/"])
    r = CliRunner().invoke(app, ["parse", "netstat", str(SEED / "netstat.txt")])
    s = json.loads(r.stdout)["sockets"][0]
    assert {k: s[k] for k in ("proto", "local_address", "local_port", "state", "pid")} == {
        "proto": "TCP", "local_address": "0.0.0.0", "local_port": 80, "state": "LISTENING", "pid": 4}
    r = CliRunner().invoke(app, ["parse", "bogus", str(SEED / "netstat.txt")])
    assert r.exit_code == 2
    r = CliRunner().invoke(app, ["parse", "netstat", str(tmp_path / "missing.txt")])
    assert r.exit_code == 2 and "missing.txt: cannot read" in r.output


def test_write_bundle_returns_what_read_bundle_reads_back(tmp_path):
    from remote.evidence.bundle import Bundle, read_bundle, write_bundle

    b = Bundle(host="h1", texts={"netstat": "\ufeffProto  Local\r\n  TCP 0.0.0.0:80\r\n", "urlacl": "",
                                 "services": '[{"Name": "W3SVC", "État": "ümlaut"}]', "iplisten": None},
               meta={"host": "h1", "commands": {"netstat": "netstat.exe -ano"}, "tuple": (1, 2), "elevated": True})
    got = write_bundle(tmp_path / "h1", b)
    back = read_bundle(tmp_path / "h1")
    assert (got.host, got.texts, got.meta, got.path, got.problems) == (
        back.host, back.texts, back.meta, back.path, back.problems)


def test_a_new_bundle_appears_whole_and_a_crashed_staging_folder_is_never_a_bundle(tmp_path):
    """A new folder is filled under ``.NAME.part`` and renamed into place; what a crash leaves there is
    skipped by find_bundles and replaced by the next write; an existing folder is written over in place."""
    from remote.evidence.bundle import Bundle, find_bundles, read_bundle, write_bundle

    crashed = tmp_path / ".h1.part"
    crashed.mkdir()
    (crashed / "netstat.txt").write_text("half a netst", encoding="utf-8")
    b = write_bundle(tmp_path / "h1", Bundle(host="h1", texts={"netstat": "TCP ok\n"}, meta={"host": "h1"}))
    assert not crashed.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["h1"]
    assert read_bundle(tmp_path / "h1").texts["netstat"] == b.texts["netstat"] == "TCP ok\n"
    assert find_bundles([tmp_path]) == [tmp_path / "h1"]
    (tmp_path / ".h2.part").mkdir()
    (tmp_path / ".h2.part" / "netstat.txt").write_text("x", encoding="utf-8")
    assert find_bundles([tmp_path]) == [tmp_path / "h1"]  # the staging folder is not a host
    again = write_bundle(tmp_path / "h1", Bundle(host="h1", texts={"netstat": "TCP again\n"}, meta={"host": "h1"}))
    assert read_bundle(tmp_path / "h1").texts["netstat"] == again.texts["netstat"] == "TCP again\n"
    assert not list((tmp_path / "h1").glob("*.part"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.sampled_from(["\ufeffx", "a\x00b\x00", "\x00" * 8, "\ufeff", "ok\u2026"]))
def test_the_text_written_is_the_text_read_back(text):
    """write_bundle returns what read_bundle would give without decoding again when that is certain."""
    from remote.evidence.bundle import _as_read_back
    from remote.evidence.textio import decode_text, valid_unicode

    text = valid_unicode(text)[0]
    assert _as_read_back(text, text.encode("utf-8")) == decode_text(text.encode("utf-8"))
