"""Sealed, signed payloads: what a node releases can be read only by the hub and was provably
written by that node for that task.

``seal``: a fresh ephemeral X25519 key agrees a secret with the recipient's X25519 key;
HKDF-SHA256 derives a ChaCha20-Poly1305 key from it with an ``info`` that binds the protocol
version, the context (the task id), the sender, both public keys; the payload is encrypted
with the context and sender as associated data; the sender signs (Ed25519) everything in the
envelope. ``open_envelope`` checks the signature against the sender's registered keys first,
then the AEAD tag, and raises :class:`SealError` on any mismatch — it never returns bytes from
a tampered or forged envelope.

Why by hand: this is the libsodium "sealed box" plus a sender signature, but libsodium
bindings (PyNaCl) are not a dependency and ``cryptography`` (already one) provides every
primitive; the construction is ~60 lines of composition, no primitive is implemented here.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from healthmesh.errors import InvalidInput
from healthmesh.federation.identity import Identity, PublicRecord
from healthmesh.federation.messages import Envelope

VERSION = "healthmesh-federation/v1"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


class SealError(InvalidInput):
    """A sealed envelope is malformed, forged or tampered with, or not for this recipient."""

    code = "security"


def _info(context: str, sender: str, epk: bytes, recipient: bytes) -> bytes:
    head = f"{VERSION}\nseal\n{context}\n{sender}\n".encode()
    return head + epk + recipient


def _aad(context: str, sender: str) -> bytes:
    return f"{VERSION}\naad\n{context}\n{sender}\n".encode()


def _signed_bytes(env: Envelope) -> bytes:
    fields = (
        env.v,
        "envelope",
        env.sender,
        env.sender_key_id,
        env.recipient_key_id,
        env.context,
        env.epk,
        env.nonce,
        env.ciphertext,
    )
    return ("\n".join(fields) + "\n").encode()


def _key(shared: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def seal(payload: bytes, recipient: PublicRecord, sender: Identity, context: str) -> Envelope:
    """Encrypt ``payload`` to ``recipient`` and sign it as ``sender``, bound to ``context``.

    Example::

        env = seal(b'{"n": 42}', hub_record, node_identity, context=task.id)
    """
    eph = X25519PrivateKey.generate()
    epk = eph.public_key().public_bytes(*_RAW)
    rpk = recipient.enc_bytes()
    key = _key(eph.exchange(recipient.enc_public()), _info(context, sender.institution, epk, rpk))
    nonce = os.urandom(12)
    ct = ChaCha20Poly1305(key).encrypt(nonce, payload, _aad(context, sender.institution))
    unsigned = Envelope(
        sender=sender.institution,
        sender_key_id=sender.key_id,
        recipient_key_id=recipient.key_id,
        context=context,
        epk=_b64(epk),
        nonce=_b64(nonce),
        ciphertext=_b64(ct),
        signature="",
    )
    sig = sender.sign(_signed_bytes(unsigned))
    return unsigned.model_copy(update={"signature": _b64(sig)})


def _decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SealError(f"sealed envelope: malformed {what}") from exc


def verify_envelope(
    env: Envelope, sender_keys: Sequence[PublicRecord], context: str
) -> PublicRecord:
    """Check the sender's signature and the context (no decryption); the key that signed.

    ``sender_keys`` are the sender's currently valid keys; raises :class:`SealError`.
    """
    if env.context != context:
        raise SealError("sealed envelope is bound to another context")
    key = next(
        (k for k in sender_keys if k.key_id == env.sender_key_id and k.institution == env.sender),
        None,
    )
    if key is None:
        raise SealError("sealed envelope is signed by a key not valid for its sender")
    try:
        key.sign_public().verify(_decode(env.signature, "signature"), _signed_bytes(env))
    except InvalidSignature as exc:
        raise SealError("sealed envelope signature does not verify (forged or tampered)") from exc
    return key


def open_envelope(
    env: Envelope, recipient: Identity, sender_keys: Sequence[PublicRecord], context: str
) -> bytes:
    """The payload of ``env`` after checking signature, context, recipient and tag.

    Raises :class:`SealError` when the envelope is forged, tampered with, bound to another
    context or sealed to another key.
    """
    verify_envelope(env, sender_keys, context)
    if env.recipient_key_id != recipient.key_id:
        raise SealError("sealed envelope is sealed to another key")
    epk = _decode(env.epk, "ephemeral key")
    nonce = _decode(env.nonce, "nonce")
    if len(epk) != 32 or len(nonce) != 12:
        raise SealError("sealed envelope: malformed ephemeral key or nonce")
    rpk = recipient.enc_key.public_key().public_bytes(*_RAW)
    try:
        shared = recipient.enc_key.exchange(X25519PublicKey.from_public_bytes(epk))
    except ValueError as exc:  # a low-order point
        raise SealError("sealed envelope: unusable ephemeral key") from exc
    key = _key(shared, _info(context, env.sender, epk, rpk))
    try:
        return ChaCha20Poly1305(key).decrypt(
            nonce, _decode(env.ciphertext, "ciphertext"), _aad(context, env.sender)
        )
    except InvalidTag as exc:
        raise SealError("sealed envelope failed its integrity check (tampered)") from exc
