"""Sealed envelopes: only the recipient opens them, any change to them is detected."""

from __future__ import annotations

import base64

import pytest

from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import Envelope
from healthmesh.federation.sealing import SealError, open_envelope, seal, verify_envelope

HUB = Identity.generate("hub")
NODE = Identity.generate("hosp-a")
CTX = "a" * 64
PAYLOAD = '{"n": 42, "note": "体检"}'.encode()


def _env() -> Envelope:
    return seal(PAYLOAD, HUB.public_record(), NODE, CTX)


def test_round_trip_and_fresh_ciphertexts() -> None:
    e1, e2 = _env(), _env()
    assert open_envelope(e1, HUB, [NODE.public_record()], CTX) == PAYLOAD
    assert e1.ciphertext != e2.ciphertext and e1.epk != e2.epk
    assert PAYLOAD not in base64.b64decode(e1.ciphertext)
    assert verify_envelope(e1, [NODE.public_record()], CTX) == NODE.public_record()
    assert Envelope.model_validate_json(e1.model_dump_json()) == e1


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[len(raw) // 2] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "epk", "signature"])
def test_tampered_field_is_refused(field: str) -> None:
    env = _env()
    bad = env.model_copy(update={field: _flip(getattr(env, field))})
    with pytest.raises(SealError, match="signature does not verify"):
        open_envelope(bad, HUB, [NODE.public_record()], CTX)


def _resign(env: Envelope, signer: Identity, **update: str) -> Envelope:
    from healthmesh.federation.sealing import _signed_bytes

    e = env.model_copy(update=update)
    sig = base64.b64encode(signer.sign(_signed_bytes(e))).decode()
    return e.model_copy(update={"signature": sig})


def test_tampered_then_resigned_fails_the_aead_tag() -> None:
    env = _env()
    bad = _resign(env, NODE, ciphertext=_flip(env.ciphertext))
    with pytest.raises(SealError, match="integrity"):
        open_envelope(bad, HUB, [NODE.public_record()], CTX)
    # a swapped context breaks the key derivation even when re-signed
    other = _resign(env, NODE, context="b" * 64)
    with pytest.raises(SealError, match="integrity"):
        open_envelope(other, HUB, [NODE.public_record()], "b" * 64)


def test_forged_wrong_context_wrong_recipient() -> None:
    forger = Identity.generate("hosp-a")  # same name, unregistered key
    forged = seal(PAYLOAD, HUB.public_record(), forger, CTX)
    with pytest.raises(SealError, match="key not valid"):
        open_envelope(forged, HUB, [NODE.public_record()], CTX)
    with pytest.raises(SealError, match="another context"):
        open_envelope(_env(), HUB, [NODE.public_record()], "c" * 64)
    with pytest.raises(SealError, match="another key"):
        open_envelope(_env(), Identity.generate("hub"), [NODE.public_record()], CTX)
    low_order = _resign(_env(), NODE, epk=base64.b64encode(bytes(32)).decode())
    with pytest.raises(SealError):
        open_envelope(low_order, HUB, [NODE.public_record()], CTX)
