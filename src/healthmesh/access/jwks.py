"""Client public keys (JWK Sets): validation at registration, key choice, fetching by URL.

SMART Backend Services clients sign their assertions with RS384 (RSA >= 2048 bits) or ES384
(EC P-384). A registered JWKS must hold public keys only, each with a ``kid``.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from healthmesh.errors import InvalidInput

__all__ = [
    "ASSERTION_ALGORITHMS",
    "JwksFetcher",
    "check_jwks_url",
    "select_key",
    "validate_jwks",
]

#: Algorithms accepted for client assertions, and the key type each needs.
ASSERTION_ALGORITHMS = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MAX_KEYS = 20
MAX_JWKS_BYTES = 64 * 1024
_MIN_RSA_BITS = 2048


class InvalidJwks(InvalidInput):
    """A JWK Set that cannot be used to verify client assertions."""


def _check_key(key: Any) -> None:
    if not isinstance(key, dict) or not isinstance(key.get("kid"), str) or not key["kid"]:
        raise InvalidJwks("every key in the JWKS needs a kid")
    if _PRIVATE_MEMBERS.intersection(key):
        raise InvalidJwks("the JWKS contains private key material; register public keys only")
    kty, crv, alg = key.get("kty"), key.get("crv"), key.get("alg")
    if kty == "RSA":
        if alg not in (None, "RS384"):
            raise InvalidJwks("RSA keys must be for RS384")
    elif kty == "EC":
        if crv != "P-384" or alg not in (None, "ES384"):
            raise InvalidJwks("EC keys must use curve P-384 (ES384)")
    else:
        raise InvalidJwks("keys must be RSA (RS384) or EC P-384 (ES384)")
    try:
        parsed = jwt.PyJWK(key, algorithm="RS384" if kty == "RSA" else "ES384")
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        raise InvalidJwks("a key in the JWKS cannot be parsed") from None
    if kty == "RSA" and parsed.key.key_size < _MIN_RSA_BITS:
        raise InvalidJwks("RSA keys must have at least 2048 bits")


def validate_jwks(jwks: Any) -> dict[str, Any]:
    """Check a client's JWK Set and return it unchanged; raise :class:`InvalidJwks`."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise InvalidJwks('a JWKS is an object with a non-empty "keys" array')
    if len(jwks["keys"]) > MAX_KEYS:
        raise InvalidJwks(f"at most {MAX_KEYS} keys per JWKS")
    for key in jwks["keys"]:
        _check_key(key)
    kids = [k["kid"] for k in jwks["keys"]]
    if len(set(kids)) != len(kids):
        raise InvalidJwks("kid values in a JWKS must be unique")
    return jwks


def check_jwks_url(url: str) -> str:
    """Accept https URLs (and http only for localhost, for development)."""
    parts = urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        raise InvalidJwks("jwks_url must be an https URL")
    return url


def select_key(jwks: dict[str, Any], kid: str, alg: str) -> jwt.PyJWK | None:
    """The key with ``kid`` usable for ``alg``, or ``None`` if there is none."""
    want = ASSERTION_ALGORITHMS.get(alg)
    if want is None:
        return None
    kty, crv = want
    for key in jwks.get("keys", []):
        if not isinstance(key, dict) or key.get("kid") != kid:
            continue
        if key.get("kty") != kty or (crv and key.get("crv") != crv):
            return None
        if key.get("alg") not in (None, alg) or _PRIVATE_MEMBERS.intersection(key):
            return None
        try:
            return jwt.PyJWK(key, algorithm=alg)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            return None
    return None


class JwksFetcher:
    """Fetch and cache JWK Sets published by clients at their ``jwks_url``.

    A cached set is reused for ``ttl_s``; a refresh forced by an unknown ``kid`` happens at
    most once per ``min_refresh_s`` per URL, so forged assertions cannot make us hammer a
    client's server. Pass an ``httpx.Client`` (e.g. with a ``MockTransport``) to control I/O.
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        ttl_s: float = 300.0,
        min_refresh_s: float = 30.0,
    ) -> None:
        self._client = client  # created on first use: most nodes never fetch a JWKS
        self._ttl = ttl_s
        self._min_refresh = min_refresh_s
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _fetch(self, url: str) -> dict[str, Any]:
        if self._client is None:
            self._client = httpx.Client(timeout=5.0, follow_redirects=False)
        try:
            resp = self._client.get(check_jwks_url(url), headers={"Accept": "application/json"})
            resp.raise_for_status()
            if len(resp.content) > MAX_JWKS_BYTES:
                raise InvalidJwks("the published JWKS is too large")
            return validate_jwks(resp.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise InvalidJwks("the client's jwks_url could not be fetched") from exc

    def get(self, url: str, *, refresh: bool = False) -> dict[str, Any]:
        """The JWK Set at ``url``, from cache unless stale or ``refresh`` is allowed now."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None:
            age = now - cached[0]
            if age < self._ttl and not (refresh and age >= self._min_refresh):
                return cached[1]
        jwks = self._fetch(url)
        with self._lock:
            self._cache[url] = (now, jwks)
        return jwks
