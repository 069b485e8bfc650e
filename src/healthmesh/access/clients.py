"""The registry of OAuth clients allowed to obtain tokens from a node, in its database.

A client authenticates either with ``client_secret_basic`` (a random secret shown once and
stored only as a scrypt hash) or with ``private_key_jwt`` (SMART Backend Services: a JWKS,
inline or at a URL). Registered scopes are the ceiling of what a token can grant.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from healthmesh.access import _tables as t
from healthmesh.access.jwks import check_jwks_url, validate_jwks
from healthmesh.access.passwords import dummy_hash, hash_secret, new_secret, verify_secret
from healthmesh.access.scopes import InvalidScope, ScopeSet
from healthmesh.db import apply_migrations
from healthmesh.errors import Conflict, InvalidInput, NotFound, Unauthorized

__all__ = ["AUTH_METHODS", "ClientRecord", "ClientRegistry", "Credentials"]

AUTH_METHODS = ("client_secret_basic", "private_key_jwt")
JTI_GRACE_S = 600


@dataclass(frozen=True)
class Credentials:
    """What a new client must keep: its id and (for ``client_secret_basic``) its secret,
    which is shown this once and cannot be recovered."""

    client_id: str
    client_secret: str | None


@dataclass(frozen=True)
class ClientRecord:
    """A registered client, without its secret hash."""

    client_id: str
    name: str
    scopes: ScopeSet
    method: str
    jwks: dict[str, Any] | None
    jwks_url: str | None
    enabled: bool
    created_at: datetime


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _check_scopes(scopes: str) -> ScopeSet:
    parsed = ScopeSet.parse(scopes)
    if not parsed.resources or parsed.other or parsed.contexts != {"system"}:
        raise InvalidScope("backend clients may register system/ resource scopes only")
    return parsed


def _record(row: sa.Row[Any]) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id,
        name=row.name,
        scopes=ScopeSet.parse(row.scopes),
        method=row.auth_method,
        jwks=json.loads(row.jwks) if row.jwks else None,
        jwks_url=row.jwks_url,
        enabled=bool(row.enabled),
        created_at=_utc(row.created_at),
    )


def new_client_id() -> str:
    """A random client id that never starts with ``-`` (a command line would read it as an
    option)."""
    while True:
        client_id = secrets.token_urlsafe(16)
        if not client_id.startswith("-"):
            return client_id


class ClientRegistry:
    """Clients of one node, stored in its SQLite or PostgreSQL database.

    Examples
    --------
    >>> from healthmesh.db import make_engine
    >>> reg = ClientRegistry(make_engine(":memory:"))
    >>> creds = reg.add("cdc-export", "system/*.rs")
    >>> reg.get(creds.client_id).scopes.allows("Patient", "s")
    True
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        apply_migrations(engine, t.COMPONENT, t.MIGRATIONS)

    # -- registration ---------------------------------------------------------------------
    def add(
        self,
        name: str,
        scopes: str,
        *,
        method: str = "client_secret_basic",
        jwks: dict[str, Any] | None = None,
        jwks_url: str | None = None,
    ) -> Credentials:
        """Register a client; return its id and, for ``client_secret_basic``, its secret."""
        if not name.strip() or len(name) > 200:
            raise InvalidInput("client name must be 1-200 characters")
        granted = _check_scopes(scopes)
        secret: str | None = None
        if method == "client_secret_basic":
            if jwks is not None or jwks_url is not None:
                raise InvalidInput("client_secret_basic clients take no JWKS")
            secret = new_secret()
        elif method == "private_key_jwt":
            if (jwks is None) == (jwks_url is None):
                raise InvalidInput("private_key_jwt clients need exactly one of jwks, jwks_url")
        else:
            raise InvalidInput(f"auth method must be one of {', '.join(AUTH_METHODS)}")
        client_id = new_client_id()
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.clients.insert().values(
                        client_id=client_id,
                        name=name.strip(),
                        scopes=str(granted),
                        auth_method=method,
                        secret_hash=hash_secret(secret) if secret else None,
                        jwks=json.dumps(validate_jwks(jwks)) if jwks is not None else None,
                        jwks_url=check_jwks_url(jwks_url) if jwks_url is not None else None,
                        enabled=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise Conflict("a client with this name already exists") from None
        return Credentials(client_id, secret)

    def _update(self, client_id: str, **values: Any) -> None:
        values["updated_at"] = datetime.now(UTC)
        with self.engine.begin() as conn:
            done = conn.execute(
                t.clients.update().where(t.clients.c.client_id == client_id).values(**values)
            )
        if done.rowcount != 1:
            raise NotFound("no such client")

    def disable(self, client_id: str) -> None:
        """Refuse new tokens to this client (tokens already issued expire on their own)."""
        self._update(client_id, enabled=False)

    def enable(self, client_id: str) -> None:
        self._update(client_id, enabled=True)

    def set_scopes(self, client_id: str, scopes: str) -> None:
        """Replace the registered scopes (the ceiling for future tokens)."""
        self._update(client_id, scopes=str(_check_scopes(scopes)))

    def set_keys(
        self, client_id: str, *, jwks: dict[str, Any] | None = None, jwks_url: str | None = None
    ) -> None:
        """Replace the public keys of a ``private_key_jwt`` client (key rotation)."""
        if self.get(client_id).method != "private_key_jwt" or (jwks is None) == (jwks_url is None):
            raise InvalidInput("set exactly one of jwks, jwks_url on a private_key_jwt client")
        self._update(
            client_id,
            jwks=json.dumps(validate_jwks(jwks)) if jwks is not None else None,
            jwks_url=check_jwks_url(jwks_url) if jwks_url is not None else None,
        )

    def rotate_secret(self, client_id: str) -> Credentials:
        """Issue a new secret to a ``client_secret_basic`` client; the old one stops working."""
        if self.get(client_id).method != "client_secret_basic":
            raise InvalidInput("only client_secret_basic clients have a secret")
        secret = new_secret()
        self._update(client_id, secret_hash=hash_secret(secret))
        return Credentials(client_id, secret)

    # -- lookup ---------------------------------------------------------------------------
    def get(self, client_id: str) -> ClientRecord:
        """The client with this id; :class:`~healthmesh.errors.NotFound` if none."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.clients).where(t.clients.c.client_id == client_id)
            ).first()
        if row is None:
            raise NotFound("no such client")
        return _record(row)

    def list(self) -> builtins.list[ClientRecord]:
        """All clients, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.clients).order_by(t.clients.c.created_at, t.clients.c.client_id)
            ).all()
        return [_record(r) for r in rows]

    # -- authentication -------------------------------------------------------------------
    def authenticate_secret(self, client_id: str, secret: str) -> ClientRecord:
        """The enabled ``client_secret_basic`` client with this id and secret, else
        :class:`~healthmesh.errors.Unauthorized` (same cost whether or not the id exists)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.clients).where(t.clients.c.client_id == client_id)
            ).first()
        stored = row.secret_hash if row is not None and row.secret_hash else dummy_hash()
        ok = verify_secret(secret, stored)
        if row is None or not ok or not row.secret_hash:
            raise Unauthorized("client authentication failed")
        record = _record(row)
        if not record.enabled or record.method != "client_secret_basic":
            raise Unauthorized("client authentication failed")
        return record

    def remember_jti(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record an assertion's ``jti`` until ``expires_at`` (epoch seconds).

        Returns ``False`` when it was already seen (a replay). Entries expired for longer
        than :data:`JTI_GRACE_S` (more than any accepted clock skew) are purged.
        """
        digest = hashlib.sha256(jti.encode()).hexdigest()
        now = int(datetime.now(UTC).timestamp())
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.assertion_jti.delete().where(t.assertion_jti.c.expires_at < now - JTI_GRACE_S)
                )
                conn.execute(
                    t.assertion_jti.insert().values(
                        client_id=client_id, jti_hash=digest, expires_at=expires_at
                    )
                )
        except IntegrityError:
            return False
        return True
