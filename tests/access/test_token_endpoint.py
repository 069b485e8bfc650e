"""The token endpoint, SMART discovery and the bearer dependency through Starlette's
TestClient: client_secret_basic, private_key_jwt (RS384, ES384) and every refusal."""

from __future__ import annotations

import time
import warnings

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from healthmesh.access import (
    AccessContext,
    InsufficientScope,
    ScopeSet,
    SigningKey,
)
from healthmesh.access.clients import ClientRegistry
from healthmesh.access.jwks import JwksFetcher
from healthmesh.access.router import bearer_dependency, create_auth_router
from healthmesh.access.throttle import FailureThrottle
from healthmesh.access.tokens import TokenService
from healthmesh.db import make_engine
from healthmesh.errors import HealthmeshError

with warnings.catch_warnings():
    # Starlette >= 1.x nudges towards httpx2; with plain httpx its TestClient still works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN_URL = "https://node.example/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWKS_URL = "https://app.example/.well-known/jwks.json"


class Env:
    def __init__(self, tmp_path, throttle: FailureThrottle | None = None) -> None:
        self.registry = ClientRegistry(make_engine(str(tmp_path / "node.db")))
        self.tokens = TokenService(
            SigningKey.generate(),
            issuer="https://node.example/auth",
            audience="https://node.example/fhir",
        )
        self.published: dict = {"keys": []}  # what the remote client serves at JWKS_URL
        self.fetches = 0
        fetcher = JwksFetcher(
            httpx.Client(transport=httpx.MockTransport(self._serve)), min_refresh_s=0
        )
        app = FastAPI()
        self.issued: list[tuple[str, str]] = []
        app.include_router(
            create_auth_router(
                self.registry,
                self.tokens,
                token_url=TOKEN_URL,
                fetcher=fetcher,
                on_token=lambda cid, scopes: self.issued.append((cid, str(scopes))),
                throttle=throttle,
            )
        )
        auth = bearer_dependency(self.tokens, registry=self.registry, enabled_ttl_s=0)

        @app.exception_handler(HealthmeshError)
        def _translate(request: Request, exc: HealthmeshError) -> JSONResponse:
            headers = {}
            www = getattr(exc, "www_authenticate", None)
            if callable(www):
                headers["WWW-Authenticate"] = www()
            return JSONResponse(
                {"code": exc.code, "message": exc.message}, status_code=exc.status, headers=headers
            )

        @app.get("/fhir/{rtype}")
        def search(rtype: str, ctx: AccessContext = Depends(auth)) -> dict:
            if not ctx.scopes.allows(rtype, "search-type"):
                raise InsufficientScope("scope does not allow this search")
            return {
                "client": ctx.client_id,
                "purpose": ctx.purpose_of_use,
                "restrictions": ctx.scopes.restrictions(rtype, "s"),
            }

        self.client = TestClient(app)

    def _serve(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        return httpx.Response(200, json=self.published)

    def token(self, data: dict, **kwargs) -> httpx.Response:
        return self.client.post("/auth/token", data=data, **kwargs)

    def jwt_token(self, assertion: str, scope: str = "system/*.rs") -> httpx.Response:
        return self.token(
            {
                "grant_type": "client_credentials",
                "scope": scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            }
        )


@pytest.fixture
def env(tmp_path) -> Env:
    return Env(tmp_path)


def _oauth_error(resp: httpx.Response, status: int, error: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == error
    assert resp.headers["cache-control"] == "no-store"
    return body["error_description"]


# -- client_secret_basic ------------------------------------------------------------------


def test_client_secret_basic_issues_a_working_token(env) -> None:
    creds = env.registry.add("cdc", "system/Patient.rs system/Observation.rs?category=laboratory")
    resp = env.token(
        {"grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=(creds.client_id, creds.client_secret),
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "system/Observation.rs?category=laboratory system/Patient.rs"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    got = env.client.get("/fhir/Observation", headers=bearer)
    assert got.status_code == 200
    assert got.json() == {
        "client": creds.client_id,
        "purpose": None,
        "restrictions": [{"category": "laboratory"}],
    }
    assert env.client.get("/fhir/Patient", headers=bearer).json()["restrictions"] is None
    assert env.issued == [(creds.client_id, body["scope"])]  # the audit hook saw the grant


def test_wrong_secret_unknown_client_and_no_auth(env) -> None:
    creds = env.registry.add("cdc", "system/*.rs")
    form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    resp = env.token(form, auth=(creds.client_id, "wrong"))
    _oauth_error(resp, 401, "invalid_client")
    assert resp.headers["www-authenticate"].startswith("Basic")
    _oauth_error(env.token(form, auth=("nobody", creds.client_secret)), 401, "invalid_client")
    _oauth_error(env.token(form), 401, "invalid_client")
    bad_basic = {"Authorization": "Basic !!!notbase64"}
    _oauth_error(env.token(form, headers=bad_basic), 401, "invalid_client")


def test_repeated_failures_from_one_address_are_throttled(tmp_path) -> None:
    now = [1000.0]
    env = Env(tmp_path, FailureThrottle(limit=3, window_s=60, clock=lambda: now[0]))
    creds = env.registry.add("cdc", "system/*.rs")
    form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    good = (creds.client_id, creds.client_secret)
    assert env.token(form, auth=good).status_code == 200  # successes are not counted
    for second in range(3):
        now[0] = 1000.0 + second
        _oauth_error(env.token(form, auth=(creds.client_id, "guess")), 401, "invalid_client")
    # the fourth request is refused before any secret check, even with the right secret
    refused = env.token(form, auth=good)
    assert "too many failed client authentications" in _oauth_error(
        refused, 429, "invalid_request"
    )
    assert refused.headers["retry-after"] == "58"  # the oldest failure leaves at 1060
    assert creds.client_secret not in refused.text
    now[0] = 1060.5  # the first failure has left the window
    assert env.token(form, auth=good).status_code == 200
    _oauth_error(env.token(form, auth=(creds.client_id, "guess")), 401, "invalid_client")
    assert env.token(form, auth=good).status_code == 429
    assert env.issued and all(cid == creds.client_id for cid, _ in env.issued)


def test_throttle_bounds_its_memory_and_validates_settings() -> None:
    t = FailureThrottle(limit=1, window_s=60, clock=lambda: 0.0, max_keys=2)
    for address in ("a", "b", "c"):
        t.failed(address)
    assert t.retry_after("a") is None  # evicted, the oldest of three
    assert t.retry_after("b") == 60 and t.retry_after("c") == 60
    with pytest.raises(ValueError, match="positive"):
        FailureThrottle(limit=0)


def test_disabled_client_refused_and_its_tokens_stop_working(env) -> None:
    creds = env.registry.add("cdc", "system/*.rs")
    form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    token = env.token(form, auth=(creds.client_id, creds.client_secret)).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert env.client.get("/fhir/Patient", headers=bearer).status_code == 200
    env.registry.disable(creds.client_id)
    _oauth_error(
        env.token(form, auth=(creds.client_id, creds.client_secret)), 401, "invalid_client"
    )
    assert env.client.get("/fhir/Patient", headers=bearer).status_code == 401


# -- scope downgrading --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        ("system/*.cruds", "system/Observation.rs system/Patient.rs"),
        ("system/Patient.cruds", "system/Patient.rs"),
        ("patient/*.rs user/*.rs system/Patient.r", "system/Patient.r"),
        ("openid system/Observation.read", "system/Observation.read"),
        (
            "system/Observation.rs?code=http://loinc.org|8480-6",
            "system/Observation.rs?code=http://loinc.org|8480-6",
        ),
    ],
)
def test_scope_downgrading(env, requested, granted) -> None:
    creds = env.registry.add("c", "system/Patient.rs system/Observation.rs")
    resp = env.token(
        {"grant_type": "client_credentials", "scope": requested},
        auth=(creds.client_id, creds.client_secret),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == granted
    ctx = env.tokens.verify(resp.json()["access_token"])
    assert str(ctx.scopes) == granted


@pytest.mark.parametrize(
    ("scope", "status", "error"),
    [
        ("system/Condition.rs", 400, "invalid_scope"),
        ("patient/*.rs", 400, "invalid_scope"),
        ("system/Patient.dus", 400, "invalid_scope"),
        ("", 400, "invalid_request"),
        (None, 400, "invalid_request"),
    ],
)
def test_scope_errors(env, scope, status, error) -> None:
    creds = env.registry.add("c", "system/Patient.rs")
    form = {"grant_type": "client_credentials"} | ({"scope": scope} if scope is not None else {})
    _oauth_error(env.token(form, auth=(creds.client_id, creds.client_secret)), status, error)


# -- request shape ------------------------------------------------------------------------


def test_malformed_requests(env) -> None:
    creds = env.registry.add("c", "system/*.rs")
    auth = (creds.client_id, creds.client_secret)
    _oauth_error(
        env.token({"grant_type": "password", "scope": "system/*.rs"}, auth=auth),
        400,
        "unsupported_grant_type",
    )
    _oauth_error(env.token({"scope": "system/*.rs"}, auth=auth), 400, "unsupported_grant_type")
    as_json = env.client.post("/auth/token", json={"grant_type": "client_credentials"}, auth=auth)
    _oauth_error(as_json, 400, "invalid_request")
    repeated = env.client.post(
        "/auth/token",
        content="grant_type=client_credentials&scope=a&scope=b",
        auth=auth,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _oauth_error(repeated, 400, "invalid_request")
    post_secret = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
    }
    _oauth_error(env.token(post_secret), 400, "invalid_request")
    both = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": "x.y.z",
    }
    _oauth_error(env.token(both, auth=auth), 400, "invalid_request")
    big = env.client.post(
        "/auth/token",
        content="a=" + "x" * 70_000,
        auth=auth,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _oauth_error(big, 400, "invalid_request")
    mismatch = {"grant_type": "client_credentials", "scope": "system/*.rs", "client_id": "other"}
    _oauth_error(env.token(mismatch, auth=auth), 401, "invalid_client")


# -- private_key_jwt ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_private_key_jwt(env, alg, rs384_key, es384_key) -> None:
    key = rs384_key if alg == "RS384" else es384_key
    cid = env.registry.add("bulk", "system/*.rs", method="private_key_jwt", jwks=key.jwks).client_id
    resp = env.jwt_token(key.assertion(cid, TOKEN_URL), scope="system/Patient.rs")
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == "system/Patient.rs"
    bearer = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    assert env.client.get("/fhir/Patient", headers=bearer).json()["client"] == cid
    # the client_id form parameter, if sent, must match
    with_id = key.assertion(cid, TOKEN_URL)
    resp = env.token(
        {
            "grant_type": "client_credentials",
            "scope": "system/Patient.rs",
            "client_id": cid,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": with_id,
        }
    )
    assert resp.status_code == 200


def test_jti_replay_rejected(env, es384_key) -> None:
    cid = env.registry.add(
        "c", "system/*.rs", method="private_key_jwt", jwks=es384_key.jwks
    ).client_id
    assertion = es384_key.assertion(cid, TOKEN_URL)
    assert env.jwt_token(assertion).status_code == 200
    assert "already used" in _oauth_error(env.jwt_token(assertion), 401, "invalid_client")
    # same jti in a freshly signed assertion is a replay too
    again = es384_key.assertion(
        cid, TOKEN_URL, jti=jwt.decode(assertion, options={"verify_signature": False})["jti"]
    )
    _oauth_error(env.jwt_token(again), 401, "invalid_client")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aud": "https://node.example/other/token"}, "aud"),
        ({"aud": "https://evil.example/auth/token"}, "aud"),
        ({"exp": int(time.time()) + 600}, "5 minutes"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"exp": None}, "required claim"),
        ({"jti": None}, "required claim"),
        ({"jti": ""}, "jti"),
        ({"sub": "someone-else"}, "iss and sub"),
        ({"_header": {"kid": "unknown-kid"}}, "kid"),
        ({"_header": {"kid": None}}, "kid"),
    ],
)
def test_bad_assertions_rejected(env, rs384_key, overrides, message) -> None:
    cid = env.registry.add(
        "c", "system/*.rs", method="private_key_jwt", jwks=rs384_key.jwks
    ).client_id
    overrides = dict(overrides)
    if overrides.get("_header", {}).get("kid", "") is None:
        overrides["_header"] = {}
        assertion = jwt.encode(
            {"iss": cid, "sub": cid, "aud": TOKEN_URL, "exp": int(time.time()) + 60, "jti": "j"},
            rs384_key.private_key,
            algorithm="RS384",
        )
    else:
        assertion = rs384_key.assertion(cid, TOKEN_URL, **overrides)
    assert message in _oauth_error(env.jwt_token(assertion), 401, "invalid_client")


def test_wrong_algorithms_and_keys_rejected(env, rs384_key, es384_key, new_client_key) -> None:
    cid = env.registry.add(
        "c", "system/*.rs", method="private_key_jwt", jwks=rs384_key.jwks
    ).client_id
    now = int(time.time())
    claims = {"iss": cid, "sub": cid, "aud": TOKEN_URL, "exp": now + 60, "jti": "a"}
    rs256 = jwt.encode(
        claims, rs384_key.private_key, algorithm="RS256", headers={"kid": rs384_key.kid}
    )
    assert "RS384 or ES384" in _oauth_error(env.jwt_token(rs256), 401, "invalid_client")
    hs = jwt.encode(
        claims | {"jti": "b"}, "s" * 64, algorithm="HS384", headers={"kid": rs384_key.kid}
    )
    _oauth_error(env.jwt_token(hs), 401, "invalid_client")
    none = jwt.encode(claims | {"jti": "c"}, None, algorithm="none", headers={"kid": rs384_key.kid})
    _oauth_error(env.jwt_token(none), 401, "invalid_client")
    # an attacker's key under the registered kid
    attacker = new_client_key("RS384")
    forged = attacker.assertion(cid, TOKEN_URL, _header={"kid": rs384_key.kid})
    assert "signature" in _oauth_error(env.jwt_token(forged), 401, "invalid_client")
    # ES384 assertion naming an RSA key
    es = es384_key.assertion(cid, TOKEN_URL, _header={"kid": rs384_key.kid})
    _oauth_error(env.jwt_token(es), 401, "invalid_client")
    _oauth_error(env.jwt_token("not-a-jwt"), 401, "invalid_client")
    wrong_type = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": "urn:other",
        "client_assertion": forged,
    }
    _oauth_error(env.token(wrong_type), 401, "invalid_client")


def test_secret_client_cannot_use_assertions_and_vice_versa(env, es384_key) -> None:
    basic = env.registry.add("basic", "system/*.rs")
    _oauth_error(
        env.jwt_token(es384_key.assertion(basic.client_id, TOKEN_URL)), 401, "invalid_client"
    )
    cid = env.registry.add(
        "jwt", "system/*.rs", method="private_key_jwt", jwks=es384_key.jwks
    ).client_id
    form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    _oauth_error(env.token(form, auth=(cid, "guess")), 401, "invalid_client")
    env.registry.disable(cid)
    _oauth_error(env.jwt_token(es384_key.assertion(cid, TOKEN_URL)), 401, "invalid_client")


def test_jwks_url_fetched_cached_and_refreshed_on_rotation(env, new_client_key) -> None:
    first, second = new_client_key("ES384"), new_client_key("ES384")
    env.published = first.jwks
    cid = env.registry.add(
        "remote", "system/*.rs", method="private_key_jwt", jwks_url=JWKS_URL
    ).client_id
    assert env.jwt_token(first.assertion(cid, TOKEN_URL)).status_code == 200
    assert env.jwt_token(first.assertion(cid, TOKEN_URL)).status_code == 200
    assert env.fetches == 1  # cached
    env.published = second.jwks  # the client rotates its key
    assert env.jwt_token(second.assertion(cid, TOKEN_URL)).status_code == 200
    assert env.fetches == 2
    env.published = {"keys": [dict(second.jwks["keys"][0], d="AQAB")]}  # broken publication
    _oauth_error(env.jwt_token(first.assertion(cid, TOKEN_URL)), 401, "invalid_client")


# -- discovery and bearer -----------------------------------------------------------------


def test_smart_configuration_and_jwks(env) -> None:
    conf = env.client.get("/.well-known/smart-configuration").json()
    assert conf["token_endpoint"] == TOKEN_URL
    assert conf["grant_types_supported"] == ["client_credentials"]
    assert set(conf["token_endpoint_auth_methods_supported"]) == {
        "private_key_jwt",
        "client_secret_basic",
    }
    assert set(conf["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert "system/*.rs" in conf["scopes_supported"]
    assert {"permission-v1", "permission-v2"} <= set(conf["capabilities"])
    jwks = env.client.get("/.well-known/jwks.json").json()
    assert jwks == env.tokens.jwks()
    assert jwks["keys"][0]["kid"] == env.tokens.key.kid


def test_bearer_refusals(env) -> None:
    missing = env.client.get("/fhir/Patient")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="healthmesh"'
    for header in ("Bearer", "Bearer garbage", "Basic abc", "Token x"):
        resp = env.client.get("/fhir/Patient", headers={"Authorization": header})
        assert resp.status_code == 401
        assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    other = TokenService(
        SigningKey.generate(), issuer=env.tokens.issuer, audience=env.tokens.audience
    )
    foreign, _ = other.issue("c", ScopeSet.parse("system/*.rs"))
    resp = env.client.get("/fhir/Patient", headers={"Authorization": f"Bearer {foreign}"})
    assert resp.status_code == 401


def test_scope_violation_and_purpose_of_use(env) -> None:
    creds = env.registry.add("c", "system/Patient.rs")
    token = env.token(
        {"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        auth=(creds.client_id, creds.client_secret),
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    denied = env.client.get("/fhir/Observation", headers=bearer)
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    ok = env.client.get("/fhir/Patient", headers=bearer | {"X-Purpose-Of-Use": "PUBHLTH"})
    assert ok.json()["purpose"] == "PUBHLTH"
    bad = env.client.get("/fhir/Patient", headers=bearer | {"X-Purpose-Of-Use": "SPYING"})
    assert bad.status_code == 400
