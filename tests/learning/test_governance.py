"""Governed training on FHIR data: only approving institutions train, only research-consented
patients of the cohort are used, the privacy budget refuses an over-spending run, and a run is
recorded, registered and scored back at a node."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from healthmesh.analytics.cohort import AgeVariable, Cohort, ConditionVariable, SexVariable
from healthmesh.analytics.memory_data import ResourceData
from healthmesh.errors import DisclosureRisk, Forbidden
from healthmesh.learning.governance import (
    MemoryApprovals,
    MemoryRecorder,
    NodeDataProvider,
    NodeGovernance,
    StoreBudget,
)
from healthmesh.learning.registry import ModelRegistry
from healthmesh.learning.scoring import score_cohort
from healthmesh.learning.train import TrainingRequest, train
from healthmesh.privacy.budget import MemoryBudgetStore

from ..analytics.contract_resources import ICD10, condition, consent, patient

INSTITUTIONS = ("hosp_a", "hosp_b", "clinic_c")
OPTED_OUT = {"hosp_a": 7, "hosp_b": 5, "clinic_c": 0}
COHORT = Cohort()
FEATURES = [AgeVariable(name="age"), SexVariable(name="sex"),
            ConditionVariable(name="diabetes", codes=[f"{ICD10}|E11*"])]
LABEL = ConditionVariable(name="hypertension", codes=[f"{ICD10}|I10"])


def _resources(inst: str, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pid = f"{inst}-{i:03d}"
        age = int(rng.integers(25, 85))
        out.append(patient(pid, ["female", "male"][i % 2], f"{2025 - age}-06-01"))
        diab = rng.random() < 0.3
        if diab:
            out.append(condition(f"{pid}-d", pid, ICD10, "E11.9"))
        if rng.random() < 1 / (1 + np.exp(-(0.08 * (age - 55) + 1.2 * diab))):
            out.append(condition(f"{pid}-h", pid, ICD10, "I10"))
        if i < OPTED_OUT[inst]:
            out.append(consent(f"{pid}-c", pid, "deny", "2025-01-01"))
    return out


@pytest.fixture
def world() -> tuple[dict[str, NodeGovernance], dict[str, ResourceData], MemoryApprovals]:
    approvals = {i: MemoryApprovals() for i in INSTITUTIONS}
    data = {i: ResourceData(_resources(i, 80, k)) for k, i in enumerate(INSTITUTIONS)}
    nodes = {
        i: NodeGovernance(i, approvals[i], NodeDataProvider(data[i]),
                          StoreBudget(MemoryBudgetStore(), cap_epsilon=3.0, cap_delta=1e-2))
        for i in INSTITUTIONS
    }
    return nodes, data, approvals  # type: ignore[return-value]


@pytest.fixture
def registry() -> ModelRegistry:
    return ModelRegistry(create_engine("sqlite://", poolclass=StaticPool))


def _request(**spec: object) -> TrainingRequest:
    return TrainingRequest(
        study_id="study-1", job_id="job-1", researcher="dr-li", model_name="htn-risk",
        institutions=INSTITUTIONS, cohort=COHORT, features=FEATURES, label=LABEL,
        spec={"rounds": 2, "local_steps": 30, "lr": 0.05, "batch_size": 16, **spec},
    )


def _approve_all(nodes: dict[str, NodeGovernance]) -> None:
    for n in nodes.values():
        n.approvals.approve("study-1", COHORT)  # type: ignore[attr-defined]


def test_unapproved_study_is_refused(world, registry) -> None:
    nodes, _, _ = world
    nodes["hosp_a"].approvals.approve("study-1", COHORT)  # type: ignore[attr-defined]
    nodes["hosp_b"].approvals.approve("other-study", COHORT)  # type: ignore[attr-defined]
    rec = MemoryRecorder()
    with pytest.raises(Forbidden) as err:
        train(_request(dp={"epsilon": 1.0, "delta": 1e-3}), nodes, rec, registry)
    assert "clinic_c" in err.value.message and "hosp_b" in err.value.message
    assert "hosp_a" not in err.value.message
    assert rec.events == [] and registry.versions() == []
    for n in nodes.values():  # nothing charged anywhere
        assert n.budget.remaining("dr-li", "study-1") == (3.0, 1e-2)


def test_approval_of_another_cohort_is_refused(world, registry) -> None:
    nodes, _, _ = world
    _approve_all(nodes)
    other = Cohort(reference_date=COHORT.reference_date.replace(year=2020))
    with pytest.raises(Forbidden):
        train(TrainingRequest(**{**_request().__dict__, "cohort": other}), nodes,
              MemoryRecorder(), registry)


def test_opted_out_patients_are_excluded(world) -> None:
    nodes, data, _ = world
    for inst, node in nodes.items():
        ds = node.data.dataset(COHORT, FEATURES, LABEL, test_fraction=0.3, seed=0)
        assert len(ds.x_train) + len(ds.x_test) == 80 - OPTED_OUT[inst]
        assert ds.columns == ["age", "sex_male", "diabetes"]
        assert len(data[inst].members(COHORT)) == 80 - OPTED_OUT[inst]


def test_budget_exceeded_is_refused_everywhere(world, registry) -> None:
    nodes, _, _ = world
    _approve_all(nodes)
    nodes["hosp_b"].budget.charge("dr-li", "study-1", "earlier", 2.5, 1e-3)
    rec = MemoryRecorder()
    with pytest.raises(DisclosureRisk) as err:
        train(_request(dp={"epsilon": 1.0, "delta": 1e-3}), nodes, rec, registry)
    assert err.value.message.startswith("privacy-budget")
    assert rec.events == [] and registry.versions() == []
    assert nodes["hosp_a"].budget.remaining("dr-li", "study-1") == (3.0, 1e-2)


def test_governed_run_is_recorded_registered_and_scored_at_a_node(world, registry) -> None:
    nodes, data, _ = world
    _approve_all(nodes)
    rec = MemoryRecorder()
    model = train(_request(dp={"epsilon": 1.0, "delta": 1e-3}), nodes, rec, registry)
    assert [e for e, _ in rec.events] == ["training-started", "training-finished"]
    done = rec.events[1][1]
    assert done["model_digest"] == model.digest and done["institutions"] == list(INSTITUTIONS)
    assert 0.9 < done["epsilon"] <= 1.0
    for n in nodes.values():
        eps_left, _ = n.budget.remaining("dr-li", "study-1")
        assert eps_left == pytest.approx(2.0)
    lin = model.lineage
    assert lin["institutions"]["hosp_a"]["n_train"] + lin["institutions"]["hosp_a"]["n_test"] == 73
    assert lin["feature_columns"] == ["age", "sex_male", "diabetes"]
    assert set(model.per_institution) == set(INSTITUTIONS)
    # served back: hosp_b scores its own cohort with the registered model
    names, scores = score_cohort(registry.get("htn-risk"), data["hosp_b"], COHORT, FEATURES,
                                 expected_digest=done["model_digest"])
    assert names == lin["feature_columns"] and len(scores) == 75
    assert ((scores > 0) & (scores < 1)).all()


def test_ledger_recorder_writes_valid_entries(world, registry) -> None:
    from healthmesh.learning.ledger_record import LedgerRecorder

    nodes, _, _ = world
    _approve_all(nodes)
    batches: list = []
    model = train(_request(), nodes, LedgerRecorder(batches.append, "hub"), registry)
    types = [e["type"] for batch in batches for e in batch]
    assert types == ["job_start", "model_release"]
    release = batches[1][0]["body"]
    assert release["model_digest"] == model.digest and release["training_job_id"] == "job-1"
    assert batches[0][0]["body"]["institutions"] == list(INSTITUTIONS)


def test_real_node_stores_govern_the_run(tmp_path, registry) -> None:
    """The adapters over the node's own study record and SQL budget store (SQLite)."""
    from healthmesh.db import make_engine
    from healthmesh.learning.governance import ALGORITHM, StudyApprovals
    from healthmesh.node.analytics.privacy import SqlBudgetStore
    from healthmesh.node.studies import NodeStudies

    cohort_json = COHORT.model_dump(mode="json")
    nodes = {}
    for k, inst in enumerate(INSTITUTIONS[:2]):
        engine = make_engine(tmp_path / f"{inst}.db")
        studies = NodeStudies(engine)
        studies.receive({
            "study_id": "study-1", "researcher": "dr-li", "protocol_digest": "sha256:" + "1" * 64,
            "request": {"title": "htn", "cohort": cohort_json, "computations": [
                {"name": "train", "algorithm": ALGORITHM, "params": {"cohort": cohort_json}}]},
        })
        if inst == "hosp_a":
            studies.approve("study-1")
        nodes[inst] = NodeGovernance(
            inst, StudyApprovals(studies), NodeDataProvider(ResourceData(_resources(inst, 60, k))),
            StoreBudget(SqlBudgetStore(engine), cap_epsilon=1.5, cap_delta=1e-2))
    req = TrainingRequest(**{**_request(dp={"epsilon": 1.0, "delta": 1e-3}).__dict__,
                             "institutions": INSTITUTIONS[:2]})
    with pytest.raises(Forbidden) as err:  # hosp_b has only a pending record
        train(req, nodes, MemoryRecorder(), registry)
    assert "hosp_b" in err.value.message
    nodes["hosp_b"].approvals.studies.approve("study-1")  # type: ignore[attr-defined]
    train(req, nodes, MemoryRecorder(), registry)
    assert nodes["hosp_b"].budget.remaining("dr-li", "study-1")[0] == pytest.approx(0.5)
    with pytest.raises(DisclosureRisk):  # a second run of eps 1 passes the cap of 1.5
        train(TrainingRequest(**{**req.__dict__, "job_id": "job-2"}), nodes, MemoryRecorder(),
              registry)
