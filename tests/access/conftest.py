"""Fixtures of the access tests: registries on SQLite and PostgreSQL, client key pairs."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from healthmesh.access.clients import ClientRegistry
from healthmesh.db import make_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry(request, tmp_path) -> ClientRegistry:
    """One :class:`ClientRegistry` per backend; the contract tests run on both."""
    if request.param == "sqlite":
        url = str(tmp_path / "access.db")
    else:
        url = request.getfixturevalue("pg_url")
    reg = ClientRegistry(make_engine(url))
    yield reg
    reg.engine.dispose()


@dataclass
class ClientKey:
    """A client's private key and the public JWKS it registers."""

    alg: str
    kid: str
    private_key: Any

    @property
    def jwks(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        algo = RSAAlgorithm if self.alg == "RS384" else ECAlgorithm
        jwk = json.loads(algo.to_jwk(public))
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return {"keys": [jwk]}

    def assertion(self, client_id: str, aud: str, /, **overrides: Any) -> str:
        """A SMART Backend Services client assertion; ``overrides`` replace claims
        (a value of ``None`` removes the claim); ``_header`` replaces header fields."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "exp": now + 240,
            "jti": uuid.uuid4().hex,
            "iat": now,
        }
        header = {"kid": self.kid, "typ": "JWT", **overrides.pop("_header", {})}
        for k, v in overrides.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=header)


def make_client_key(alg: str) -> ClientKey:
    if alg == "RS384":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP384R1())
    return ClientKey(alg, f"{alg.lower()}-{uuid.uuid4().hex[:8]}", private)


@pytest.fixture(scope="session")
def new_client_key():
    """Factory of fresh client keys: ``new_client_key("RS384")``."""
    return make_client_key


@pytest.fixture(scope="session")
def rs384_key() -> ClientKey:
    return make_client_key("RS384")


@pytest.fixture(scope="session")
def es384_key() -> ClientKey:
    return make_client_key("ES384")
