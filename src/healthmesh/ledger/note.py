"""C2SP signed notes (c2sp.org/signed-note): parsing, formatting, signing and verification.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(key ID || signature)``. Verifiers are keyed by ``(name, key ID)``;
unknown signatures are ignored, a known signature that fails rejects the note, and a note
with no verified signature is rejected. Ed25519 (type 0x01) keys and their *vkey* text form
are provided here; ECDSA P-256 verification (type 0x02, as Sigstore Rekor v1 checkpoints use)
is included so real Rekor checkpoints can be checked; cosignatures live in :mod:`.cosign`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from healthmesh.errors import InvalidInput, LedgerIntegrityError

SIG_ED25519 = 0x01
SIG_ECDSA = 0x02
SIG_COSIGNATURE_ED25519 = 0x04
_DASH = "\u2014"
MAX_SIGNATURES = 64


class NoteError(InvalidInput):
    """A signed note is malformed."""


class NoteVerificationError(LedgerIntegrityError):
    """A signed note's signatures do not verify against the trusted keys."""

    status = 403
    code = "security"


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, with its trailing newline."""
        blob = base64.b64encode(self.key_id + self.signature).decode()
        return f"{_DASH} {self.name} {blob}\n"


@dataclass
class Note:
    """A note text (ending in a newline) and its signatures."""

    text: str
    signatures: list[NoteSignature] = field(default_factory=list)

    def format(self) -> str:
        """The note in its wire form."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


class NoteSigner(Protocol):
    """A key that can sign note texts."""

    name: str
    key_id: bytes

    def sign(self, text: str) -> bytes:
        """Signature bytes (without the key ID) over the note text."""
        ...


class NoteVerifier(Protocol):
    """A trusted public key for notes."""

    name: str
    key_id: bytes

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` (without the key ID) is valid over ``text``."""
        ...


def key_id_for(name: str, sig_type: int, public: bytes) -> bytes:
    """``SHA-256(name || 0x0A || type || public key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError("note key names must be non-empty without spaces or '+'")


def parse_note(data: str | bytes) -> Note:
    """Split a signed note into text and signature lines (no verification)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in data):
        raise NoteError("note contains control characters")
    if not data.endswith("\n"):
        raise NoteError("note must end with a newline")
    split = data.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block")
    text, sig_block = data[: split + 1], data[split + 2 :]
    sigs: list[NoteSignature] = []
    for line in sig_block.splitlines():
        if not line.startswith(_DASH + " "):
            raise NoteError("malformed signature line")
        parts = line[2:].split(" ")
        if len(parts) != 2:
            raise NoteError("malformed signature line")
        name, blob = parts
        _check_name(name)
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error as exc:
            raise NoteError("signature is not base64") from exc
        if len(raw) < 5:
            raise NoteError("signature too short")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    if not sigs:
        raise NoteError("note has no signatures")
    if len(sigs) > MAX_SIGNATURES:
        raise NoteError("too many signatures on a note")
    return Note(text, sigs)


def sign_note(text: str, *signers: NoteSigner) -> Note:
    """Sign ``text`` (which must end in a newline) with each signer."""
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    return Note(text, [NoteSignature(s.name, s.key_id, s.sign(text)) for s in signers])


def verify_note(data: str | bytes | Note, verifiers: list[NoteVerifier]) -> tuple[Note, list[str]]:
    """Verify a note; return it with the names of the keys whose signatures verified.

    Raises :class:`NoteVerificationError` when a known key's signature fails or when no
    known key signed.
    """
    note = data if isinstance(data, Note) else parse_note(data)
    known = {(v.name, v.key_id): v for v in verifiers}
    ok: list[str] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        if not v.verify(note.text, sig.signature):
            raise NoteVerificationError("a signature from a trusted key failed to verify")
        if sig.name not in ok:
            ok.append(sig.name)
    if not ok:
        raise NoteVerificationError("no signature from a trusted key")
    return note, ok


class Ed25519Key:
    """An Ed25519 private key with a name, shared by note signers and witness cosigners;
    subclasses set ``sig_type``."""

    sig_type: int

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self.key = key
        self.public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id_for(name, self.sig_type, self.public)

    @classmethod
    def generate(cls, name: str) -> Self:
        """A fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Self:
        """The key with this 32-byte private seed."""
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        """The 32-byte private seed (keep secret)."""
        return self.key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )


class Ed25519Signer(Ed25519Key):
    """A note signing key (type 0x01). ``Ed25519Signer.generate("hub.example/log")``."""

    sig_type = SIG_ED25519

    def sign(self, text: str) -> bytes:
        """See :class:`NoteSigner`."""
        return self.key.sign(text.encode())

    def vkey(self) -> str:
        """The verifier key text ``name+keyid+base64(type||pubkey)``."""
        return format_vkey(self.name, self.sig_type, self.public)


class Ed25519Verifier:
    """A trusted Ed25519 note key (type 0x01)."""

    sig_type = SIG_ED25519

    def __init__(self, name: str, public: bytes) -> None:
        _check_name(name)
        self.name = name
        self.public = public
        self.key = Ed25519PublicKey.from_public_bytes(public)
        self.key_id = key_id_for(name, self.sig_type, public)

    def verify(self, text: str, signature: bytes) -> bool:
        """See :class:`NoteVerifier`."""
        return self.verify_bytes(text.encode(), signature)

    def verify_bytes(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature over ``message``."""
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class EcdsaVerifier:
    """A trusted ECDSA P-256 note key (type 0x02; key ID = SHA-256 of the SPKI DER)."""

    def __init__(self, name: str, spki_der: bytes) -> None:
        self.name = name
        key = serialization.load_der_public_key(spki_der)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise NoteError("not an ECDSA public key")
        self.key = key
        self.key_id = hashlib.sha256(spki_der).digest()[:4]

    def verify(self, text: str, signature: bytes) -> bool:
        """See :class:`NoteVerifier`."""
        try:
            self.key.verify(signature, text.encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def format_vkey(name: str, sig_type: int, public: bytes) -> str:
    """Encode a verifier key."""
    kid = key_id_for(name, sig_type, public).hex()
    return f"{name}+{kid}+{base64.b64encode(bytes([sig_type]) + public).decode()}"


def parse_vkey(vkey: str) -> tuple[str, int, bytes]:
    """Decode a verifier key into ``(name, signature type, public key)``; checks the key ID."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("malformed verifier key")
    name, kid_hex, blob = parts
    _check_name(name)
    try:
        raw = base64.b64decode(blob, validate=True)
        kid = bytes.fromhex(kid_hex)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("malformed verifier key") from exc
    if len(raw) < 2 or len(kid) != 4:
        raise NoteError("malformed verifier key")
    sig_type, public = raw[0], raw[1:]
    if key_id_for(name, sig_type, public) != kid:
        raise NoteError("verifier key ID does not match the key")
    return name, sig_type, public


def ed25519_verifier_from_vkey(vkey: str) -> Ed25519Verifier:
    """An :class:`Ed25519Verifier` from a type-0x01 vkey."""
    name, sig_type, public = parse_vkey(vkey)
    if sig_type != SIG_ED25519 or len(public) != 32:
        raise NoteError("not an Ed25519 note verifier key")
    return Ed25519Verifier(name, public)
