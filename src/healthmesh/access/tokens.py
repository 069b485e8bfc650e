"""Access tokens: short-lived JWTs (RFC 9068 ``at+jwt``) signed by the node, verified locally.

The token carries ``iss``, ``aud``, ``sub`` (= ``client_id``), ``client_id``, ``scope``,
``jti``, ``iat``, ``nbf``, ``exp`` and optionally ``patient`` and ``purpose_of_use``. Verification
accepts exactly the node's own algorithm and key ids: ``alg=none``, HS* and any key not
published by this service are refused before the signature is even looked at.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import jwt

from healthmesh.access.context import AccessContext, check_purpose_of_use
from healthmesh.access.keys import (
    KeyFileError,
    PrivateKey,
    SigningKey,
    load_or_create_signing_key,
)
from healthmesh.access.scopes import InvalidScope, ScopeSet
from healthmesh.errors import Forbidden, InvalidInput, Unauthorized

__all__ = [
    "InsufficientScope",
    "InvalidToken",
    "KeyFileError",
    "SigningKey",
    "TokenService",
    "load_or_create_signing_key",
]

TOKEN_TYPE = "at+jwt"  # noqa: S105 - the JWT typ header, not a secret
MAX_TOKEN_LENGTH = 8192
VERIFIED_CACHE_SIZE = 2048
_RESERVED = frozenset({"iss", "aud", "sub", "client_id", "scope", "jti", "iat", "nbf", "exp"})
_REQUIRED = ["iss", "aud", "sub", "scope", "jti", "iat", "nbf", "exp"]


class InvalidToken(Unauthorized):
    """Missing, malformed, forged, expired or foreign bearer token (HTTP 401).

    ``www_authenticate()`` gives the RFC 6750 header value the edge must send with the 401.
    """

    def __init__(self, message: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(message)
        self.error = error

    def www_authenticate(self) -> str:
        """The ``WWW-Authenticate`` header value to send with the 401 (RFC 6750 §3)."""
        if self.error is None:  # RFC 6750 §3.1: no error code when no credentials were sent
            return 'Bearer realm="healthmesh"'
        return (
            f'Bearer realm="healthmesh", error="{self.error}", error_description="{self.message}"'
        )


class InsufficientScope(Forbidden):
    """A valid token whose scopes do not allow the interaction (HTTP 403)."""

    def www_authenticate(self) -> str:
        """The ``WWW-Authenticate`` header value to send with the 403 (RFC 6750 §3.1)."""
        return 'Bearer realm="healthmesh", error="insufficient_scope"'


_DECODE_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "token audience is not this server"),
    (jwt.InvalidIssuerError, "token issuer is not trusted"),
    (jwt.InvalidSignatureError, "token signature is invalid"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim"),
)


@functools.lru_cache(maxsize=1024)
def _parse_scopes(text: str) -> ScopeSet:
    """Scope strings repeat across a client's tokens; ScopeSet is immutable, so share it."""
    return ScopeSet.parse(text)


class TokenService:
    """Issue and verify the node's access tokens.

    Parameters
    ----------
    signing_key:
        A :class:`SigningKey` (see :func:`load_or_create_signing_key`) or a raw EC P-256 or
        Ed25519 private key.
    issuer, audience:
        ``iss`` and ``aud`` written into and required of every token (usually the token
        endpoint's base URL and the FHIR base URL).
    lifetime_s:
        Token lifetime in seconds (SMART recommends at most 300).
    previous_keys:
        Keys rotated out but still accepted for verification until their tokens expire.
    leeway_s:
        Clock skew tolerated on ``exp``/``nbf``/``iat``.
    clock:
        Time source for issuing (tests move it to make expired or future tokens).

    Examples
    --------
    >>> svc = TokenService(SigningKey.generate(), issuer="https://n/auth", audience="https://n/fhir")
    >>> token, expires_in = svc.issue("c1", ScopeSet.parse("system/Patient.rs"))
    >>> svc.verify(token).scopes.allows("Patient", "read"), expires_in
    (True, 300)
    """

    def __init__(
        self,
        signing_key: SigningKey | PrivateKey,
        *,
        issuer: str,
        audience: str,
        lifetime_s: int = 300,
        previous_keys: Sequence[SigningKey] = (),
        leeway_s: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lifetime_s <= 0:
            raise ValueError("lifetime_s must be positive")
        self.key = (
            signing_key
            if isinstance(signing_key, SigningKey)
            else SigningKey.from_private_key(signing_key)
        )
        self.issuer = issuer
        self.audience = audience
        self.lifetime_s = lifetime_s
        self.leeway_s = leeway_s
        self._clock = clock
        self._verify_keys = {k.kid: k for k in (*previous_keys, self.key)}
        # Verified tokens by their exact text, with their exp: clients reuse one token for
        # many requests, and a hit skips the signature check (exp is still enforced).
        self._verified: OrderedDict[str, tuple[AccessContext, float]] = OrderedDict()
        self._verified_lock = threading.Lock()

    @property
    def algorithm(self) -> str:
        return self.key.alg

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify this service's tokens, as a JWK Set."""
        return {"keys": [k.public_jwk() for k in self._verify_keys.values()]}

    def issue(self, client_id: str, scopes: ScopeSet, **claims: Any) -> tuple[str, int]:
        """Sign a token for ``client_id`` granting ``scopes``; return it and its lifetime.

        Extra ``claims`` (e.g. ``patient``, ``purpose_of_use``) are added; the registered
        claims above cannot be overridden.
        """
        clash = _RESERVED.intersection(claims)
        if clash:
            raise InvalidInput(f"claims {sorted(clash)} are set by the token service")
        if claims.get("purpose_of_use") is not None:
            check_purpose_of_use(str(claims["purpose_of_use"]))
        now = int(self._clock())
        payload: dict[str, Any] = {k: v for k, v in claims.items() if v is not None}
        payload.update(
            iss=self.issuer,
            aud=self.audience,
            sub=client_id,
            client_id=client_id,
            scope=str(scopes),
            jti=uuid.uuid4().hex,
            iat=now,
            nbf=now,
            exp=now + self.lifetime_s,
        )
        token = jwt.encode(
            payload,
            self.key.private_key,
            algorithm=self.key.alg,
            headers={"kid": self.key.kid, "typ": TOKEN_TYPE},
        )
        return token, self.lifetime_s

    def _header_key(self, token: str) -> SigningKey:
        # Read only the (small) header to choose the key; pyjwt then parses and checks the
        # whole token once, with the algorithm pinned to that key's.
        try:
            segment = token.split(".", 1)[0]
            header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (ValueError, binascii.Error):
            raise InvalidToken("token is not a well-formed JWT") from None
        if not isinstance(header, dict):
            raise InvalidToken("token is not a well-formed JWT")
        key = self._verify_keys.get(str(header.get("kid")))
        if key is None:
            raise InvalidToken("token was not signed by this server")
        if header.get("alg") != key.alg:
            raise InvalidToken("token algorithm is not accepted")
        if str(header.get("typ", "")).lower() != TOKEN_TYPE:
            raise InvalidToken("token is not an access token")
        return key

    def verify(self, token: str) -> AccessContext:
        """Check signature, algorithm, issuer, audience and lifetime; return the context.

        Raises :class:`InvalidToken` (an :class:`~healthmesh.errors.Unauthorized`) otherwise.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token is missing or too long")
        with self._verified_lock:
            hit = self._verified.get(token)
            if hit is not None:
                self._verified.move_to_end(token)
        if hit is not None:
            if time.time() <= hit[1] + self.leeway_s:
                return hit[0]
            raise InvalidToken("token expired")
        ctx, exp = self._verify_uncached(token)
        with self._verified_lock:
            self._verified[token] = (ctx, exp)
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return ctx

    def _verify_uncached(self, token: str) -> tuple[AccessContext, float]:
        key = self._header_key(token)
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[key.alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": _REQUIRED},
            )
        except jwt.PyJWTError as exc:
            message = next((m for t, m in _DECODE_ERRORS if isinstance(exc, t)), "invalid token")
            raise InvalidToken(message) from None
        try:
            scopes = _parse_scopes(str(claims["scope"]))
            purpose = claims.get("purpose_of_use")
            if purpose is not None:
                purpose = check_purpose_of_use(str(purpose))
        except (InvalidScope, InvalidInput):
            raise InvalidToken("token claims are malformed") from None
        patient = claims.get("patient")
        ctx = AccessContext(
            client_id=str(claims["sub"]),
            scopes=scopes,
            token_id=str(claims["jti"]),
            purpose_of_use=purpose,
            patient=str(patient) if patient is not None else None,
        )
        return ctx, float(claims["exp"])
