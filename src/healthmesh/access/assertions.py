"""Verify SMART Backend Services client assertions (``private_key_jwt``, RFC 7523).

An assertion is accepted only if: its ``alg`` is RS384 or ES384; its ``kid`` names a key in
the client's registered JWKS (inline or fetched from ``jwks_url``); ``iss`` = ``sub`` = the
client id of an enabled ``private_key_jwt`` client; ``aud`` is exactly this token endpoint;
``exp`` is present, not passed and at most five minutes ahead; and its ``jti`` has not been
seen before (replays are caught in the database, so they are caught across processes).
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from healthmesh.access.clients import ClientRecord, ClientRegistry
from healthmesh.access.jwks import ASSERTION_ALGORITHMS, InvalidJwks, JwksFetcher, select_key
from healthmesh.errors import NotFound, Unauthorized

__all__ = ["ASSERTION_TYPE", "AssertionVerifier", "ClientAuthError"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LENGTH = 16 * 1024
MAX_JTI_LENGTH = 256

_DECODE_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "client assertion expired"),
    (jwt.ImmatureSignatureError, "client assertion not yet valid"),
    (jwt.InvalidAudienceError, "client assertion aud must be the token endpoint URL"),
    (jwt.InvalidIssuerError, "client assertion iss must be the client id"),
    (jwt.InvalidSignatureError, "client assertion signature is invalid"),
    (jwt.MissingRequiredClaimError, "client assertion lacks a required claim"),
)


class ClientAuthError(Unauthorized):
    """Client authentication failed (OAuth error ``invalid_client``, HTTP 401)."""


class AssertionVerifier:
    """Authenticate clients by their signed JWT assertions.

    Parameters
    ----------
    registry:
        Where clients, their keys and the replay store live.
    token_url:
        The exact token endpoint URL the assertions must name in ``aud``.
    fetcher:
        Fetches JWKS of clients registered with a ``jwks_url``.
    max_lifetime_s:
        Largest accepted distance of ``exp`` into the future (SMART: five minutes).
    leeway_s:
        Clock skew tolerated between the client and this server.
    """

    def __init__(
        self,
        registry: ClientRegistry,
        *,
        token_url: str,
        fetcher: JwksFetcher | None = None,
        max_lifetime_s: int = 300,
        leeway_s: int = 30,
    ) -> None:
        self.registry = registry
        self.token_url = token_url
        self.fetcher = fetcher or JwksFetcher()
        self.max_lifetime_s = max_lifetime_s
        self.leeway_s = leeway_s

    def _client(self, assertion: str) -> tuple[ClientRecord, str, str]:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ClientAuthError("client assertion is not a well-formed JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ASSERTION_ALGORITHMS:
            raise ClientAuthError("client assertion alg must be RS384 or ES384")
        if not isinstance(kid, str) or not kid:
            raise ClientAuthError("client assertion header needs a kid")
        iss, sub = unverified.get("iss"), unverified.get("sub")
        if not isinstance(iss, str) or iss != sub:
            raise ClientAuthError("client assertion iss and sub must both be the client id")
        try:
            client = self.registry.get(iss)
        except NotFound:
            raise ClientAuthError("unknown client") from None
        if not client.enabled or client.method != "private_key_jwt":
            raise ClientAuthError("client may not authenticate with private_key_jwt")
        return client, alg, kid

    def _key(self, client: ClientRecord, kid: str, alg: str) -> jwt.PyJWK:
        try:
            if client.jwks is not None:
                key = select_key(client.jwks, kid, alg)
            elif client.jwks_url is not None:
                key = select_key(self.fetcher.get(client.jwks_url), kid, alg)
                if key is None:  # the client may have rotated its keys
                    key = select_key(self.fetcher.get(client.jwks_url, refresh=True), kid, alg)
            else:
                key = None
        except InvalidJwks:
            raise ClientAuthError("the client's published keys are unusable") from None
        if key is None:
            raise ClientAuthError("no registered key matches the assertion's kid and alg")
        return key

    def verify(self, assertion: str) -> ClientRecord:
        """Return the authenticated client, or raise :class:`ClientAuthError`."""
        if not assertion or len(assertion) > MAX_ASSERTION_LENGTH:
            raise ClientAuthError("client assertion is missing or too long")
        client, alg, kid = self._client(assertion)
        key = self._key(client, kid, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key,
                algorithms=[alg],
                audience=self.token_url,
                issuer=client.client_id,
                leeway=self.leeway_s,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.PyJWTError as exc:
            message = next(
                (m for t, m in _DECODE_ERRORS if isinstance(exc, t)), "client assertion invalid"
            )
            raise ClientAuthError(message) from None
        exp = claims["exp"]
        if (
            not isinstance(exp, int | float)
            or exp > time.time() + self.max_lifetime_s + self.leeway_s
        ):
            raise ClientAuthError("client assertion exp must be at most 5 minutes ahead")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise ClientAuthError("client assertion jti must be a non-empty string")
        if not self.registry.remember_jti(client.client_id, jti, int(exp) + self.leeway_s):
            raise ClientAuthError("client assertion jti was already used")
        return client
