"""Slow, salted hashes of client secrets (scrypt), so a leaked database reveals no secret.

Uses :func:`hashlib.scrypt` (OpenSSL). The stored form is self-describing,
``scrypt$<log2 N>$<r>$<p>$<salt>$<hash>`` (base64url), so the cost can rise later without
breaking existing hashes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

__all__ = ["dummy_hash", "hash_secret", "new_secret", "verify_secret"]

LOG2_N = 14
R = 8
P = 1
_DKLEN = 32
_MAXMEM = 256 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=2**log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=_DKLEN
    )


def new_secret() -> str:
    """A fresh random client secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, *, log2_n: int = LOG2_N) -> str:
    """Hash ``secret`` with a random salt.

    >>> h = hash_secret("s3cret", log2_n=10)
    >>> h.startswith("scrypt$10$8$1$"), verify_secret("s3cret", h), verify_secret("x", h)
    (True, True, False)
    """
    salt = secrets.token_bytes(16)
    digest = _derive(secret, salt, log2_n, R, P)
    return f"scrypt${log2_n}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches ``stored`` (constant-time comparison)."""
    try:
        scheme, log2_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or not 10 <= int(log2_n) <= 20:
            return False
        actual = _derive(secret, _unb64(salt), int(log2_n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, _unb64(digest))


@functools.cache
def dummy_hash() -> str:
    """A hash to check against when a client does not exist, so both paths cost the same."""
    return hash_secret(new_secret())
