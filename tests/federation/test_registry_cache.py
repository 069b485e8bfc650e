"""The registry's read cache: a change through the same registry is seen at once; one made
by another process sharing the database (the CLI) within ``cache_s``."""

from __future__ import annotations

import time
from pathlib import Path

from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import InstitutionMetadata
from healthmesh.federation.registry import SqlRegistry

META = InstitutionMetadata(name="Hospital A", kind="hospital")


def _approved(db: str, cache_s: float) -> tuple[SqlRegistry, Identity]:
    reg = SqlRegistry(db, cache_s=cache_s)
    node = Identity.generate("hosp-a")
    reg.register(node.public_record(), META)
    reg.approve("hosp-a", "op")
    return reg, node


def test_same_registry_sees_revocation_at_once(tmp_path: Path) -> None:
    reg, node = _approved(str(tmp_path / "hub.sqlite"), cache_s=3600)
    assert [k.key_id for k in reg.active_keys("hosp-a")] == [node.key_id]
    assert reg.get("hosp-a").status == "approved"
    reg.revoke(operator="op", key_id=node.key_id)
    assert reg.active_keys("hosp-a") == []
    reg.revoke(operator="op", institution="hosp-a")
    assert reg.get("hosp-a").status == "revoked"


def test_other_process_revocation_within_cache_s(tmp_path: Path) -> None:
    db = str(tmp_path / "hub.sqlite")
    hub, _node = _approved(db, cache_s=0.3)
    assert hub.active_keys("hosp-a")  # now cached
    SqlRegistry(db).revoke(operator="op", institution="hosp-a")  # e.g. the CLI
    deadline = time.monotonic() + 5
    while hub.active_keys("hosp-a") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.active_keys("hosp-a") == []
    assert hub.get("hosp-a").status == "revoked"


def test_no_cache(tmp_path: Path) -> None:
    db = str(tmp_path / "hub.sqlite")
    hub, node = _approved(db, cache_s=0)
    assert hub.active_keys("hosp-a")
    SqlRegistry(db).revoke(operator="op", key_id=node.key_id)
    assert hub.active_keys("hosp-a") == []
