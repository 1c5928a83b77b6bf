"""TLS for the lab: a throwaway CA per run and one server certificate whose SANs name every address
and host name the lab serves (urllib3 2.x checks the SAN, never the CN).

The CA certificate is written as PEM so clients validate the lab like a real PKI
(``cert_validation="/path/ca.pem"`` in pypsrp, ``ansible_psrp_ca_cert`` in the inventory). Keys are
ECDSA P-256: fast to generate and to handshake. Nothing here touches the network.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class TLSFiles:
    ca_path: Path  # CA certificate (give this to clients)
    cert_path: Path  # server certificate chain (leaf + CA)
    key_path: Path  # server private key (mode 0600)

    def server_context(self) -> ssl.SSLContext:
        return server_context(self.cert_path, self.key_path)


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "port80 lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _split_names(names: Iterable[str]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = []
    seen: set[str] = set()
    for n in names:
        n = str(n).strip()
        if not n or n.lower() in seen:
            continue
        seen.add(n.lower())
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    return sans


class LabCA:
    """A throwaway CA (ECDSA P-256) that issues the lab's server certificates."""

    def __init__(self, valid_days: int = 30) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        self.not_before = now - datetime.timedelta(hours=1)
        self.not_after = now + datetime.timedelta(days=valid_days)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name("port80 lab CA")
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(self.not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.write_bytes(self.pem)
        return path

    def issue(self, names: Iterable[str], key: ec.EllipticCurvePrivateKey) -> bytes:
        """A server certificate for ``names`` (IPs and DNS names, as SANs) and ``key``: PEM of leaf + CA."""
        sans = _split_names(names) or [x509.DNSName("localhost")]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("port80 lab WinRM"))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(self.not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, data_encipherment=False,
                                         key_agreement=True, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM) + self.pem


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    """The private key as PKCS#8 PEM, mode 0600."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return path


def generate(directory: Path, names: Iterable[str], valid_days: int = 30) -> TLSFiles:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` into ``directory`` for ``names`` (IPs and DNS names)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = LabCA(valid_days)
    key = new_key()
    files = TLSFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.write(files.ca_path)
    files.cert_path.write_bytes(ca.issue(names, key))
    write_key(key, files.key_path)
    return files


def generate_groups(directory: Path, groups: list[list[str]], valid_days: int = 30) -> list[TLSFiles]:
    """One CA, one key, and one certificate per group of names: ``server.pem`` (group 0), ``server-1.pem``...

    A fleet of thousands of hosts gets one certificate per few dozen hosts rather than one naming them
    all: a certificate with 4,000 SANs is 47 KB and triples the cost of every TLS handshake."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = LabCA(valid_days)
    key = new_key()
    ca_path = ca.write(directory / "ca.pem")
    key_path = write_key(key, directory / "server.key")
    out = []
    for i, names in enumerate(groups):
        cert_path = directory / ("server.pem" if i == 0 else f"server-{i}.pem")
        cert_path.write_bytes(ca.issue(names, key))
        out.append(TLSFiles(ca_path, cert_path, key_path))
    return out


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx
