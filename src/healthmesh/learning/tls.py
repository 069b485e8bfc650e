"""Security of the Flower link: the hub's CA and the SuperLink's TLS certificate, and the key
pairs SuperNodes authenticate with (Flower 1.42's node authentication).

The hub's CA (ECDSA P-256, ``ca.pem`` and ``ca.key``, private key mode 0600) lives in a
directory under the hub's data directory; each SuperLink start gets a server certificate it
signs for the addresses SuperNodes dial. An operator may supply the SuperLink's certificate
instead: ``superlink.pem``, ``superlink.key`` and the CA that signed it (``ca.pem``) in that
directory, with no ``ca.key``. SuperNodes verify the server with the CA certificate, which
reaches them inside the signed study task. Each SuperNode holds a fresh NIST P-384 key pair per
run (OpenSSH format, as ``flower-supernode --auth-supernode-private-key`` and
``flwr supernode register`` read them); the hub registers the public keys of the institutions
that joined, and the SuperLink (``--enable-supernode-auth``) refuses any other.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from healthmesh.errors import InvalidInput

CA_CERT, CA_KEY = "ca.pem", "ca.key"
SERVER_CERT, SERVER_KEY = "superlink.pem", "superlink.key"
#: how long an issued SuperLink certificate is valid (one is issued per SuperLink start)
SERVER_DAYS = 7
CA_DAYS = 3650
_MAX_PEM = 64 * 1024


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "healthmesh"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        if not host or len(host) > 253 or host.startswith("-"):
            raise InvalidInput("a SuperLink host must be an IP address or a DNS name") from None
        return x509.DNSName(host)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class LinkTLS:
    """The files a TLS SuperLink serves with (all three are Flower's ``--ssl-*`` flags)."""

    ca_cert: Path
    certfile: Path
    keyfile: Path

    def ca_pem(self) -> str:
        """The CA certificate SuperNodes verify the SuperLink with (PEM text)."""
        return self.ca_cert.read_text()


class HubCA:
    """The hub's certificate authority for the Flower link (see the module docstring)."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey,
                 cert_path: Path) -> None:
        self.cert, self.key, self.cert_path = cert, key, cert_path

    @classmethod
    def load_or_create(cls, directory: Path, name: str = "healthmesh hub") -> HubCA:
        """The CA kept in ``directory`` (created, 0700, with a new key when absent); jobs that
        start at once share one CA (a lock file serialises the first creation)."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return cls._load_or_create(directory, name)

    @classmethod
    def _load_or_create(cls, directory: Path, name: str) -> HubCA:
        cert_path, key_path = directory / CA_CERT, directory / CA_KEY
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise InvalidInput(f"{key_path.name} is not an EC private key")
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if cert.public_key() != key.public_key():
                raise InvalidInput(f"{cert_path.name} does not belong to {key_path.name}")
            return cls(cert, key, cert_path)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} Flower CA")).issuer_name(_name(f"{name} Flower CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )
        write_private(key_path, _pem_key(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key, cert_path)

    def issue_server(self, directory: Path, hosts: Sequence[str],
                     days: int = SERVER_DAYS) -> LinkTLS:
        """A SuperLink certificate for ``hosts`` (IPs or DNS names) written to ``directory``."""
        if not hosts:
            raise InvalidInput("a SuperLink certificate needs at least one host")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names = list(dict.fromkeys(hosts))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0])).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([_san(h) for h in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        certfile, keyfile = directory / SERVER_CERT, directory / SERVER_KEY
        write_private(keyfile, _pem_key(key))
        certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        ca_copy = directory / CA_CERT
        if ca_copy != self.cert_path:
            ca_copy.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return LinkTLS(ca_copy, certfile, keyfile)


def operator_tls(directory: Path) -> LinkTLS | None:
    """The operator's SuperLink certificate in ``directory`` (``superlink.pem``,
    ``superlink.key``, ``ca.pem``, no ``ca.key``), checked to be signed by that CA; None when
    the directory holds the hub's own CA (or nothing yet)."""
    tls = LinkTLS(directory / CA_CERT, directory / SERVER_CERT, directory / SERVER_KEY)
    if (directory / CA_KEY).exists() or not tls.certfile.exists():
        return None
    for p in (tls.ca_cert, tls.keyfile):
        if not p.exists():
            raise InvalidInput(f"the operator's SuperLink certificate needs {p.name} beside it")
    ca = load_ca_pem(tls.ca_cert.read_text())
    try:
        x509.load_pem_x509_certificate(tls.certfile.read_bytes()).verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise InvalidInput(f"{SERVER_CERT} is not signed by the CA in {CA_CERT}") from None
    return tls


def load_ca_pem(text: object) -> x509.Certificate:
    """A CA certificate from PEM text (what a node receives); InvalidInput otherwise."""
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_PEM:
        raise InvalidInput("'ca_cert' must be a PEM certificate", location="ca_cert")
    try:
        cert = x509.load_pem_x509_certificate(text.encode())
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (ValueError, x509.ExtensionNotFound):
        raise InvalidInput("'ca_cert' must be a PEM CA certificate", location="ca_cert") from None
    if not ca:
        raise InvalidInput("'ca_cert' is not a CA certificate", location="ca_cert")
    return cert


@dataclass(frozen=True)
class NodeKey:
    """A SuperNode's key pair: the private key file (0600) and the OpenSSH public key line."""

    private_path: Path
    public_key: str


def new_node_key(directory: Path) -> NodeKey:
    """A fresh P-384 key pair for one SuperNode and one run, kept in ``directory``."""
    key = ec.generate_private_key(ec.SECP384R1())
    path = directory / "supernode.key"
    write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    return NodeKey(path, public.decode())


def check_node_public_key(text: object) -> str:
    """``text`` if it is an OpenSSH NIST EC public key line (what Flower registers)."""
    if not isinstance(text, str) or not 0 < len(text) <= 1024:
        raise InvalidInput("a SuperNode public key must be an OpenSSH key line")
    try:
        key = serialization.load_ssh_public_key(text.strip().encode())
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput("a SuperNode public key must be an OpenSSH key line") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in (
            "secp256r1", "secp384r1", "secp521r1"):
        raise InvalidInput("a SuperNode public key must be a NIST EC key")
    return text.strip()


@dataclass(frozen=True)
class LinkSecurity:
    """How the hub secures a SuperLink.

    ``tls_dir``: the directory of the hub's CA (or of the operator's certificate, see
    :func:`operator_tls`), e.g. ``<hub data_dir>/flower-tls``; None makes a CA for this
    SuperLink alone in its private working directory (SuperNodes get the CA certificate with
    each run, so either is sound; a kept CA lets operators pin it). ``insecure``: plaintext and
    no SuperNode authentication — a development option only, never the default."""

    tls_dir: Path | None = None
    insecure: bool = False

    def server_tls(self, workdir: Path, hosts: Sequence[str]) -> LinkTLS | None:
        """The SuperLink's TLS files for ``hosts`` (None when insecure)."""
        if self.insecure:
            return None
        if self.tls_dir is not None:
            supplied = operator_tls(self.tls_dir)
            if supplied is not None:
                return supplied
            return HubCA.load_or_create(self.tls_dir).issue_server(workdir / "tls", hosts)
        return HubCA.load_or_create(workdir / "ca").issue_server(workdir / "tls", hosts)
