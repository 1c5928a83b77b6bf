"""Kerberos message encryption (remote/remoting/transport.py ``Port80Encryption``): port80's fast path
against pypsrp's ``WinRMEncryption`` and pyspnego, in both directions, over real MIT krb5 contexts from
the lab's own KDC (loopback)."""

from __future__ import annotations

import os
import struct

import pytest
from conftest import krb5_config
import spnego
from pypsrp.encryption import WinRMEncryption
from pypsrp.exceptions import WinRMError

from remote.lab.protocol.auth import KerberosAcceptor
from remote.lab.protocol.kdc import LabKDC
from remote.remoting import kerberos
from remote.remoting.transport import Port80Encryption

HOST = "web-01.lab.test"
USER, PASSWORD = "auditor", "Kerb-Test-2026!"
BOUNDARY = "Encrypted Boundary"
SIZES = [0, 1, 15, 16, 17, 100, 4096, 70001, 150000]


@pytest.fixture(scope="module")
def kdc(tmp_path_factory):
    k = LabKDC(tmp_path_factory.mktemp("kdc"))
    k.create(USER, PASSWORD, [HOST])
    with krb5_config(k.krb5_conf), k:
        k.start()
        yield k


def _pair(kdc, protocol: str):
    """An established client (``protocol``) and server context for HTTP/HOST, wrapping for WinRM."""
    creds = kerberos.client_credentials(USER, PASSWORD, protocol)
    client = spnego.client(creds, hostname=HOST, service="HTTP", protocol=protocol,
                           options=spnego.NegotiateOptions.wrapping_winrm)
    acceptor = KerberosAcceptor(str(kdc.keytab), HOST)
    if protocol == "kerberos":
        server = spnego.server(hostname=HOST, service="HTTP", protocol="kerberos",
                               options=spnego.NegotiateOptions.wrapping_winrm, _gssapi_credential=acceptor.credential())
    else:
        from spnego._spnego import GSSMech

        server = spnego.server(protocol="negotiate", options=spnego.NegotiateOptions.wrapping_winrm,
                               _negotiate_contexts={GSSMech.kerberos: acceptor.context()})
    token = client.step()
    while not (client.complete and server.complete):
        token = server.step(token)
        if token is not None and not client.complete:
            token = client.step(token)
    return client, server


@pytest.mark.parametrize("protocol", ["kerberos", "negotiate"])
def test_fast_wrap_is_read_by_pypsrp_and_framed_as_pypsrp_frames_it(kdc, protocol):
    client, server = _pair(kdc, protocol)
    ours = Port80Encryption(client, WinRMEncryption.SPNEGO)
    assert ours._port80_krb() is not None  # the fast path is the one under test
    theirs = WinRMEncryption(server, WinRMEncryption.SPNEGO)
    for size in SIZES:
        message = os.urandom(size)
        ctype, body = ours.wrap_message(message)
        assert ctype == "multipart/encrypted"
        assert theirs.unwrap_message(body, BOUNDARY) == message
        # pypsrp's framing of the same message by pyspnego (random confounder: compare all but the ciphertext)
        ref_type, ref = WinRMEncryption(client, WinRMEncryption.SPNEGO).wrap_message(message)
        assert theirs.unwrap_message(ref, BOUNDARY) == message
        cut = ref.index(b"application/octet-stream\r\n") + len(b"application/octet-stream\r\n")
        head_len = struct.unpack_from("<i", ref, cut)[0]
        assert (ref_type, len(body), body[:cut + 4]) == (ctype, len(ref), ref[:cut + 4])
        assert struct.unpack_from("<i", body, cut)[0] == head_len
        assert body.endswith(b"--Encrypted Boundary--\r\n")


@pytest.mark.parametrize("protocol", ["kerberos", "negotiate"])
def test_fast_unwrap_gives_pypsrps_message(kdc, protocol):
    client, server = _pair(kdc, protocol)
    ours = Port80Encryption(client, WinRMEncryption.SPNEGO)
    theirs = WinRMEncryption(server, WinRMEncryption.SPNEGO)
    for size in SIZES:
        message = os.urandom(size)
        _, body = theirs.wrap_message(message)
        assert ours._port80_unwrap(ours._port80_krb(), body, BOUNDARY) is not None  # taken by the fast path
        # the same body again through pypsrp's code needs the next sequence number: wrap twice
        _, body2 = theirs.wrap_message(message)
        assert ours.unwrap_message(body2, BOUNDARY) == message
        assert WinRMEncryption(client, WinRMEncryption.SPNEGO).unwrap_message(theirs.wrap_message(message)[1],
                                                                              BOUNDARY) == message


def test_bodies_pypsrp_could_read_otherwise_take_pypsrps_code(kdc):
    client, server = _pair(kdc, "kerberos")
    ours = Port80Encryption(client, WinRMEncryption.SPNEGO)
    theirs = WinRMEncryption(server, WinRMEncryption.SPNEGO)
    ctx = ours._port80_krb()
    message = b"<s:Envelope>" + b"x" * 3000 + b"</s:Envelope>"
    _, body = theirs.wrap_message(message)
    odd = [
        body.replace(b"--Encrypted Boundary\r\n", b"-- Encrypted Boundary\r\n", 1),  # Exchange's spacing
        body[:-2],  # no final line end
        body + body,  # two parts
        body.replace(b"Length=", b"Length:", 1),
    ]
    for b in odd:
        assert ours._port80_unwrap(ctx, b, BOUNDARY) is None
    # Exchange's spacing: pypsrp reads it, and so does port80 (through pypsrp's code)
    assert ours.unwrap_message(body.replace(b"--Encrypted Boundary\r\n", b"-- Encrypted Boundary\r\n", 1),
                               BOUNDARY) == message


def test_a_wrong_length_is_pypsrps_error(kdc):
    client, server = _pair(kdc, "kerberos")
    ours = Port80Encryption(client, WinRMEncryption.SPNEGO)
    theirs = WinRMEncryption(server, WinRMEncryption.SPNEGO)
    message = b"x" * 500
    _, body = theirs.wrap_message(message)
    body = body.replace(b"Length=500", b"Length=501", 1)
    with pytest.raises(WinRMError, match="actual: 500 != expected: 501"):
        ours.unwrap_message(body, BOUNDARY)


def test_ntlm_contexts_keep_pyspnegos_code_with_the_framing_read_by_offsets(tmp_path, monkeypatch):
    users = tmp_path / "ntlm-users"
    users.write_text(f"LAB:{USER}:{PASSWORD}\n", encoding="utf-8")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    client = spnego.client(f"LAB\\{USER}", PASSWORD, hostname=HOST, protocol="ntlm",
                           options=spnego.NegotiateOptions.wrapping_winrm)
    server = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.wrapping_winrm)
    token = client.step()
    while not (client.complete and server.complete):
        token = server.step(token)
        if token is not None and not client.complete:
            token = client.step(token)
    ours = Port80Encryption(client, WinRMEncryption.SPNEGO)
    theirs = WinRMEncryption(server, WinRMEncryption.SPNEGO)
    assert ours._port80_krb() is None
    for size in SIZES:
        message = os.urandom(size)
        _, body = theirs.wrap_message(message)
        assert ours._port80_unwrap(None, body, BOUNDARY) == message  # the framing by offsets, pyspnego's unwrap
        _, body = ours.wrap_message(message)
        assert theirs.unwrap_message(body, BOUNDARY) == message
        _, body = theirs.wrap_message(message)
        assert ours.unwrap_message(body.replace(b"--Encrypted Boundary\r\n", b"-- Encrypted Boundary\r\n", 1),
                                   BOUNDARY) == message  # pypsrp's code
