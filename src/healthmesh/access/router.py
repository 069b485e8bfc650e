"""HTTP face of access control: the OAuth2 token endpoint (SMART Backend Services), the
SMART discovery document, the node's public JWKS, and the bearer-token FastAPI dependency.

Mount the router without a prefix: its paths are the path of ``token_url``,
``/.well-known/smart-configuration`` and ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from healthmesh.access._bearer import bearer_dependency
from healthmesh.access._client_auth import OAuthError, authenticate_client
from healthmesh.access.assertions import AssertionVerifier, ClientAuthError
from healthmesh.access.clients import AUTH_METHODS, ClientRegistry
from healthmesh.access.jwks import ASSERTION_ALGORITHMS, JwksFetcher
from healthmesh.access.scopes import InvalidScope, ScopeSet
from healthmesh.access.throttle import FailureThrottle
from healthmesh.access.tokens import TokenService

__all__ = ["OAuthError", "bearer_dependency", "create_auth_router", "smart_configuration"]

log = logging.getLogger("healthmesh.access")

MAX_FORM_BYTES = 64 * 1024
DEFAULT_SCOPES_SUPPORTED = ("system/*.cruds", "system/*.rs", "system/*.read", "system/*.write")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error_response(exc: OAuthError, *, basic: bool) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.status == 401 and basic:
        headers["WWW-Authenticate"] = 'Basic realm="healthmesh"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "use application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "request body too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "malformed form body") from None
    if any(len(v) > 1 for v in parsed.values()):
        raise OAuthError("invalid_request", "a parameter was sent more than once")
    return {k: v[0] for k, v in parsed.items()}


def _grant(requested_text: str | None, registered: ScopeSet) -> ScopeSet:
    if not requested_text or not requested_text.strip():
        raise OAuthError("invalid_request", "the scope parameter is required")
    try:
        requested = ScopeSet.parse(requested_text)
    except InvalidScope as exc:
        raise OAuthError("invalid_scope", exc.message) from None
    # Backend services have no user or patient in the loop: only system/ scopes are granted.
    granted = requested.only("system").intersection(registered)
    if not granted.resources:
        raise OAuthError("invalid_scope", "none of the requested scopes can be granted")
    return granted


def smart_configuration(
    tokens: TokenService, *, token_url: str, scopes_supported: Sequence[str]
) -> dict[str, Any]:
    """The ``/.well-known/smart-configuration`` document for a backend-services server."""
    base = urlsplit(token_url)
    return {
        "issuer": tokens.issuer,
        "jwks_uri": f"{base.scheme}://{base.netloc}/.well-known/jwks.json",
        "token_endpoint": token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": list(reversed(AUTH_METHODS)),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": list(scopes_supported),
        "response_types_supported": ["token"],
        "capabilities": ["permission-v1", "permission-v2"],
    }


def create_auth_router(
    registry: ClientRegistry,
    tokens: TokenService,
    *,
    token_url: str,
    scopes_supported: Sequence[str] = DEFAULT_SCOPES_SUPPORTED,
    fetcher: JwksFetcher | None = None,
    on_token: Callable[[str, ScopeSet], None] | None = None,
    throttle: FailureThrottle | None = None,
) -> APIRouter:
    """Router with the token endpoint, SMART discovery and the JWKS of ``tokens``.

    Parameters
    ----------
    token_url:
        Absolute URL of the token endpoint as clients see it; client assertions must carry it
        as ``aud``, and its path is where the endpoint is mounted.
    fetcher:
        JWKS fetcher for clients registered with a ``jwks_url`` (default: httpx, cached).
    on_token:
        Called with ``(client_id, granted scopes)`` after each successful issue (audit hook).
    throttle:
        Failed client authentications per caller address (default: 20 a minute, then 429
        with ``Retry-After`` until the oldest failure is a minute old; see
        :mod:`healthmesh.access.throttle`).
    """
    failures = throttle or FailureThrottle()
    verifier = AssertionVerifier(registry, token_url=token_url, fetcher=fetcher)
    router = APIRouter(tags=["auth"])
    discovery = smart_configuration(tokens, token_url=token_url, scopes_supported=scopes_supported)
    token_path = urlsplit(token_url).path or "/token"

    @router.post(token_path, include_in_schema=True, summary="OAuth2 token endpoint")
    async def token_endpoint(request: Request) -> JSONResponse:
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        address = request.client.host if request.client else "unknown"
        wait = failures.retry_after(address)
        if wait is not None:
            log.warning("token request refused: too many failed authentications")
            exc = OAuthError(
                "invalid_request",
                f"too many failed client authentications from this address; retry in {wait} s",
                429,
            )
            response = _error_response(exc, basic=basic)
            response.headers["Retry-After"] = str(wait)
            return response
        try:
            form = await _form(request)
            if form.get("grant_type") != "client_credentials":
                raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
            client = await run_in_threadpool(
                authenticate_client, registry, verifier, request.headers.get("authorization"), form
            )
            granted = _grant(form.get("scope"), client.scopes)
        except OAuthError as exc:
            log.info("token request refused: %s", exc.error)
            return _error_response(exc, basic=basic)
        except ClientAuthError as exc:
            failures.failed(address)
            log.info("token request refused: invalid_client")
            return _error_response(OAuthError("invalid_client", exc.message, 401), basic=basic)
        access_token, expires_in = tokens.issue(client.client_id, granted)
        log.info("token issued to client %s", client.client_id)
        if on_token is not None:
            on_token(client.client_id, granted)
        body = {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": expires_in,
            "scope": str(granted),
        }
        return JSONResponse(body, headers=_NO_STORE)

    @router.get("/.well-known/smart-configuration", summary="SMART discovery")
    def smart_config() -> JSONResponse:
        return JSONResponse(discovery)

    @router.get("/.well-known/jwks.json", summary="Public keys of the access tokens")
    def jwks() -> JSONResponse:
        return JSONResponse(tokens.jwks())

    return router
