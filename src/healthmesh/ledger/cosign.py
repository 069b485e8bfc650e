"""C2SP tlog-cosignature v1 (Ed25519, signature type 0x04) and quorum finality.

A cosignature is a note signature over ``"cosignature/v1\\ntime <t>\\n" || checkpoint body``
whose bytes are ``u64 timestamp || Ed25519 signature``. A checkpoint is *final* for a relying
party once at least ``quorum`` distinct trusted witnesses have cosigned it.
"""

from __future__ import annotations

import struct
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from healthmesh.ledger.checkpoint import Checkpoint, open_checkpoint
from healthmesh.ledger.note import (
    SIG_COSIGNATURE_ED25519,
    Ed25519Key,
    Note,
    NoteError,
    NoteSignature,
    NoteVerificationError,
    NoteVerifier,
    format_vkey,
    key_id_for,
    parse_vkey,
)

_MAX_TS = 2**63 - 1


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosigner signs."""
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


class CosignatureSigner(Ed25519Key):
    """A witness's cosigning key. ``CosignatureSigner.generate("node-a.example/witness")``."""

    sig_type = SIG_COSIGNATURE_ED25519

    def cosign(self, body: str, timestamp: int | None = None) -> NoteSignature:
        """A cosignature line over the checkpoint ``body`` at ``timestamp`` (now by default)."""
        ts = int(time.time()) if timestamp is None else timestamp
        if not 0 < ts <= _MAX_TS:
            raise NoteError("cosignature timestamp out of range")
        sig = self.key.sign(cosigned_message(body, ts))
        return NoteSignature(self.name, self.key_id, struct.pack(">Q", ts) + sig)

    def vkey(self) -> str:
        """The verifier key text of this cosigner."""
        return format_vkey(self.name, self.sig_type, self.public)


class CosignatureVerifier:
    """A trusted witness key; a :class:`~healthmesh.ledger.note.NoteVerifier`."""

    def __init__(self, name: str, public: bytes, max_future_s: int = 600) -> None:
        self.name = name
        self.public = public
        self.key = Ed25519PublicKey.from_public_bytes(public)
        self.key_id = key_id_for(name, SIG_COSIGNATURE_ED25519, public)
        self.max_future_s = max_future_s

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """From a type-0x04 verifier key."""
        name, sig_type, public = parse_vkey(vkey)
        if sig_type != SIG_COSIGNATURE_ED25519 or len(public) != 32:
            raise NoteError("not an Ed25519 cosignature verifier key")
        return cls(name, public)

    def timestamp(self, signature: bytes) -> int:
        """The timestamp inside a cosignature."""
        return int(struct.unpack(">Q", signature[:8])[0])

    def verify(self, text: str, signature: bytes) -> bool:
        """See :class:`~healthmesh.ledger.note.NoteVerifier`."""
        if len(signature) != 72:
            return False
        ts = self.timestamp(signature)
        if ts > _MAX_TS or ts > time.time() + self.max_future_s:
            return False
        try:
            self.key.verify(signature[8:], cosigned_message(text, ts))
        except InvalidSignature:
            return False
        return True


def verify_final_checkpoint(
    data: str | bytes | Note,
    log_verifier: NoteVerifier,
    witnesses: list[CosignatureVerifier],
    quorum: int,
    origin: str | None = None,
) -> tuple[Checkpoint, list[str]]:
    """Verify the log signature and at least ``quorum`` distinct witness cosignatures.

    Returns the checkpoint and the names of the witnesses that cosigned it. Raises
    :class:`NoteVerificationError` if the quorum is not met or any trusted signature fails.
    """
    wnames = {w.name for w in witnesses}
    if len(wnames) != len(witnesses):
        raise NoteVerificationError("witness names must be distinct")
    extra: list[NoteVerifier] = list(witnesses)
    cp, _, names = open_checkpoint(data, log_verifier, origin, extra)
    cosigners = [n for n in names if n in wnames]
    if len(cosigners) < quorum:
        raise NoteVerificationError(
            f"checkpoint cosigned by {len(cosigners)} trusted witnesses, quorum is {quorum}"
        )
    return cp, cosigners
