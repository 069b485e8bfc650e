"""An institution's federation identity: an Ed25519 signing key and an X25519 encryption key.

Nodes and the hub each have one. The private keys live as PKCS#8 PEM files (mode 0600) in a
directory (``federation-sign.pem``, ``federation-enc.pem`` plus ``federation-identity.json``
naming the institution); the public part travels as a :class:`PublicRecord`, whose
``key_id`` (a short SHA-256 fingerprint of both public keys) an operator compares out of band
before approving a registration.

Example::

    ident = load_or_create(Path("/var/lib/healthmesh/node"), "hosp-a")
    record = ident.public_record()          # JSON-able, sent to the hub at registration
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, model_validator

from healthmesh.errors import InvalidInput

INSTITUTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SIGN_FILE = "federation-sign.pem"
ENC_FILE = "federation-enc.pem"
ID_FILE = "federation-identity.json"
PUBLIC_FILE = "federation-public.json"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def identity_dir(data_dir: Path) -> Path:
    """Where a node or hub keeps its federation identity inside its data directory."""
    return data_dir / "federation"


def fingerprint(sign_public: bytes, enc_public: bytes) -> str:
    """The key id of a key pair: first 16 hex digits of SHA-256(sign key || enc key)."""
    return hashlib.sha256(b"healthmesh-federation/v1 key\n" + sign_public + enc_public).hexdigest()[
        :16
    ]


def _b64_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("key is not base64") from exc
    if len(raw) != 32:
        raise ValueError("key must be 32 bytes")
    return raw


class PublicRecord(BaseModel):
    """The public identity of an institution (or the hub), as sent over the wire."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    institution: str = Field(pattern=INSTITUTION_PATTERN)
    #: base64 of the raw 32-byte Ed25519 public key
    sign_key: str
    #: base64 of the raw 32-byte X25519 public key
    enc_key: str
    #: :func:`fingerprint` of the two keys (checked)
    key_id: str

    @model_validator(mode="after")
    def _check(self) -> PublicRecord:
        if fingerprint(_b64_key(self.sign_key), _b64_key(self.enc_key)) != self.key_id:
            raise ValueError("key_id does not match the keys")
        return self

    def sign_public(self) -> Ed25519PublicKey:
        """The Ed25519 verification key."""
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.sign_key))

    def enc_public(self) -> X25519PublicKey:
        """The X25519 public encryption key."""
        return X25519PublicKey.from_public_bytes(base64.b64decode(self.enc_key))

    def enc_bytes(self) -> bytes:
        """The raw X25519 public key."""
        return base64.b64decode(self.enc_key)


@dataclass(frozen=True)
class Identity:
    """An institution's private keys. ``Identity.generate("hosp-a")`` for a fresh one."""

    institution: str
    sign_key: Ed25519PrivateKey
    enc_key: X25519PrivateKey

    @classmethod
    def generate(cls, institution: str) -> Identity:
        """Fresh random keys for ``institution``."""
        _check_institution(institution)
        return cls(institution, Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    def public_record(self) -> PublicRecord:
        """The public part (what the hub registers)."""
        return self._record

    @cached_property
    def _record(self) -> PublicRecord:
        sp = self.sign_key.public_key().public_bytes(*_RAW)
        ep = self.enc_key.public_key().public_bytes(*_RAW)
        return PublicRecord(
            institution=self.institution,
            sign_key=base64.b64encode(sp).decode(),
            enc_key=base64.b64encode(ep).decode(),
            key_id=fingerprint(sp, ep),
        )

    @cached_property
    def key_id(self) -> str:
        """The fingerprint of this identity's public keys."""
        return self.public_record().key_id

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature over ``message``."""
        return self.sign_key.sign(message)

    def save(self, directory: Path) -> None:
        """Write the key files (0600) into ``directory``; refuses to overwrite existing ones."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_private(directory / SIGN_FILE, _pem(self.sign_key))
        _write_private(directory / ENC_FILE, _pem(self.enc_key))
        _write_private(
            directory / ID_FILE, (json.dumps({"institution": self.institution}) + "\n").encode()
        )
        (directory / PUBLIC_FILE).write_text(self.public_record().model_dump_json(indent=2) + "\n")


def _check_institution(institution: str) -> None:
    if not re.fullmatch(INSTITUTION_PATTERN, institution):
        raise InvalidInput(
            "institution id must be 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
        )


def _pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def load(directory: Path) -> Identity:
    """Read an identity saved by :meth:`Identity.save`; :class:`InvalidInput` if unreadable."""
    try:
        institution = str(json.loads((directory / ID_FILE).read_text())["institution"])
        sign = serialization.load_pem_private_key((directory / SIGN_FILE).read_bytes(), None)
        enc = serialization.load_pem_private_key((directory / ENC_FILE).read_bytes(), None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("unreadable federation identity files") from exc
    if not isinstance(sign, Ed25519PrivateKey) or not isinstance(enc, X25519PrivateKey):
        raise InvalidInput("federation identity files hold the wrong key types")
    _check_institution(institution)
    return Identity(institution, sign, enc)


def load_or_create(directory: Path, institution: str) -> Identity:
    """The identity in ``directory``, created for ``institution`` when there is none.

    Refuses (:class:`InvalidInput`) when the directory holds another institution's identity
    or only some of the files.
    """
    present = [(directory / f).exists() for f in (SIGN_FILE, ENC_FILE, ID_FILE)]
    if not any(present):
        ident = Identity.generate(institution)
        ident.save(directory)
        return ident
    if not all(present):
        raise InvalidInput("federation identity directory is incomplete; restore or remove it")
    ident = load(directory)
    if ident.institution != institution:
        raise InvalidInput(
            f"directory holds the identity of {ident.institution}, not {institution}"
        )
    return ident
