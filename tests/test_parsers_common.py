"""Shared helpers for the parser tests (fixtures, damage generators, hypothesis strategies) and the
tests of remote/parsers/common.py and the PARSERS registry.

The damage generators reproduce what real published copies suffer (tests/fixtures/SOURCES.md):
Markdown-stripped indentation, double spacing, trailing spaces, CRLF, ``<url>`` wrappers, ``\\-``
escapes, a BOM, truncation.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remote.parsers import PARSERS, detect_error
from remote.parsers.common import clean_url, is_marker, split_label, split_lines

FIX = Path(__file__).resolve().parent / "fixtures"
HERE = Path(__file__).resolve().parent

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


def load(kind: str, name: str) -> str:
    return (FIX / kind / name).read_text(encoding="utf-8")


def samples(kind: str) -> list[str]:
    return sorted(p.name for p in (FIX / kind).glob("*.txt"))


# --- damage ---------------------------------------------------------------------------------------


def strip_indent(t: str) -> str:
    return "\n".join(line.lstrip() for line in t.split("\n"))


def double_space(t: str) -> str:
    return "\n\n".join(t.split("\n"))


def trailing_spaces(t: str) -> str:
    return "\n".join(line + "   " for line in t.split("\n"))


def crlf(t: str) -> str:
    return t.replace("\n", "\r\n")


def wrap_urls(t: str) -> str:
    return re.sub(r"(?i)(https?://\S+)", r"<\1>", t)


def escape_dash(t: str) -> str:
    return t.replace("-", "\\-")


def bom(t: str) -> str:
    return "\ufeff" + t


DAMAGES = {
    "strip_indent": strip_indent,
    "double_space": double_space,
    "trailing_spaces": trailing_spaces,
    "crlf": crlf,
    "wrap_urls": wrap_urls,
    "escape_dash": escape_dash,
    "bom": bom,
    "all": lambda t: bom(crlf(trailing_spaces(double_space(escape_dash(wrap_urls(strip_indent(t))))))),
}


def line_prefixes(t: str):
    """Every prefix of ``t`` cut at a line boundary: (number of lines kept, text)."""
    lines = t.split("\n")
    for k in range(len(lines) + 1):
        yield k, "\n".join(lines[:k])


@st.composite
def mutated(draw, texts: list[str]):
    """A real sample after random line-level mutations and splices with other samples."""
    lines = draw(st.sampled_from(texts)).split("\n")
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["del", "dup", "swap", "insert", "splice", "cut", "indent", "char"]))
        n = len(lines)
        if op == "del" and n:
            del lines[draw(st.integers(0, n - 1))]
        elif op == "dup" and n:
            i = draw(st.integers(0, n - 1))
            lines.insert(i, lines[i])
        elif op == "swap" and n > 1:
            i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            lines.insert(draw(st.integers(0, n)), draw(st.text(max_size=40)))
        elif op == "splice":
            other = draw(st.sampled_from(texts)).split("\n")
            a = draw(st.integers(0, len(other)))
            lines[draw(st.integers(0, n)) : draw(st.integers(0, n))] = other[a : a + draw(st.integers(0, 20))]
        elif op == "cut" and n:
            i = draw(st.integers(0, n - 1))
            lines = lines[:i] + [lines[i][: draw(st.integers(0, len(lines[i])))]]
        elif op == "indent" and n:
            i = draw(st.integers(0, n - 1))
            lines[i] = " " * draw(st.integers(0, 12)) + lines[i].lstrip()
        elif op == "char" and n:
            i = draw(st.integers(0, n - 1))
            s = lines[i]
            j = draw(st.integers(0, len(s)))
            lines[i] = s[:j] + draw(st.characters()) + s[j + 1 :]
    return "\n".join(lines)


# --- common.py ------------------------------------------------------------------------------------


def test_registry_names_and_types():
    assert set(PARSERS) == {"netstat", "servicestate", "urlacl", "iplisten", "tasklist", "services", "processes",
                            "sslcert", "excludedportrange", "excludedportrange6", "iis_sites", "iis_apppools", "getservice",
                            "nettcpconnection"}
    for name, fn in PARSERS.items():
        res = fn("")
        assert res.error is None and res.warnings == [], name


def test_every_corpus_sample_is_named_in_a_parser_test():
    sources = "".join(p.read_text(encoding="utf-8") for p in HERE.glob("test_parsers_*.py"))
    kinds = ["netstat", "servicestate", "urlacl", "iplisten", "tasklist", "services", "sslcert", "excludedportrange",
             "get-website", "get-iissite", "get-iisapppool", "get-webapppool", "appcmd-list-apppool", "appcmd-list-wp"]
    missing = [f"{k}/{n}" for k in kinds for n in samples(k) if n not in sources]
    assert not missing


def test_split_lines_numbers_crlf_bom_and_dash_escape():
    lines = split_lines("\ufeffa\r\n\r\n\\-\\-\\-  \r\n\tb")
    assert [(ln.no, ln.text) for ln in lines] == [(1, "a"), (2, ""), (3, "---"), (4, "b")]
    assert lines[3].indent == 8


def test_markers():
    for m in ["...[snip]...", "(...)", "[...]", " [...]", "...", "-- More --", "[snip]", "\u2026"]:
        assert is_marker(m), m
    for m in ["[svchost.exe]", "TCP 0.0.0.0:80", "Process IDs:", "..x"]:
        assert not is_marker(m), m


def test_split_label_ignores_urls_and_paths():
    assert split_label("Reserved URL            : http://+:80/") == ("reserved url", "http://+:80/")
    assert split_label("SDDL: D:(A;;GX;;;WD)") == ("sddl", "D:(A;;GX;;;WD)")
    assert split_label("In ascolto: Yes") == ("in ascolto", "Yes")
    assert split_label("URL Reservations: ") == ("url reservations", "")
    assert split_label("HTTP://+:80/") is None
    assert split_label("C:\\inetpub") is None


def test_clean_url():
    assert clean_url("<HTTP://+:5985/WSMAN/>") == "HTTP://+:5985/WSMAN/"
    assert clean_url("  http://+:80/Temporary\\_Listen\\_Addresses/  ") == "http://+:80/Temporary_Listen_Addresses/"
    assert clean_url("HTTP://127.0.0.1:8000:127.0.0.1/") == "HTTP://127.0.0.1:8000:127.0.0.1/"
    assert clean_url("HTTPS://HOST:443/FRVROOT_{0A1B}/") == "HTTPS://HOST:443/FRVROOT_{0A1B}/"
    assert clean_url("Registered URLs:") is None


def test_detect_error_known_messages():
    cases = {
        "The requested operation requires elevation (Run as administrator).\n":
            "The requested operation requires elevation (Run as administrator).",
        "\nL'opération demandée nécessite une élévation (Exécuter en tant qu'administrateur).\n":
            "L'opération demandée nécessite une élévation (Exécuter en tant qu'administrateur).",
        "The handle is invalid.": "The handle is invalid.",
        "Access is denied.\r\n": "Access is denied.",
        "URL Reservations: \n----------------- \n\nThe handle is invalid.\n\n\n": "The handle is invalid.",
    }
    for text, msg in cases.items():
        assert detect_error(text) == msg, text


def test_detect_error_powershell_records():
    rec = (
        "netsh.exe : The requested operation requires elevation (Run as administrator).\n"
        "At line:1 char:1\n+ netsh http show servicestate\n+ ~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
        "    + CategoryInfo          : NotSpecified: (The requested ...administrator).:String) [], RemoteException\n"
        "    + FullyQualifiedErrorId : NativeCommandError\n"
    )
    assert detect_error(rec).startswith("netsh.exe : The requested operation requires elevation")
    term = ("tasklist : The term 'tasklist' is not recognized as the name of a cmdlet, function, "
            "script file, or operable program.\nAt line:1 char:1\n")
    assert "is not recognized" in detect_error(term)


def test_detect_error_structural_prose_and_non_errors():
    # a localized message we have no sample of: short prose after the command header
    text = "\nIP addresses present in the IP listen list:\n-------------------------------------------\n\n" \
           "Der angeforderte Vorgang erfordert erhöhte Rechte.\n"
    assert detect_error(text) == "Der angeforderte Vorgang erfordert erhöhte Rechte."
    for ok in ["", "\n\n", "IP addresses present in the IP listen list:\n----\n\n    127.0.0.1\n",
               "INFO: No tasks are running which match the specified criteria.\n",
               load("servicestate", "blog-pid4-116B50EB.txt"), load("netstat", "htb-flight-findstr-listening.txt"),
               load("tasklist", "gh-x64dbgmcp-21-fr-win11-findstr.txt"), load("iplisten", "cn-iis-clone-after.txt"),
               "  TCP    0.0.0.0:80   0.0.0.0:0   LISTENING   4\n"]:
        assert detect_error(ok) is None, ok[:40]


@SETTINGS
@given(st.text())
def test_detect_error_never_raises(text):
    r = detect_error(text)
    assert r is None or isinstance(r, str)
