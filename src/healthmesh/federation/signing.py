"""Mutual authentication of node→hub calls: signed requests and signed responses.

A request is signed with the node's Ed25519 key over::

    "healthmesh-federation/v1\\nrequest\\n" METHOD "\\n" path?query "\\n" timestamp "\\n"
    nonce "\\n" hex(SHA-256(body)) "\\n"

and carries ``X-HM-Fed-Institution``, ``X-HM-Fed-Key`` (key id), ``X-HM-Fed-Timestamp``
(POSIX seconds), ``X-HM-Fed-Nonce`` and ``X-HM-Fed-Signature`` (base64). The verifier accepts
it only within ``window_s`` of its clock and only once per nonce (:class:`NonceStore`), so a
captured request cannot be replayed. The hub answers with ``X-HM-Fed-Key`` and
``X-HM-Fed-Signature`` over ``"healthmesh-federation/v1\\nresponse\\n" status "\\n"
request-nonce "\\n" hex(SHA-256(body)) "\\n"``: bound to the request's single-use nonce, so a
node detects a forged, tampered or replayed answer.

This generalises :mod:`healthmesh.ledger.auth` (same idea, its own domain string, key ids of
federation identities); the ledger keeps its own scheme.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature

from healthmesh.errors import Unauthorized
from healthmesh.federation.identity import Identity, PublicRecord

DOMAIN = "healthmesh-federation/v1"
H_INSTITUTION = "X-HM-Fed-Institution"
H_KEY = "X-HM-Fed-Key"
H_TIMESTAMP = "X-HM-Fed-Timestamp"
H_NONCE = "X-HM-Fed-Nonce"
H_SIGNATURE = "X-HM-Fed-Signature"
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def request_message(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """The bytes a node signs for one request (``path`` includes the query string)."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{DOMAIN}\nrequest\n{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{digest}\n".encode()


def response_message(status: int, request_nonce: str, body: bytes) -> bytes:
    """The bytes the hub signs for its answer to the request with ``request_nonce``."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{DOMAIN}\nresponse\n{status}\n{request_nonce}\n{digest}\n".encode()


def new_nonce() -> str:
    """A fresh random nonce (24 URL-safe characters)."""
    return secrets.token_urlsafe(18)


def sign_request(
    identity: Identity, method: str, path: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """Headers that authenticate this request as ``identity``."""
    ts = int(time.time() if now is None else now)
    nonce = new_nonce()
    sig = identity.sign(request_message(method, path, ts, nonce, body))
    return {
        H_INSTITUTION: identity.institution,
        H_KEY: identity.key_id,
        H_TIMESTAMP: str(ts),
        H_NONCE: nonce,
        H_SIGNATURE: base64.b64encode(sig).decode(),
    }


def sign_response(
    identity: Identity, status: int, request_nonce: str, body: bytes
) -> dict[str, str]:
    """Headers the hub attaches to its answer."""
    sig = identity.sign(response_message(status, request_nonce, body))
    return {H_KEY: identity.key_id, H_SIGNATURE: base64.b64encode(sig).decode()}


def _verify(record: PublicRecord, signature: bytes, message: bytes) -> bool:
    try:
        record.sign_public().verify(signature, message)
    except InvalidSignature:
        return False
    return True


def header(headers: Mapping[str, str], name: str) -> str:
    """Header ``name`` (case-insensitive, also in plain dicts) or ``""``."""
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), "")
    return value


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized(f"malformed {what}") from exc


def verify_response(
    hub: PublicRecord, status: int, request_nonce: str, headers: Mapping[str, str], body: bytes
) -> None:
    """Raise :class:`Unauthorized` unless the answer carries ``hub``'s signature over it."""
    if header(headers, H_KEY) != hub.key_id:
        raise Unauthorized("response is not signed by the hub's key")
    sig = _b64(header(headers, H_SIGNATURE), "response signature")
    if not _verify(hub, sig, response_message(status, request_nonce, body)):
        raise Unauthorized("response signature does not verify")


class NonceStore(Protocol):
    """Single-use nonces per institution (memory: :class:`MemoryNonceStore`; SQL:
    :class:`healthmesh.federation.nonces.SqlNonceStore`)."""

    def use(self, institution: str, nonce: str, expires_at: float, now: float) -> bool:
        """Record the nonce; ``False`` when it was already used. Nonces may be forgotten
        once ``now`` passes their ``expires_at``."""
        ...


class MemoryNonceStore:
    """:class:`NonceStore` in a dict (one process)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}

    def use(self, institution: str, nonce: str, expires_at: float, now: float) -> bool:
        """See :meth:`NonceStore.use`."""
        if len(self._seen) > 10_000:
            self._seen = {k: v for k, v in self._seen.items() if v >= now}
        key = (institution, nonce)
        if key in self._seen and self._seen[key] >= now:
            return False
        self._seen[key] = expires_at
        return True


@dataclass(frozen=True)
class Authenticated:
    """Who sent a verified request."""

    institution: str
    key_id: str
    nonce: str


class RequestVerifier:
    """Checks signed requests against the keys ``keys_of(institution)`` returns."""

    def __init__(
        self,
        keys_of: Callable[[str], Sequence[PublicRecord]],
        nonces: NonceStore,
        *,
        window_s: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys_of = keys_of
        self.nonces = nonces
        self.window_s = window_s
        self.clock = clock

    def verify(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Authenticated:
        """The authenticated sender, or :class:`Unauthorized` (bad or missing signature,
        unknown key, outside the time window, replayed nonce). The nonce is used only
        when the signature verifies."""
        inst, key_id = header(headers, H_INSTITUTION), header(headers, H_KEY)
        ts_s, nonce = header(headers, H_TIMESTAMP), header(headers, H_NONCE)
        if not inst or not key_id or not ts_s.isdigit() or not NONCE_PATTERN.fullmatch(nonce):
            raise Unauthorized("missing or malformed request signature headers")
        sig = _b64(header(headers, H_SIGNATURE), "request signature")
        now = int(self.clock())
        ts = int(ts_s)
        if abs(now - ts) > self.window_s:
            raise Unauthorized("request timestamp outside the accepted window")
        record = next((k for k in self.keys_of(inst) if k.key_id == key_id), None)
        if record is None:
            raise Unauthorized("request key is not an active key of the institution")
        if not _verify(record, sig, request_message(method, path, ts, nonce, body)):
            raise Unauthorized("request signature does not verify")
        if not self.nonces.use(inst, nonce, ts + self.window_s, now):
            raise Unauthorized("request replayed")
        return Authenticated(inst, key_id, nonce)
