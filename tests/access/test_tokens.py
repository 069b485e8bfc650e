"""Access tokens: issue and verify, and every way a token must be refused."""

from __future__ import annotations

import base64
import json
import os
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from healthmesh.access import AccessContext, ScopeSet, SigningKey, TokenService
from healthmesh.access.keys import KeyFileError, jwk_thumbprint, load_or_create_signing_key
from healthmesh.access.tokens import InvalidToken
from healthmesh.errors import InvalidInput, Unauthorized

ISS, AUD = "https://node.example/auth", "https://node.example/fhir"
SCOPES = ScopeSet.parse("system/Patient.rs system/Observation.rs?category=laboratory")


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def svc(key) -> TokenService:
    return TokenService(key, issuer=ISS, audience=AUD)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_issue_and_verify_round_trip(svc) -> None:
    token, expires_in = svc.issue("client-1", SCOPES, purpose_of_use="PUBHLTH")
    assert expires_in == 300
    ctx = svc.verify(token)
    assert isinstance(ctx, AccessContext)
    assert ctx.client_id == "client-1"
    assert ctx.scopes == SCOPES
    assert ctx.purpose_of_use == "PUBHLTH"
    assert ctx.patient is None
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["typ"] == "at+jwt"
    assert header["kid"] == svc.key.kid
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 300
    assert claims["scope"] == str(SCOPES)
    assert len({svc.verify(svc.issue("c", SCOPES)[0]).token_id for _ in range(5)}) == 5


def test_eddsa_keys_work_too() -> None:
    svc = TokenService(SigningKey.generate("EdDSA"), issuer=ISS, audience=AUD, lifetime_s=60)
    token, expires_in = svc.issue("c", SCOPES, patient="123")
    assert expires_in == 60
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    assert svc.verify(token).patient == "123"


def test_expired_token_refused(key) -> None:
    past = TokenService(key, issuer=ISS, audience=AUD, clock=lambda: time.time() - 3600)
    token, _ = past.issue("c", SCOPES)
    with pytest.raises(InvalidToken, match="expired") as info:
        TokenService(key, issuer=ISS, audience=AUD).verify(token)
    assert isinstance(info.value, Unauthorized)
    assert info.value.status == 401
    assert 'error="invalid_token"' in info.value.www_authenticate()


def test_not_yet_valid_token_refused(key) -> None:
    future = TokenService(key, issuer=ISS, audience=AUD, clock=lambda: time.time() + 3600)
    token, _ = future.issue("c", SCOPES)
    with pytest.raises(InvalidToken, match="not yet valid"):
        TokenService(key, issuer=ISS, audience=AUD).verify(token)


def test_cached_verification_still_expires(key) -> None:
    svc = TokenService(key, issuer=ISS, audience=AUD, lifetime_s=1, leeway_s=0)
    token, _ = svc.issue("c", SCOPES)
    first = svc.verify(token)
    assert svc.verify(token) is first  # served from the cache
    time.sleep(2.1)
    with pytest.raises(InvalidToken, match="expired"):
        svc.verify(token)
    # a token differing in one signature byte is not served from the cache
    token2, _ = TokenService(key, issuer=ISS, audience=AUD).issue("c", SCOPES)
    svc2 = TokenService(key, issuer=ISS, audience=AUD)
    svc2.verify(token2)
    head, body, sig = token2.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    with pytest.raises(InvalidToken):
        svc2.verify(f"{head}.{body}.{flipped}")


def test_small_clock_skew_is_tolerated(key) -> None:
    ahead = TokenService(key, issuer=ISS, audience=AUD, clock=lambda: time.time() + 2)
    token, _ = ahead.issue("c", SCOPES)
    assert TokenService(key, issuer=ISS, audience=AUD).verify(token).client_id == "c"


def test_forged_signature_refused(svc) -> None:
    # Same kid and claims, signed by an attacker's key.
    attacker = SigningKey.generate()
    forged_key = SigningKey(attacker.private_key, "ES256", svc.key.kid)
    forger = TokenService(forged_key, issuer=ISS, audience=AUD)
    token, _ = forger.issue("c", ScopeSet.parse("system/*.cruds"))
    with pytest.raises(InvalidToken, match="signature"):
        svc.verify(token)


def test_tampered_payload_refused(svc) -> None:
    token, _ = svc.issue("c", ScopeSet.parse("system/Patient.r"))
    head, _payload, sig = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["scope"] = "system/*.cruds"
    with pytest.raises(InvalidToken):
        svc.verify(f"{head}.{_b64(claims)}.{sig}")


def test_wrong_issuer_and_audience_refused(key) -> None:
    token, _ = TokenService(key, issuer="https://evil/auth", audience=AUD).issue("c", SCOPES)
    with pytest.raises(InvalidToken, match="issuer"):
        TokenService(key, issuer=ISS, audience=AUD).verify(token)
    token, _ = TokenService(key, issuer=ISS, audience="https://other/fhir").issue("c", SCOPES)
    with pytest.raises(InvalidToken, match="audience"):
        TokenService(key, issuer=ISS, audience=AUD).verify(token)


def test_alg_none_refused(svc) -> None:
    claims = jwt.decode(svc.issue("c", SCOPES)[0], options={"verify_signature": False})
    claims["scope"] = "system/*.cruds"
    for header in (
        {"alg": "none", "typ": "at+jwt", "kid": svc.key.kid},
        {"alg": "None", "typ": "at+jwt", "kid": svc.key.kid},
    ):
        with pytest.raises(InvalidToken):
            svc.verify(f"{_b64(header)}.{_b64(claims)}.")


def test_hmac_with_public_key_refused(svc) -> None:
    """Algorithm confusion: HS256 keyed with the server's *public* key must not verify."""
    public_pem = svc.key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(svc.issue("c", SCOPES)[0], options={"verify_signature": False})
    header = _b64({"alg": "HS256", "typ": "at+jwt", "kid": svc.key.kid})
    body = _b64(claims)
    import hashlib
    import hmac

    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="algorithm"):
        svc.verify(f"{header}.{body}.{sig}")


def test_unknown_kid_and_wrong_typ_refused(svc, key) -> None:
    other = TokenService(SigningKey.generate(), issuer=ISS, audience=AUD)
    with pytest.raises(InvalidToken, match="not signed by this server"):
        svc.verify(other.issue("c", SCOPES)[0])
    not_access = jwt.encode(
        {
            "iss": ISS,
            "aud": AUD,
            "sub": "c",
            "scope": "system/*.rs",
            "jti": "x",
            "iat": int(time.time()),
            "nbf": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        key.private_key,
        algorithm="ES256",
        headers={"kid": key.kid, "typ": "JWT"},
    )
    with pytest.raises(InvalidToken, match="not an access token"):
        svc.verify(not_access)


def test_missing_claims_and_garbage_refused(svc, key) -> None:
    no_scope = jwt.encode(
        {
            "iss": ISS,
            "aud": AUD,
            "sub": "c",
            "jti": "x",
            "iat": int(time.time()),
            "nbf": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        key.private_key,
        algorithm="ES256",
        headers={"kid": key.kid, "typ": "at+jwt"},
    )
    with pytest.raises(InvalidToken, match="required claim"):
        svc.verify(no_scope)
    for garbage in ("", "abc", "a.b.c", "x" * 10_000):
        with pytest.raises(InvalidToken):
            svc.verify(garbage)


def test_reserved_claims_cannot_be_overridden(svc) -> None:
    with pytest.raises(InvalidInput):
        svc.issue("c", SCOPES, scope="system/*.cruds")
    with pytest.raises(InvalidInput):
        svc.issue("c", SCOPES, purpose_of_use="NOT-A-CODE")


def test_previous_keys_still_verify_after_rotation(key) -> None:
    old = TokenService(key, issuer=ISS, audience=AUD)
    token, _ = old.issue("c", SCOPES)
    new = TokenService(SigningKey.generate(), issuer=ISS, audience=AUD, previous_keys=[key])
    assert new.verify(token).client_id == "c"
    assert {k["kid"] for k in new.jwks()["keys"]} == {key.kid, new.key.kid}
    assert all("d" not in k for k in new.jwks()["keys"])


def test_key_file_created_private_and_reloaded(tmp_path) -> None:
    path = tmp_path / "secrets" / "token-key.pem"
    first = load_or_create_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    second = load_or_create_signing_key(path)
    assert (first.kid, first.alg) == (second.kid, second.alg)
    ed = load_or_create_signing_key(tmp_path / "ed.pem", alg="EdDSA")
    assert load_or_create_signing_key(tmp_path / "ed.pem").alg == "EdDSA" == ed.alg


def test_key_file_readable_by_others_refused(tmp_path) -> None:
    path = tmp_path / "k.pem"
    load_or_create_signing_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        load_or_create_signing_key(path)


def test_key_file_garbage_refused(tmp_path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"not a key")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError):
        load_or_create_signing_key(path)


def test_kid_is_rfc7638_thumbprint() -> None:
    # RFC 7638 §3.1 example key and its published thumbprint.
    rfc_key = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
        "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(rfc_key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
