"""Per-institution request authentication for ledger writes.

A request is signed with the institution's registered Ed25519 key over
``"healthmesh-ledger-request/v1\\n" METHOD "\\n" path "\\n" timestamp "\\n" nonce "\\n"
hex(SHA-256(body)) "\\n"`` and carries ``X-HM-Institution``, ``X-HM-Timestamp`` (POSIX
seconds), ``X-HM-Nonce`` and ``X-HM-Signature`` (base64 of key ID || signature). The hub
accepts it only within ``window_s`` of its clock and only once per nonce (nonces are stored
until they fall out of the window), so a captured request cannot be replayed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Mapping

from healthmesh.errors import Unauthorized
from healthmesh.ledger.note import Ed25519Signer, NoteError, ed25519_verifier_from_vkey
from healthmesh.ledger.store.base import LedgerStore

H_INSTITUTION = "X-HM-Institution"
H_TIMESTAMP = "X-HM-Timestamp"
H_NONCE = "X-HM-Nonce"
H_SIGNATURE = "X-HM-Signature"
PURPOSE = "request-signing"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")


def request_message(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """The bytes an institution signs for one request."""
    digest = hashlib.sha256(body).hexdigest()
    return (
        f"healthmesh-ledger-request/v1\n{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{digest}\n"
    ).encode()


class RequestSigner:
    """Signs requests of ``institution`` with its Ed25519 key."""

    def __init__(self, institution: str, key: Ed25519Signer) -> None:
        self.institution = institution
        self.key = key

    def headers(
        self, method: str, path: str, body: bytes, now: int | None = None
    ) -> dict[str, str]:
        """Headers to attach to a request with this ``body`` to ``path`` (with its query)."""
        ts = int(time.time()) if now is None else now
        nonce = secrets.token_urlsafe(18)
        sig = self.key.key.sign(request_message(method, path, ts, nonce, body))
        return {
            H_INSTITUTION: self.institution,
            H_TIMESTAMP: str(ts),
            H_NONCE: nonce,
            H_SIGNATURE: base64.b64encode(self.key.key_id + sig).decode(),
        }


class RequestAuthenticator:
    """Checks signed requests against the keys registered in the store."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        window_s: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.window_s = window_s
        self.clock = clock

    def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> str:
        """Return the authenticated institution or raise :class:`Unauthorized`."""
        inst = headers.get(H_INSTITUTION, "")
        ts_s, nonce = headers.get(H_TIMESTAMP, ""), headers.get(H_NONCE, "")
        if not inst or not ts_s.isdigit() or not _NONCE.fullmatch(nonce):
            raise Unauthorized("missing or malformed request signature headers")
        try:
            raw = base64.b64decode(headers.get(H_SIGNATURE, ""), validate=True)
        except binascii.Error as exc:
            raise Unauthorized("malformed request signature") from exc
        now = int(self.clock())
        ts = int(ts_s)
        if abs(now - ts) > self.window_s:
            raise Unauthorized("request timestamp outside the accepted window")
        msg = request_message(method, path, ts, nonce, body)
        for rec in self.store.get_keys(inst):
            if rec.purpose != PURPOSE or not rec.active:
                continue
            try:
                v = ed25519_verifier_from_vkey(rec.vkey)
            except NoteError:
                continue
            if raw[:4] == v.key_id and v.verify_bytes(msg, raw[4:]):
                if not self.store.use_nonce(inst, nonce, ts + self.window_s, now):
                    raise Unauthorized("request replayed")
                return inst
        raise Unauthorized("request signature does not verify against a registered key")
