"""``netsh http show sslcert`` → :class:`SslCertResult`: HTTP.sys certificate bindings.

Shapes handled (tests/fixtures/sslcert):

* the English block per binding, 4-space indent, labels padded to column 33 then ``: ``, with the
  older field set ending at ``Negotiate Client Certificate`` (en-watson-0.0.0.0-443-older-fieldset,
  Server 2012-2016 era) and the newer ones with ``Reject Connections``, ``Disable HTTP2`` …,
  ``Enable Caching Client Hello`` and repeated `` Extended Properties:`` blocks
  (en-bc-onprem-7148-backtick-wrapped, en-cac-iisexpress-44307-first-line-dedented);
* German labels ``SSL-Zertifikatbindungen:``, ``IP:Port``, ``Zertifikathash`` padded one column
  shorter (de-scriptrunner-verbose-excerpt), inside a PowerShell VERBOSE stream (every line
  prefixed ``AUSFÜHRLICH: ``, ``netsh>`` prompt lines);
* damage: Markdown backticks around every line, a first line without its indent, excerpts
  (en-azurelocal-sdn-nchostagent-3line-excerpt: three fields only), trailing spaces.

A binding starts at its key line: ``IP:port`` (ipport), ``Hostname:port`` (SNI) or ``Central
Certificate Store`` (CCS). **Guess**: the corpus has only ``IP:port`` bindings; the SNI and CCS
key labels and their values (``www.contoso.com:443``, ``443``) follow Microsoft's ``netsh http``
reference, not a capture. German labels other than ``IP:Port`` and ``Zertifikathash``
(``Anwendungs-ID``, ``Zertifikatspeichername``) come from a third-party fixture (LABELS.md,
unverified); a block whose labels are all unknown still yields its binding and ``fields``.
"""

from __future__ import annotations

import re
from typing import Optional

from .common import detect_error, is_marker, is_rule, never_raise, norm_label, split_lines
from .records import SslCertBinding, SslCertResult

# "label   : value" — the label may itself hold a colon ("IP:port"), so split at " : " / " :" EOL
_FIELD_RE = re.compile(r"^(?P<label>\S.*?)\s+:(?:\s+(?P<value>.*))?$|^(?P<label2>[^:]+):\s*(?P<value2>.*)$")
_VERBOSE_PREFIX_RE = re.compile(r"^(?:VERBOSE|AUSF(?:Ü|UE|U)HRLICH|DÉTAILLÉ|COMMENTAIRES|DEBUG)\s*:\s?", re.IGNORECASE)
_PROMPT_RE = re.compile(r"^netsh(?:\s+http)?\s*>", re.IGNORECASE)

_KEYS = {  # normalized label -> binding kind
    "ip:port": "ipport",
    "hostname:port": "hostnameport",
    "central certificate store": "ccs",
    "ccs": "ccs",
    "scoped ccs": "ccs",
}
_HASH = {"certificate hash", "zertifikathash", "zertifikat-hash"}
_APPID = {"application id", "anwendungs-id", "anwendungs id"}
_STORE = {"certificate store name", "zertifikatspeichername", "name des zertifikatspeichers"}
_NULL = {"(null)", "(nul)", ""}


def _clean(raw: str) -> str:
    t = raw.strip()
    if len(t) >= 2 and t[0] == "`" and t[-1] == "`":  # Markdown inline code around the line
        t = t[1:-1]
    t = _VERBOSE_PREFIX_RE.sub("", t.strip())
    return t.strip()


def _split(text: str) -> Optional[tuple[str, str, str]]:
    """(normalized label, label as printed, value) or None."""
    m = _FIELD_RE.match(text)
    if not m:
        return None
    label = (m.group("label") or m.group("label2") or "").strip()
    value = (m.group("value") if m.group("label") else m.group("value2")) or ""
    if not label or "//" in label:
        return None
    return norm_label(label), label, value.strip()


def _key_value(b: SslCertBinding) -> None:
    v = b.binding.strip()
    if b.kind == "ipport":
        m = re.match(r"^\[(?P<a6>[^\]]+)\]:(?P<p>\d{1,5})$|^(?P<a>[^:\s]+):(?P<p4>\d{1,5})$", v)
        if m:
            b.address = m.group("a6") or m.group("a")
            b.port = int(m.group("p") or m.group("p4"))
    elif b.kind == "hostnameport":
        host, sep, port = v.rpartition(":")
        if sep and port.isdigit():
            b.hostname, b.port = host, int(port)
    elif b.kind == "ccs":
        m = re.search(r"(\d{1,5})$", v)
        if m:
            b.port = int(m.group(1))


@never_raise(SslCertResult)
def parse_sslcert(text: str) -> SslCertResult:
    """Parse ``netsh http show sslcert``; never raises."""
    res = SslCertResult()
    cur: Optional[SslCertBinding] = None
    for ln in split_lines(text):
        t = _clean(ln.raw)
        if not t or is_rule(t) or is_marker(t) or _PROMPT_RE.match(t):
            continue
        f = _split(t)
        if f is None:
            if cur is None and not res.bindings:
                continue  # text before the first binding (a tool's own messages)
            res.warnings.append(f"line {ln.no}: unrecognized line {t[:60]!r}")
            continue
        label, printed, value = f
        kind = _KEYS.get(label)
        if kind is not None and value:
            cur = SslCertBinding(kind=kind, binding=value, line=ln.no)
            _key_value(cur)
            res.bindings.append(cur)
            continue
        if cur is None:
            if not value:
                continue  # the title ("SSL Certificate bindings:") or "Extended Properties:"
            res.warnings.append(f"line {ln.no}: field outside a binding {t[:60]!r}")
            continue
        if not value and printed.lower().startswith("extended"):
            continue
        cur.fields.setdefault(printed, value)
        if label in _HASH:
            cur.cert_hash = None if value.lower() in _NULL else value
        elif label in _APPID:
            cur.app_id = None if value.lower() in _NULL else value
        elif label in _STORE:
            cur.cert_store = None if value.lower() in _NULL else value
    if not res.bindings:
        res.error = detect_error(text)
    return res
