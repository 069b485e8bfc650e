"""ClientRegistry contract, run on SQLite and on PostgreSQL (``registry`` fixture)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from healthmesh.access.clients import ClientRegistry
from healthmesh.access.jwks import InvalidJwks
from healthmesh.access.passwords import hash_secret, verify_secret
from healthmesh.access.scopes import InvalidScope
from healthmesh.errors import Conflict, InvalidInput, NotFound, Unauthorized


def _all_values(engine: sa.Engine) -> list[str]:
    """Every value of every row of every table, as text."""
    values = []
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            for row in conn.execute(sa.text(f'select * from "{table}"')):
                values.extend(str(v) for v in row)
    return values


def test_add_get_list(registry: ClientRegistry, es384_key) -> None:
    creds = registry.add("cdc-export", "system/*.rs")
    assert creds.client_secret
    assert len(creds.client_secret) >= 40
    rec = registry.get(creds.client_id)
    assert (rec.name, rec.method, rec.enabled) == ("cdc-export", "client_secret_basic", True)
    assert str(rec.scopes) == "system/*.rs"
    assert rec.jwks is None
    assert rec.created_at.tzinfo is not None
    jwt_creds = registry.add(
        "research-app", "system/Observation.rs", method="private_key_jwt", jwks=es384_key.jwks
    )
    assert jwt_creds.client_secret is None
    assert registry.get(jwt_creds.client_id).jwks == es384_key.jwks
    url_creds = registry.add(
        "remote", "system/Patient.r", method="private_key_jwt", jwks_url="https://app/jwks.json"
    )
    assert registry.get(url_creds.client_id).jwks_url == "https://app/jwks.json"
    assert [c.name for c in registry.list()] == ["cdc-export", "research-app", "remote"]
    with pytest.raises(NotFound):
        registry.get("nope")


def test_secret_stored_only_as_slow_hash(registry: ClientRegistry) -> None:
    creds = registry.add("lab", "system/Observation.cru")
    rotated = registry.rotate_secret(creds.client_id)
    values = _all_values(registry.engine)
    for secret in (creds.client_secret, rotated.client_secret):
        assert not any(secret in v for v in values)
    hashes = [v for v in values if v.startswith("scrypt$")]
    assert len(hashes) == 1
    assert verify_secret(rotated.client_secret, hashes[0])


def test_authenticate_secret(registry: ClientRegistry) -> None:
    creds = registry.add("lab", "system/Observation.rs")
    assert registry.authenticate_secret(creds.client_id, creds.client_secret).name == "lab"
    for cid, secret in [(creds.client_id, "wrong"), ("unknown", creds.client_secret)]:
        with pytest.raises(Unauthorized):
            registry.authenticate_secret(cid, secret)
    new = registry.rotate_secret(creds.client_id)
    with pytest.raises(Unauthorized):
        registry.authenticate_secret(creds.client_id, creds.client_secret)
    assert registry.authenticate_secret(creds.client_id, new.client_secret)
    registry.disable(creds.client_id)
    assert not registry.get(creds.client_id).enabled
    with pytest.raises(Unauthorized):
        registry.authenticate_secret(creds.client_id, new.client_secret)
    registry.enable(creds.client_id)
    assert registry.authenticate_secret(creds.client_id, new.client_secret)


def test_unknown_and_known_ids_cost_the_same(registry: ClientRegistry) -> None:
    creds = registry.add("lab", "system/Observation.rs")
    registry.authenticate_secret(creds.client_id, creds.client_secret)  # warm-up

    def cost(cid: str) -> float:
        start = time.perf_counter()
        with pytest.raises(Unauthorized):
            registry.authenticate_secret(cid, "wrong")
        return time.perf_counter() - start

    known, unknown = cost(creds.client_id), cost("no-such-client")
    assert unknown > 0.3 * known  # the unknown path runs scrypt too


def test_registration_validation(registry: ClientRegistry, rs384_key) -> None:
    registry.add("a", "system/*.rs")
    with pytest.raises(Conflict):
        registry.add("a", "system/*.rs")
    for scopes in ("patient/*.rs", "user/Patient.r", "openid system/*.rs", "system/*.dus", ""):
        with pytest.raises(InvalidScope):
            registry.add("b", scopes)
    with pytest.raises(InvalidInput):
        registry.add("b", "system/*.rs", method="client_secret_post")
    with pytest.raises(InvalidInput):
        registry.add("b", "system/*.rs", method="private_key_jwt")
    with pytest.raises(InvalidInput):
        registry.add("b", "system/*.rs", jwks=rs384_key.jwks)
    with pytest.raises(InvalidInput):
        registry.add(
            "b",
            "system/*.rs",
            method="private_key_jwt",
            jwks=rs384_key.jwks,
            jwks_url="https://x/jwks",
        )
    with pytest.raises(InvalidJwks):
        registry.add("b", "system/*.rs", method="private_key_jwt", jwks_url="http://app/jwks")
    assert [c.name for c in registry.list()] == ["a"]


def test_jwks_validation(registry: ClientRegistry, rs384_key, new_client_key) -> None:
    private_jwk = dict(rs384_key.jwks["keys"][0], d="AQAB")
    no_kid = {k: v for k, v in rs384_key.jwks["keys"][0].items() if k != "kid"}
    p256 = new_client_key("ES384").jwks["keys"][0] | {"crv": "P-256"}
    bad = [
        {},
        {"keys": []},
        {"keys": [private_jwk]},
        {"keys": [no_kid]},
        {"keys": [p256]},
        {"keys": [rs384_key.jwks["keys"][0] | {"alg": "RS256"}]},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]},
        {"keys": [rs384_key.jwks["keys"][0]] * 2},
    ]
    for jwks in bad:
        with pytest.raises(InvalidJwks):
            registry.add("c", "system/*.rs", method="private_key_jwt", jwks=jwks)


def test_small_rsa_key_refused(registry: ClientRegistry) -> None:
    import json

    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    jwk = json.loads(RSAAlgorithm.to_jwk(small)) | {"kid": "small"}
    with pytest.raises(InvalidJwks, match="2048"):
        registry.add("c", "system/*.rs", method="private_key_jwt", jwks={"keys": [jwk]})


def test_update_scopes_and_keys(registry: ClientRegistry, rs384_key, es384_key) -> None:
    cid = registry.add("c", "system/*.rs", method="private_key_jwt", jwks=rs384_key.jwks).client_id
    registry.set_scopes(cid, "system/Observation.r system/Observation.s")
    assert str(registry.get(cid).scopes) == "system/Observation.rs"
    registry.set_keys(cid, jwks=es384_key.jwks)
    assert registry.get(cid).jwks == es384_key.jwks
    registry.set_keys(cid, jwks_url="https://app/jwks")
    rec = registry.get(cid)
    assert (rec.jwks, rec.jwks_url) == (None, "https://app/jwks")
    with pytest.raises(InvalidInput):
        registry.rotate_secret(cid)
    basic = registry.add("d", "system/*.rs").client_id
    with pytest.raises(InvalidInput):
        registry.set_keys(basic, jwks=es384_key.jwks)
    for op in (registry.disable, registry.enable):
        with pytest.raises(NotFound):
            op("missing")


def test_jti_replay_store(registry: ClientRegistry) -> None:
    exp = int(time.time()) + 120
    assert registry.remember_jti("c1", "jti-1", exp)
    assert not registry.remember_jti("c1", "jti-1", exp)
    assert registry.remember_jti("c2", "jti-1", exp)  # jti is per client
    long_jti = "x" * 256
    assert registry.remember_jti("c1", long_jti, exp)
    assert not registry.remember_jti("c1", long_jti, exp)
    # long-expired entries are purged, recent ones kept
    assert registry.remember_jti("c1", "old", int(time.time()) - 10_000)
    assert registry.remember_jti("c1", "trigger-purge", exp)
    assert registry.remember_jti("c1", "old", exp)


def test_migrations_idempotent(registry: ClientRegistry) -> None:
    creds = registry.add("keep", "system/*.rs")
    again = ClientRegistry(registry.engine)
    assert again.get(creds.client_id).name == "keep"


def test_hash_format_and_cost_parameter() -> None:
    h = hash_secret("s", log2_n=10)
    assert h.split("$")[:4] == ["scrypt", "10", "8", "1"]
    assert verify_secret("s", h)
    assert not verify_secret("t", h)
    assert not verify_secret("s", "plain")
    assert not verify_secret("s", "scrypt$40$8$1$AA$AA")


def test_client_ids_never_start_with_a_dash(monkeypatch) -> None:
    """A leading ``-`` made ``healthmesh clients show ID`` read the id as an option (a CI failure)."""
    from healthmesh.access import clients as clients_module

    tokens = iter(["-WYTdn8u9zaCEIFYqcgrWQ", "--abc", "WYTdn8u9zaCEIFYqcgrWQ"])
    monkeypatch.setattr(clients_module.secrets, "token_urlsafe", lambda n: next(tokens))
    assert clients_module.new_client_id() == "WYTdn8u9zaCEIFYqcgrWQ"
    monkeypatch.undo()
    assert not any(clients_module.new_client_id().startswith("-") for _ in range(2000))
