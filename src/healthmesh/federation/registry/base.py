"""The hub's registry of institutions and their federation keys: contract and rules.

Life of an institution: ``register`` (pending) → operator ``approve`` or ``reject``; an approved
institution may ``rotate`` to a new key, proving it with a signature of a current key
(:func:`rotation_message`); the old key stays valid for an overlap so requests already in flight
still verify. ``revoke`` removes one key (by ``key_id``) or the whole institution at once.
Only an approved institution has :meth:`InstitutionRegistry.active_keys`.

The rules live once in :class:`RegistryRules`; implementations only load and save
:class:`Institution` documents (memory: :mod:`.memory`, SQL: :mod:`.sql`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, ConfigDict, Field

from healthmesh.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from healthmesh.federation.identity import Identity, PublicRecord
from healthmesh.federation.messages import InstitutionMetadata, Registration, RegistrationStatus

DEFAULT_OVERLAP_S = 3600.0


class KeyEntry(BaseModel):
    """One key of an institution; ``not_after`` is set when a rotation retires it."""

    model_config = ConfigDict(frozen=True)

    record: PublicRecord
    added_at: dt.datetime
    not_after: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    def active(self, now: dt.datetime) -> bool:
        """Whether this key verifies requests at ``now``."""
        return self.revoked_at is None and (self.not_after is None or now < self.not_after)


class Institution(BaseModel):
    """An institution as the hub knows it."""

    model_config = ConfigDict(frozen=True)

    institution: str
    metadata: InstitutionMetadata
    status: RegistrationStatus
    keys: list[KeyEntry] = Field(default_factory=list)
    registered_at: dt.datetime
    decided_at: dt.datetime | None = None
    decided_by: str | None = None
    reason: str | None = None


class InstitutionRegistry(Protocol):
    """Institutions and their keys at the hub."""

    def register(self, record: PublicRecord, metadata: InstitutionMetadata) -> Registration:
        """Register (pending). The same key again is idempotent; another key while pending or
        approved is a :class:`~healthmesh.errors.Conflict` (use :meth:`rotate`); a rejected
        institution may register again; a revoked one is :class:`~healthmesh.errors.Forbidden`."""
        ...

    def approve(self, institution: str, operator: str) -> Institution:
        """An operator approves a pending institution (idempotent when already approved)."""
        ...

    def reject(self, institution: str, operator: str, reason: str) -> Institution:
        """An operator rejects a pending institution."""
        ...

    def rotate(
        self,
        institution: str,
        new: PublicRecord,
        signature: str,
        overlap_s: float = DEFAULT_OVERLAP_S,
    ) -> Registration:
        """Add ``new`` as the institution's key; ``signature`` (base64) is a current key's
        signature of :func:`rotation_message`. Older keys expire after ``overlap_s``."""
        ...

    def revoke(
        self, *, operator: str, key_id: str | None = None, institution: str | None = None
    ) -> Institution:
        """Revoke one key (``key_id``) or a whole institution (all its keys)."""
        ...

    def active_keys(self, institution: str) -> list[PublicRecord]:
        """Keys that verify the institution's requests now (none unless approved)."""
        ...

    def get(self, institution: str) -> Institution:
        """One institution (:class:`~healthmesh.errors.NotFound` if unknown)."""
        ...

    def institutions(self, status: RegistrationStatus | None = None) -> list[Institution]:
        """Institutions (optionally of one status), by id."""
        ...


def rotation_message(institution: str, new: PublicRecord) -> bytes:
    """The bytes a current key signs to introduce ``new``."""
    return (
        f"healthmesh-federation/v1\nrotate\n{institution}\n{new.key_id}\n"
        f"{new.sign_key}\n{new.enc_key}\n"
    ).encode()


def sign_rotation(current: Identity, new: PublicRecord) -> str:
    """Base64 signature of :func:`rotation_message` by the current identity."""
    return base64.b64encode(current.sign(rotation_message(current.institution, new))).decode()


def _registration(inst: Institution, key_id: str) -> Registration:
    return Registration(institution=inst.institution, key_id=key_id, status=inst.status)


class RegistryRules(ABC):
    """:class:`InstitutionRegistry` rules over a document store of :class:`Institution`."""

    def __init__(self, clock: Callable[[], float] = time.time, cache_s: float = 1.0) -> None:
        self.clock = clock
        #: how long a read institution is reused by :meth:`get` and :meth:`active_keys`
        #: (every request reads its sender's keys). A change made through this registry
        #: takes effect at once; one made by another hub process sharing the database
        #: (a revocation from the CLI) within ``cache_s`` seconds. 0 disables the cache.
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, Institution]] = {}
        self._cache_lock = threading.Lock()

    @abstractmethod
    def _load(self, institution: str) -> Institution | None: ...

    @abstractmethod
    def _save(self, inst: Institution, *, new: bool) -> None:
        """Insert (``new``) or replace an institution; an insert that loses a race raises
        :class:`~healthmesh.errors.Conflict`."""

    @abstractmethod
    def _all(self) -> list[Institution]: ...

    @abstractmethod
    def _owner_of(self, key_id: str) -> str | None: ...

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def _cached(self, institution: str) -> Institution | None:
        """The institution, from the cache while it is fresh (see ``cache_s``)."""
        if self.cache_s <= 0:
            return self._load(institution)
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(institution)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        inst = self._load(institution)
        with self._cache_lock:
            if inst is None:
                self._cache.pop(institution, None)
            else:
                self._cache[institution] = (now, inst)
        return inst

    def _store(self, inst: Institution, *, new: bool) -> None:
        """Save and forget any cached copy (before and after: a reader racing the save
        cannot keep the old one)."""
        with self._cache_lock:
            self._cache.pop(inst.institution, None)
        try:
            self._save(inst, new=new)
        finally:
            with self._cache_lock:
                self._cache.pop(inst.institution, None)

    def _fresh(self, institution: str) -> Institution:
        inst = self._load(institution)
        if inst is None:
            raise NotFound("unknown institution")
        return inst

    def get(self, institution: str) -> Institution:
        """See :meth:`InstitutionRegistry.get` (may be up to ``cache_s`` old, see there)."""
        inst = self._cached(institution)
        if inst is None:
            raise NotFound("unknown institution")
        return inst

    def institutions(self, status: RegistrationStatus | None = None) -> list[Institution]:
        """See :meth:`InstitutionRegistry.institutions`."""
        found = [i for i in self._all() if status is None or i.status == status]
        return sorted(found, key=lambda i: i.institution)

    def register(self, record: PublicRecord, metadata: InstitutionMetadata) -> Registration:
        """See :meth:`InstitutionRegistry.register`."""
        now = self._now()
        owner = self._owner_of(record.key_id)
        if owner is not None and owner != record.institution:
            raise Conflict("this key is registered to another institution")
        inst = self._load(record.institution)
        entry = KeyEntry(record=record, added_at=now)
        if inst is None:
            inst = Institution(
                institution=record.institution,
                metadata=metadata,
                status="pending",
                keys=[entry],
                registered_at=now,
            )
            self._store(inst, new=True)
            return _registration(inst, record.key_id)
        if inst.status == "revoked":
            raise Forbidden("institution is revoked")
        if inst.status == "rejected":
            inst = inst.model_copy(
                update={
                    "status": "pending",
                    "metadata": metadata,
                    "keys": [entry],
                    "registered_at": now,
                    "decided_at": None,
                    "decided_by": None,
                    "reason": None,
                }
            )
            self._store(inst, new=False)
            return _registration(inst, record.key_id)
        if any(k.record == record for k in inst.keys):
            return _registration(inst, record.key_id)
        raise Conflict("institution already registered with another key; rotate it instead")

    def _decide(
        self, institution: str, operator: str, status: RegistrationStatus, reason: str | None
    ) -> Institution:
        inst = self._fresh(institution)
        if inst.status == status:
            return inst
        if inst.status != "pending":
            raise Conflict(f"institution is {inst.status}, not pending")
        inst = inst.model_copy(
            update={
                "status": status,
                "decided_at": self._now(),
                "decided_by": operator,
                "reason": reason,
            }
        )
        self._store(inst, new=False)
        return inst

    def approve(self, institution: str, operator: str) -> Institution:
        """See :meth:`InstitutionRegistry.approve`."""
        return self._decide(institution, operator, "approved", None)

    def reject(self, institution: str, operator: str, reason: str) -> Institution:
        """See :meth:`InstitutionRegistry.reject`."""
        if not reason.strip():
            raise InvalidInput("a rejection needs a reason")
        return self._decide(institution, operator, "rejected", reason)

    def rotate(
        self,
        institution: str,
        new: PublicRecord,
        signature: str,
        overlap_s: float = DEFAULT_OVERLAP_S,
    ) -> Registration:
        """See :meth:`InstitutionRegistry.rotate`."""
        if new.institution != institution:
            raise InvalidInput("the new key names another institution")
        if overlap_s < 0:
            raise InvalidInput("overlap must not be negative")
        inst = self._fresh(institution)
        if inst.status != "approved":
            raise Forbidden("only an approved institution may rotate its key")
        try:
            sig = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Unauthorized("malformed rotation signature") from exc
        now = self._now()
        msg = rotation_message(institution, new)
        if not any(k.active(now) and _verifies(k.record, sig, msg) for k in inst.keys):
            raise Unauthorized("rotation is not signed by a current key of the institution")
        if any(k.record.key_id == new.key_id for k in inst.keys):
            return _registration(inst, new.key_id)
        if self._owner_of(new.key_id) is not None:
            raise Conflict("this key is registered to another institution")
        until = now + dt.timedelta(seconds=overlap_s)
        keys = [
            k.model_copy(update={"not_after": until})
            if k.active(now) and (k.not_after is None or k.not_after > until)
            else k
            for k in inst.keys
        ]
        keys.append(KeyEntry(record=new, added_at=now))
        inst = inst.model_copy(update={"keys": keys})
        self._store(inst, new=False)
        return _registration(inst, new.key_id)

    def revoke(
        self, *, operator: str, key_id: str | None = None, institution: str | None = None
    ) -> Institution:
        """See :meth:`InstitutionRegistry.revoke`."""
        if (key_id is None) == (institution is None):
            raise InvalidInput("revoke either one key_id or one institution")
        if key_id is not None:
            institution = self._owner_of(key_id)
            if institution is None:
                raise NotFound("unknown key")
        inst = self._fresh(institution or "")
        now = self._now()
        keys = [
            k.model_copy(update={"revoked_at": now})
            if k.revoked_at is None and (key_id is None or k.record.key_id == key_id)
            else k
            for k in inst.keys
        ]
        update: dict[str, object] = {"keys": keys}
        if key_id is None:
            update |= {"status": "revoked", "decided_at": now, "decided_by": operator}
        inst = inst.model_copy(update=update)
        self._store(inst, new=False)
        return inst

    def active_keys(self, institution: str) -> list[PublicRecord]:
        """See :meth:`InstitutionRegistry.active_keys`."""
        inst = self._cached(institution)
        if inst is None or inst.status != "approved":
            return []
        now = self._now()
        return [k.record for k in inst.keys if k.active(now)]


def _verifies(record: PublicRecord, sig: bytes, msg: bytes) -> bool:
    try:
        record.sign_public().verify(sig, msg)
    except InvalidSignature:
        return False
    return True
