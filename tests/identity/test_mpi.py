"""Master patient index contract, run on SQLite (tmp_path) and PostgreSQL (pg_url)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from healthmesh.identity.mpi import curation
from healthmesh.identity.mpi import store as t
from healthmesh.identity.mpi.calibration import calibrate
from healthmesh.identity.mpi.service import (
    Encoding,
    MasterPatientIndex,
    Thresholds,
    UnregisteredInstitution,
)
from healthmesh.identity.pprl.encode import EncodedTable, encode_table
from healthmesh.identity.pprl.presets import CHINESE_BLOCKING, chinese_schema
from healthmesh.identity.standardise import standardise_record

from .cn_synth import hospital_and_clinic

SECRET = b"linkage-secret-known-to-nodes-only!"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "hub.db")
    return str(request.getfixturevalue("pg_url"))


def _encode(records: list[dict[str, str | None]]) -> EncodedTable:
    std = [standardise_record(r) for r in records]
    return encode_table(
        SECRET, chinese_schema(), std, identity_field="id_number", blocking_rules=CHINESE_BLOCKING
    )


def _enc(table: EncodedTable, i: int) -> Encoding:
    id_tok = int(table.id_tokens[i])
    return Encoding(
        table.clks[i].tobytes(),
        id_tok.to_bytes(8, "big") if id_tok else None,
        [int(x) or None for x in table.blocking[i]],
    )


@pytest.fixture(scope="module")
def region(shared_data: Path) -> tuple[list, list, set, EncodedTable, EncodedTable]:
    hosp, clinic, truth = hospital_and_clinic(shared_data, 100, seed=21)
    return hosp, clinic, truth, _encode(hosp), _encode(clinic)


def _load(mpi: MasterPatientIndex, region: tuple) -> None:
    _, _, _, eh, ec = region
    mpi.register_institution("hosp", "Hospital")
    mpi.register_institution("clinic", "Clinic")
    for i in range(len(eh)):
        mpi.submit("hosp", str(eh.ids[i]), _enc(eh, i))
    for i in range(len(ec)):
        mpi.submit("clinic", str(ec.ids[i]), _enc(ec, i))


def test_unregistered_and_deactivated_institutions_are_refused(db_url: str) -> None:
    mpi = MasterPatientIndex.open(db_url)
    with pytest.raises(UnregisteredInstitution):
        mpi.submit("rogue", "1", Encoding(b"\x01" * 16))
    mpi.register_institution("h", "H")
    mpi.submit("h", "1", Encoding(b"\x01" * 16))
    mpi.deactivate_institution("h")
    with pytest.raises(UnregisteredInstitution):
        mpi.submit("h", "2", Encoding(b"\x01" * 16))
    assert [a["action"] for a in mpi.audit_trail()].count("refused") == 2


def test_incremental_linking_finds_the_same_persons(db_url: str, region: tuple) -> None:
    mpi = MasterPatientIndex.open(db_url)
    _load(mpi, region)
    _, _, truth, _, _ = region
    same = sum(mpi.enterprise_of("hosp", h) == mpi.enterprise_of("clinic", c) for h, c in truth)
    assert same / len(truth) >= 0.97
    with mpi.engine.connect() as conn:
        n_enterprises = conn.execute(select(t.records.c.enterprise_id).distinct()).all()
    assert len(n_enterprises) <= 100 + 100 - same + 2
    trail = mpi.audit_trail()
    assert sum(a["action"] in ("link", "new") for a in trail) == 200
    # re-submission replaces the encodings and re-links, without a duplicate record
    ec = region[4]
    h, c = sorted(truth)[0]
    i = list(ec.ids).index(c)
    before = mpi.enterprise_of("clinic", c)
    decision = mpi.submit("clinic", c, _enc(ec, i))
    assert decision.enterprise_id == before == mpi.enterprise_of("hosp", h)
    assert len([m for m in mpi.members(before) if m["institution"] == "clinic"]) == 1


def test_calibration_sets_label_free_thresholds(db_url: str, region: tuple) -> None:
    mpi = MasterPatientIndex.open(db_url)
    th = calibrate(mpi, region[3], region[4])
    assert 0.7 < th.lower < th.upper < 1.0
    assert MasterPatientIndex.open(db_url).thresholds == th  # persisted


def test_merge_undo_split_and_review(db_url: str) -> None:
    mpi = MasterPatientIndex.open(db_url, Thresholds(upper=0.95, lower=0.6))
    mpi.register_institution("a", "A")
    mpi.register_institution("b", "B")
    base = bytes([0b10110010] * 16)
    near = bytes([0b10110011] * 16)  # Dice ~0.89: inside the review band
    d1 = mpi.submit("a", "1", Encoding(base, block_tokens=[7]))
    d2 = mpi.submit("b", "9", Encoding(near, block_tokens=[7]))
    assert d1.status == "new"
    assert d2.status == "review"
    assert 0.6 <= (d2.score or 0) < 0.95
    reviews = curation.open_reviews(mpi)
    assert [(r["institution"], r["local_id"]) for r in reviews] == [("b", "9")]
    curation.resolve_review(mpi, reviews[0]["review_id"], same_person=True, actor="steward")
    assert mpi.enterprise_of("b", "9") == d1.enterprise_id
    assert curation.open_reviews(mpi) == []
    new_id = curation.unmerge_record(mpi, "b", "9", actor="steward")
    assert mpi.enterprise_of("b", "9") == new_id != d1.enterprise_id
    merge_id = curation.merge(mpi, d1.enterprise_id, new_id, actor="steward")
    assert mpi.enterprise_of("b", "9") == d1.enterprise_id
    curation.undo_merge(mpi, merge_id, actor="steward")
    assert mpi.enterprise_of("b", "9") == new_id
    actions = [a["action"] for a in mpi.audit_trail()]
    for expected in ("review", "accept", "merge", "split", "unmerge"):
        assert expected in actions
    assert all(a["actor"] for a in mpi.audit_trail())


def test_hub_storage_and_logs_hold_no_plaintext(
    db_url: str, region: tuple, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mpi = MasterPatientIndex.open(db_url)
    _load(mpi, region)
    with pytest.raises(UnregisteredInstitution):
        mpi.submit("rogue", "x", _enc(region[3], 0))
    mpi.engine.dispose()
    hosp, clinic, _, _, _ = region
    secrets: set[str] = set()
    for rec in hosp + clinic:
        std = standardise_record(rec)
        secrets.update(
            v for v in (rec["name"], rec["id_number"], rec["phone"], rec["address"]) if v
        )
        secrets.update(v for v in (std["id_number"], std["phone"]) if v)
        if std["surname"] and std["given"] and len(std["surname"] + std["given"]) >= 6:
            secrets.add(std["surname"] + std["given"])
    blobs = [caplog.text.encode()]
    if db_url.endswith(".db"):
        blobs += [p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("hub.db")]
    engine = MasterPatientIndex.open(db_url).engine
    with engine.connect() as conn:
        for name in inspect(engine).get_table_names():
            for row in conn.exec_driver_sql(f"SELECT * FROM {name}").all():
                blobs.append(repr(tuple(row)).encode())
    haystack = b"\n".join(blobs)
    leaked = [s for s in secrets if s.encode() in haystack]
    assert len(secrets) > 600
    assert leaked == []
