"""PPRL across a small synthetic region, scored against the region's truth files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from healthmesh.identity.evaluation import (
    PairwiseScores,
    pairwise_scores,
    region_patients,
    truth_of,
)
from healthmesh.identity.fhir_patient import (
    encode_groups,
    merged_into,
    quasi_identifiers,
    standardised,
)
from healthmesh.identity.idnumber import try_parse_id_number
from healthmesh.identity.pprl.groups import chinese_groups
from healthmesh.identity.pprl.multiparty import link_region
from healthmesh.identity.pprl.presets import CHINESE_BLOCKING
from healthmesh.synth.region.config import RegionConfig
from healthmesh.synth.region.ingest import region_institutions
from healthmesh.synth.region.region import generate_region

SECRET = b"region-test-linkage-project-secret"


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region") / "r"
    generate_region(RegionConfig(seed=11, people=1500, days=365), out)
    return out


def test_region_pprl_f1_against_truth(region: Path) -> None:
    truth: dict[tuple[str, str], str] = {}
    merged: dict[tuple[str, str], tuple[str, str]] = {}
    tables = {}
    for inst in region_institutions(region):
        patients = region_patients(region, inst)
        truth.update(
            {(inst, pid): person for pid, person in truth_of(region, inst, patients).items()}
        )
        live = [(pid, p) for pid, p in patients.items() if merged_into(p) is None]
        merged.update(
            {
                (inst, pid): (inst, str(merged_into(p))[8:])
                for pid, p in patients.items()
                if merged_into(p)
            }
        )
        tables[inst] = encode_groups(SECRET, standardised(live))
    with (region / "truth" / "records.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    # every local record is scored (a CDC holds one Patient per report card: more Patients)
    assert len(truth) >= len(rows)
    assert set(truth.values()) == {row["person_id"] for row in rows}
    result = link_region(
        tables, chinese_groups(), tf_adjust={0: CHINESE_BLOCKING.index(("surname", "given"))}
    )
    predicted = result.clusters()
    predicted.update({k: predicted[s] for k, s in merged.items()})
    scores = pairwise_scores(predicted, truth)
    print(f"region PPRL P={scores.precision:.4f} R={scores.recall:.4f} F1={scores.f1:.4f}")
    assert scores.true_pairs > 1000
    assert scores.f1 >= 0.98
    # the score depends on the truth: everyone alone finds nothing, one cluster is imprecise
    alone = pairwise_scores({k: i for i, k in enumerate(truth)}, truth)
    assert alone == PairwiseScores(1.0, 0.0, 0.0, scores.true_pairs, 0)
    assert pairwise_scores(dict.fromkeys(truth, 0), truth).precision < 0.01


def test_truth_of_cdc_report_cards_matches_the_identity_numbers(region: Path) -> None:
    persons: dict[str, str] = {}
    with (region / "truth" / "persons.csv").open(encoding="utf-8") as fh:
        persons = {row["person_id"]: row["id_number"] for row in csv.DictReader(fh)}
    patients = region_patients(region, "CDC01")
    assert patients
    checked = 0
    for pid, person in truth_of(region, "CDC01", patients).items():
        parsed = try_parse_id_number(quasi_identifiers(patients[pid], pid)["id_number"])
        if parsed is not None:
            assert parsed.number == persons[person]
            checked += 1
    assert checked >= len(patients) * 0.9


def test_pairwise_scores_refuses_unscored_records() -> None:
    with pytest.raises(KeyError):
        pairwise_scores({1: "a"}, {1: "x", 2: "x"})


def test_group_comparison_vectors_mark_missing_groups() -> None:
    from healthmesh.identity.pprl.fs_scoring import SegmentView, comparison_vectors
    from healthmesh.identity.standardise import standardise_record

    full = standardise_record(
        {
            "id": "h1",
            "name": "张伟",
            "id_number": "11010519491231002X",
            "phone": "13800138000",
            "address": "北京市西城区金融大街7号",
        }
    )
    member = standardise_record({"id": "p1", "name": "張偉", "phone": "13800138000"})
    other = standardise_record({"id": "c1", "name": "李娜", "id_number": "110105194912310029"})
    a = SegmentView(encode_groups(SECRET, [full]), chinese_groups())
    b = SegmentView(encode_groups(SECRET, [member, other]), chinese_groups())
    gamma = comparison_vectors(a, b, np.array([0, 0]), np.array([0, 1]))
    # name, birth+sex, address, phone, identity token
    assert gamma[0].tolist() == [3, -1, -1, 3, -1]  # the member: only name and phone known
    assert gamma[1][0] < 2 and gamma[1][4] == -1  # other name; invalid ID is not tokenised
