"""Cost of access control per request: token verification, scope checks, AuditEvent building,
and the token endpoint (client_secret_basic vs private_key_jwt).

Baselines measured in the same run: a bare ``jwt.decode`` of the same token (the floor for
verification) and a bare ``hashlib.scrypt`` (the floor for secret checks).

    .venv/bin/python benchmarks/access_tokens.py [--n 2000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm

from healthmesh.access import ScopeSet, SigningKey, TokenService
from healthmesh.access.assertions import ASSERTION_TYPE
from healthmesh.access.audit import build_audit_event
from healthmesh.access.clients import ClientRegistry
from healthmesh.access.passwords import LOG2_N, hash_secret, verify_secret
from healthmesh.access.router import create_auth_router
from healthmesh.db import make_engine

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN_URL = "https://node.example/auth/token"


def per_second(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    """Median operations per second over ``rounds`` runs of ``n`` calls."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def latency_ms(fn: Callable[[], object], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    n = args.n

    key = SigningKey.generate()
    svc = TokenService(
        key, issuer="https://node.example/auth", audience="https://node.example/fhir"
    )
    scopes = ScopeSet.parse("system/Patient.rs system/Observation.rs?category=laboratory")
    token, _ = svc.issue("bench", scopes)

    def bare() -> object:
        return jwt.decode(
            token, key.public_key, algorithms=["ES256"], audience=svc.audience, issuer=svc.issuer
        )

    fresh = iter([svc.issue("bench", scopes)[0] for _ in range(5 * n)])
    cold = per_second(lambda: svc.verify(next(fresh)), n)
    warm = per_second(lambda: svc.verify(token), n)
    floor = per_second(bare, n)
    print(
        f"token verify (first) {cold:10.0f} /s   bare jwt.decode {floor:10.0f} /s"
        f"   ratio {cold / floor:.2f}"
    )
    print(f"token verify (reuse) {warm:10.0f} /s   ratio to bare {warm / floor:.1f}")
    print(f"token issue          {per_second(lambda: svc.issue('bench', scopes), n):10.0f} /s")
    print(f"scope parse          {per_second(lambda: ScopeSet.parse(str(scopes)), n):10.0f} /s")
    ctx = svc.verify(token)
    print(
        f"scope allows+restr   "
        f"{per_second(lambda: ctx.scopes.restrictions('Observation', 'search-type'), n):10.0f} /s"
    )
    when = datetime.now(UTC)

    def audit() -> object:
        return build_audit_event(
            ctx,
            action="E",
            subtype="search-type",
            outcome="0",
            entities=[f"Observation/{i}" for i in range(20)],
            query="Observation?code=8480-6&_count=20",
            source_site="node-a",
            recorded=when,
        )

    print(f"audit event (20 refs){per_second(audit, n):10.0f} /s")

    stored = hash_secret("s")
    scrypt_ms = latency_ms(lambda: verify_secret("s", stored), 20)[0]
    with tempfile.TemporaryDirectory() as tmp:
        reg = ClientRegistry(make_engine(str(Path(tmp) / "bench.db")))
        app = FastAPI()
        app.include_router(create_auth_router(reg, svc, token_url=TOKEN_URL))
        client = TestClient(app)
        creds = reg.add("basic", "system/*.rs")
        form = {"grant_type": "client_credentials", "scope": "system/Patient.rs"}
        auth = (creds.client_id, creds.client_secret)
        basic = latency_ms(lambda: client.post("/auth/token", data=form, auth=auth), 30)
        pk = ec.generate_private_key(ec.SECP384R1())
        jwk = ECAlgorithm.to_jwk(pk.public_key(), as_dict=True) | {"kid": "k1"}
        cid = reg.add(
            "jwt", "system/*.rs", method="private_key_jwt", jwks={"keys": [jwk]}
        ).client_id

        def with_assertion() -> object:
            assertion = jwt.encode(
                {
                    "iss": cid,
                    "sub": cid,
                    "aud": TOKEN_URL,
                    "exp": int(time.time()) + 240,
                    "jti": uuid.uuid4().hex,
                },
                pk,
                algorithm="ES384",
                headers={"kid": "k1"},
            )
            return client.post(
                "/auth/token",
                data=form
                | {
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion,
                },
            )

        signed = latency_ms(with_assertion, 100)
    print(
        f"token endpoint basic       p50 {basic[0]:6.1f} ms  p95 {basic[1]:6.1f} ms"
        f"   (scrypt 2^{LOG2_N} alone {scrypt_ms:.1f} ms, ratio {basic[0] / scrypt_ms:.2f})"
    )
    print(f"token endpoint private_key p50 {signed[0]:6.1f} ms  p95 {signed[1]:6.1f} ms")


if __name__ == "__main__":
    main()
