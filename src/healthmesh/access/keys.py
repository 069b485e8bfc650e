"""The node's token-signing key: created once as a 0600 PEM file, loaded at start-up.

Access tokens are signed with ES256 (ECDSA P-256) by default, or EdDSA (Ed25519). The key id
(``kid``) is the RFC 7638 JWK thumbprint of the public key, so a rotated key never collides.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from healthmesh.errors import HealthmeshError

__all__ = ["KeyFileError", "SigningKey", "jwk_thumbprint", "load_or_create_signing_key"]

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}


class KeyFileError(HealthmeshError):
    """The signing key file is unreadable, of an unsupported type, or too widely readable."""


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise ValueError("unsupported key type for a thumbprint")
    canonical = json.dumps({k: jwk[k] for k in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _public_jwk(public: PublicKey) -> dict[str, Any]:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return dict(ECAlgorithm.to_jwk(public, as_dict=True))
    return dict(OKPAlgorithm.to_jwk(public, as_dict=True))


@dataclass(frozen=True)
class SigningKey:
    """A private signing key with its JWS algorithm and key id."""

    private_key: PrivateKey
    alg: str
    kid: str

    @classmethod
    def from_private_key(cls, key: PrivateKey) -> SigningKey:
        """Wrap an EC P-256 (ES256) or Ed25519 (EdDSA) private key."""
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise KeyFileError("EC signing keys must use curve P-256 (ES256)")
            alg = "ES256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            alg = "EdDSA"
        else:
            raise KeyFileError("signing key must be EC P-256 or Ed25519")
        return cls(key, alg, jwk_thumbprint(_public_jwk(key.public_key())))

    @classmethod
    def generate(cls, alg: str = "ES256") -> SigningKey:
        """A fresh in-memory key (``ES256`` or ``EdDSA``)."""
        if alg == "ES256":
            return cls.from_private_key(ec.generate_private_key(ec.SECP256R1()))
        if alg == "EdDSA":
            return cls.from_private_key(ed25519.Ed25519PrivateKey.generate())
        raise ValueError("alg must be ES256 or EdDSA")

    @functools.cached_property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK with ``kid``, ``alg`` and ``use``."""
        jwk = _public_jwk(self.public_key)
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _load(path: Path) -> SigningKey:
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError("signing key file is readable by others; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError("signing key file is not an unencrypted PKCS#8 PEM key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyFileError("signing key must be EC P-256 or Ed25519")
    return SigningKey.from_private_key(key)


def load_or_create_signing_key(path: Path, *, alg: str = "ES256") -> SigningKey:
    """Load the PEM key at ``path``, or create one (mode 0600, parent 0700) if it is absent.

    A file that group or others can read is refused rather than used.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "keys" / "token.pem"
    >>> load_or_create_signing_key(p).alg, oct(p.stat().st_mode & 0o777)
    ('ES256', '0o600')
    """
    path = Path(path)
    if path.exists():
        return _load(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = SigningKey.generate(alg)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return _load(path)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.to_pem())
    return key
