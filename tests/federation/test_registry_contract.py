"""One contract suite for the institution registry: in-memory, SQLite file and PostgreSQL."""

from __future__ import annotations

import base64

import pytest

from healthmesh.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import InstitutionMetadata
from healthmesh.federation.registry import (
    InstitutionRegistry,
    MemoryRegistry,
    SqlRegistry,
    sign_rotation,
)

from .conftest import Clock

META = InstitutionMetadata(
    name="First People's Hospital 第一人民医院", kind="hospital", classification=3
)


@pytest.fixture
def registry(backend: str | None, clock: Clock) -> InstitutionRegistry:
    return MemoryRegistry(clock) if backend is None else SqlRegistry(backend, clock)


def test_register_is_pending_until_approved(registry: InstitutionRegistry) -> None:
    a = Identity.generate("hosp-a")
    reg = registry.register(a.public_record(), META)
    assert (reg.institution, reg.key_id, reg.status) == ("hosp-a", a.key_id, "pending")
    assert registry.active_keys("hosp-a") == []
    assert registry.register(a.public_record(), META).status == "pending"  # idempotent
    inst = registry.approve("hosp-a", "op-1")
    assert inst.status == "approved" and inst.decided_by == "op-1"
    assert inst.metadata == META
    assert registry.approve("hosp-a", "op-1").status == "approved"
    assert registry.active_keys("hosp-a") == [a.public_record()]
    assert registry.register(a.public_record(), META).status == "approved"
    assert [i.institution for i in registry.institutions("approved")] == ["hosp-a"]
    assert registry.institutions("pending") == []


def test_unknown_institution(registry: InstitutionRegistry) -> None:
    with pytest.raises(NotFound):
        registry.get("nobody")
    with pytest.raises(NotFound):
        registry.approve("nobody", "op")
    assert registry.active_keys("nobody") == []


def test_second_key_needs_rotation_and_keys_are_unique(registry: InstitutionRegistry) -> None:
    a = Identity.generate("hosp-a")
    registry.register(a.public_record(), META)
    with pytest.raises(Conflict):
        registry.register(Identity.generate("hosp-a").public_record(), META)
    # the same key cannot be claimed by another institution
    stolen = Identity("hosp-b", a.sign_key, a.enc_key)
    with pytest.raises(Conflict):
        registry.register(stolen.public_record(), META)


def test_reject_then_register_again(registry: InstitutionRegistry) -> None:
    a = Identity.generate("clinic-7")
    registry.register(a.public_record(), META)
    with pytest.raises(InvalidInput):
        registry.reject("clinic-7", "op", " ")
    inst = registry.reject("clinic-7", "op", "unknown institution")
    assert inst.status == "rejected" and inst.reason == "unknown institution"
    assert registry.active_keys("clinic-7") == []
    with pytest.raises(Conflict):
        registry.approve("clinic-7", "op")
    b = Identity.generate("clinic-7")
    assert registry.register(b.public_record(), META).status == "pending"
    assert [k.record.key_id for k in registry.get("clinic-7").keys] == [b.key_id]


def test_rotation_keeps_old_key_for_the_overlap(
    registry: InstitutionRegistry, clock: Clock
) -> None:
    old = Identity.generate("cdc-1")
    registry.register(old.public_record(), META)
    registry.approve("cdc-1", "op")
    new = Identity.generate("cdc-1")
    sig = sign_rotation(old, new.public_record())
    reg = registry.rotate("cdc-1", new.public_record(), sig, overlap_s=600)
    assert reg.key_id == new.key_id and reg.status == "approved"
    assert {k.key_id for k in registry.active_keys("cdc-1")} == {old.key_id, new.key_id}
    assert registry.rotate("cdc-1", new.public_record(), sig).key_id == new.key_id  # idempotent
    clock.advance(601)
    assert [k.key_id for k in registry.active_keys("cdc-1")] == [new.key_id]
    # the retired key can no longer introduce keys
    newer = Identity.generate("cdc-1")
    with pytest.raises(Unauthorized):
        registry.rotate("cdc-1", newer.public_record(), sign_rotation(old, newer.public_record()))


def test_rotation_refusals(registry: InstitutionRegistry) -> None:
    a = Identity.generate("hosp-a")
    registry.register(a.public_record(), META)
    new = Identity.generate("hosp-a")
    with pytest.raises(Forbidden):  # pending
        registry.rotate("hosp-a", new.public_record(), sign_rotation(a, new.public_record()))
    registry.approve("hosp-a", "op")
    intruder = Identity.generate("hosp-a")
    with pytest.raises(Unauthorized):
        registry.rotate("hosp-a", new.public_record(), sign_rotation(intruder, new.public_record()))
    with pytest.raises(Unauthorized):
        registry.rotate("hosp-a", new.public_record(), "not base64!")
    bad = base64.b64encode(b"\0" * 64).decode()
    with pytest.raises(Unauthorized):
        registry.rotate("hosp-a", new.public_record(), bad)
    with pytest.raises(InvalidInput):
        other = Identity.generate("hosp-b")
        registry.rotate("hosp-a", other.public_record(), sign_rotation(a, other.public_record()))
    assert [k.key_id for k in registry.active_keys("hosp-a")] == [a.key_id]


def test_revoke_key_and_institution(registry: InstitutionRegistry) -> None:
    old = Identity.generate("hosp-a")
    registry.register(old.public_record(), META)
    registry.approve("hosp-a", "op")
    new = Identity.generate("hosp-a")
    registry.rotate("hosp-a", new.public_record(), sign_rotation(old, new.public_record()))
    registry.revoke(operator="op", key_id=old.key_id)
    assert [k.key_id for k in registry.active_keys("hosp-a")] == [new.key_id]
    assert registry.get("hosp-a").status == "approved"
    with pytest.raises(NotFound):
        registry.revoke(operator="op", key_id="0123456789abcdef")
    with pytest.raises(InvalidInput):
        registry.revoke(operator="op")
    inst = registry.revoke(operator="op", institution="hosp-a")
    assert inst.status == "revoked" and all(k.revoked_at is not None for k in inst.keys)
    assert registry.active_keys("hosp-a") == []
    with pytest.raises(Forbidden):
        registry.register(Identity.generate("hosp-a").public_record(), META)
    with pytest.raises(Forbidden):
        registry.register(new.public_record(), META)
