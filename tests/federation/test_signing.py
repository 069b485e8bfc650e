"""Signed requests and responses; single-use nonces in memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from healthmesh.errors import Unauthorized
from healthmesh.federation.identity import Identity
from healthmesh.federation.nonces import SqlNonceStore
from healthmesh.federation.signing import (
    H_KEY,
    H_NONCE,
    H_SIGNATURE,
    H_TIMESTAMP,
    MemoryNonceStore,
    NonceStore,
    RequestVerifier,
    request_message,
    sign_request,
    sign_response,
    verify_response,
)

from .conftest import Clock

NODE = Identity.generate("hosp-a")
HUB = Identity.generate("hub")
PATH = "/federation/v1/poll?x=1"
BODY = b'{"max_n": 3}'


@pytest.fixture
def nonces(backend: str | None) -> NonceStore:
    return MemoryNonceStore() if backend is None else SqlNonceStore(backend, sweep_every=2)


def _verifier(nonces: NonceStore, clock: Clock) -> RequestVerifier:
    keys = {"hosp-a": [NODE.public_record()]}
    return RequestVerifier(lambda i: keys.get(i, []), nonces, window_s=300, clock=clock)


def test_canonical_message_has_domain_separation() -> None:
    msg = request_message("post", PATH, 5, "n" * 16, b"")
    assert msg.startswith(b"healthmesh-federation/v1\nrequest\nPOST\n/federation/v1/poll?x=1\n5\n")
    assert msg.endswith(b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n")


def test_valid_request_once_then_replay_refused(nonces: NonceStore, clock: Clock) -> None:
    v = _verifier(nonces, clock)
    h = sign_request(NODE, "POST", PATH, BODY, now=clock())
    who = v.verify("POST", PATH, h, BODY)
    assert (who.institution, who.key_id, who.nonce) == ("hosp-a", NODE.key_id, h[H_NONCE])
    with pytest.raises(Unauthorized, match="replayed"):
        v.verify("POST", PATH, h, BODY)
    # header names are case-insensitive
    h2 = {k.lower(): val for k, val in sign_request(NODE, "POST", PATH, BODY, now=clock()).items()}
    assert v.verify("POST", PATH, h2, BODY).institution == "hosp-a"


def test_nonce_store_forgets_only_expired_nonces(nonces: NonceStore) -> None:
    assert nonces.use("hosp-a", "n" * 16, expires_at=100.0, now=0.0)
    assert not nonces.use("hosp-a", "n" * 16, expires_at=100.0, now=50.0)
    assert nonces.use("hosp-b", "n" * 16, expires_at=100.0, now=50.0)  # per institution
    for i in range(5):  # triggers sweeps in the SQL store
        assert nonces.use("hosp-a", f"{i:016d}", expires_at=300.0, now=150.0)
    assert nonces.use("hosp-a", "n" * 16, expires_at=400.0, now=150.0)  # long expired
    assert not nonces.use("hosp-a", "n" * 16, expires_at=400.0, now=160.0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m, p, h, b: ("GET", p, h, b), "does not verify"),
        (lambda m, p, h, b: (m, "/federation/v1/poll?x=2", h, b), "does not verify"),
        (lambda m, p, h, b: (m, p, h, b + b" "), "does not verify"),
        (
            lambda m, p, h, b: (m, p, h | {H_TIMESTAMP: str(int(h[H_TIMESTAMP]) + 1)}, b),
            "does not verify",
        ),
        (lambda m, p, h, b: (m, p, h | {H_KEY: "0000000000000000"}, b), "not an active key"),
        (lambda m, p, h, b: (m, p, h | {H_SIGNATURE: "%%%"}, b), "malformed"),
        (lambda m, p, h, b: (m, p, h | {H_NONCE: "short"}, b), "malformed"),
        (lambda m, p, h, b: (m, p, {k: v for k, v in h.items() if k != H_KEY}, b), "malformed"),
    ],
)
def test_tampered_requests_refused(change, match: str, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    nonces = MemoryNonceStore()
    v = _verifier(nonces, clock)
    h = sign_request(NODE, "POST", PATH, BODY, now=clock())
    with pytest.raises(Unauthorized, match=match):
        v.verify(*change("POST", PATH, h, BODY))
    assert v.verify("POST", PATH, h, BODY).institution == "hosp-a"  # nonce was not burnt


def test_time_window(clock: Clock) -> None:
    v = _verifier(MemoryNonceStore(), clock)
    for skew in (-301, 301):
        h = sign_request(NODE, "POST", PATH, BODY, now=clock() + skew)
        with pytest.raises(Unauthorized, match="window"):
            v.verify("POST", PATH, h, BODY)
    for skew in (-300, 300):
        h = sign_request(NODE, "POST", PATH, BODY, now=clock() + skew)
        assert v.verify("POST", PATH, h, BODY).institution == "hosp-a"


def test_unknown_institution_and_foreign_key(clock: Clock) -> None:
    v = _verifier(MemoryNonceStore(), clock)
    stranger = Identity.generate("hosp-z")
    with pytest.raises(Unauthorized, match="not an active key"):
        v.verify("POST", PATH, sign_request(stranger, "POST", PATH, BODY, now=clock()), BODY)
    impostor = Identity.generate("hosp-a")
    with pytest.raises(Unauthorized, match="not an active key"):
        v.verify("POST", PATH, sign_request(impostor, "POST", PATH, BODY, now=clock()), BODY)


def test_response_signature_binds_status_nonce_and_body() -> None:
    rec = HUB.public_record()
    h = sign_response(HUB, 200, "n" * 16, b'{"tasks": []}')
    verify_response(rec, 200, "n" * 16, h, b'{"tasks": []}')
    for status, nonce, body in [
        (201, "n" * 16, b'{"tasks": []}'),
        (200, "m" * 16, b'{"tasks": []}'),
        (200, "n" * 16, b'{"tasks": [1]}'),
    ]:
        with pytest.raises(Unauthorized, match="does not verify"):
            verify_response(rec, status, nonce, h, body)
    forged = sign_response(Identity.generate("hub"), 200, "n" * 16, b"{}")
    with pytest.raises(Unauthorized, match="not signed by the hub"):
        verify_response(rec, 200, "n" * 16, forged, b"{}")
