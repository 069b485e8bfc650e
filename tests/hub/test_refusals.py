"""Refusals, each with a clear error and nothing released: no approval (at the hub and, when
the hub lies, at the node), another researcher, budget exceeded, small cell, differencing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from healthmesh.errors import Forbidden
from healthmesh.federation.inprocess import InProcessFederation
from healthmesh.privacy.policy import DpSettings, PrivacyPolicy

from .data import resources, study


def _releases(fed: InProcessFederation) -> int:
    log = fed.hub.ledger.service.log
    return sum(
        json.loads(log.entry(i))["type"] == "job_result_release" for i in range(log.size())
    )


def _assert_nothing_released(fed: InProcessFederation, study_id: str, rule: str) -> None:
    (rec,) = fed.results(study_id)
    assert rec.status == "failed" and rec.result is None
    assert set(rec.refused.values()) == {rule}
    assert _releases(fed) == 0


def test_a_lying_hub_cannot_make_a_node_compute(fed: InProcessFederation) -> None:
    st = fed.submit(study(fed.names))
    # the hub records approvals of the regression that no node gave
    for inst in fed.names:
        fed.hub.studies.record_decision(st.study_id, inst, "approved", computations=["model"])
    rec = fed.run(st.study_id, "model")
    assert rec.refused == dict.fromkeys(fed.names, "not-approved")
    _assert_nothing_released(fed, st.study_id, "not-approved")


def test_a_node_refuses_a_cohort_it_did_not_approve(fed: InProcessFederation) -> None:
    st = fed.submit(study(fed.names))
    # a compute task for an approved algorithm but another cohort, as a lying hub would send
    from healthmesh.hub.jobs import QueueHubContext

    hub = fed.hub
    ctx = QueueHubContext(
        job_id="job-forged", study_id=st.study_id, algorithm="count",
        researcher=fed.researcher, nodes=["hosp-a"], queue=hub.queue,
        enqueue=hub.endpoint.enqueue, hub=hub.identity, registry=hub.registry,
        timeout=10, pump=fed.pump,
    )
    assert ctx.call("count", {"cohort": {"include": [{"kind": "sex", "values": ["male"]}]}}) == {}
    assert ctx.refused == {"hosp-a": "not-approved"}


def test_only_the_studys_researcher_runs_it(fed: InProcessFederation) -> None:
    st = fed.submit(study(fed.names))
    other = fed.hub.add_researcher("someone-else").client_id
    with pytest.raises(Forbidden, match="researcher"):
        fed.run(st.study_id, "n", researcher=other)
    assert fed.results(st.study_id) == []


def _patients(prefix: str, n: int, birth: str) -> list[dict[str, Any]]:
    return [
        {"resourceType": "Patient", "id": f"{prefix}-{k}", "gender": "male", "birthDate": birth}
        for k in range(n)
    ]


def test_small_cells_are_refused_and_the_rest_released() -> None:
    with InProcessFederation(["hosp-a", "hosp-b"], catalog=False) as fed:
        fed.load("hosp-a", _patients("a", 20, "1970-05-05"))
        fed.load("hosp-b", _patients("b-old", 3, "1970-05-05") + _patients("b", 20, "2005-01-01"))
        body = {"title": "t", "purpose": "p", "institutions": fed.names,
                "computations": [{"name": "n", "algorithm": "count"}]}
        older = fed.submit({**body, "cohort": {"include": [{"kind": "age", "min": 40}]}})
        rec = fed.run(older.study_id, "n")
        assert rec.status == "done" and rec.result is not None
        assert rec.result["n"] == 20 and rec.participants == ["hosp-a"]
        assert rec.refused == {"hosp-b": "min-cell-size"}
        # a cohort small everywhere: every node refuses, nothing is released
        oldest = fed.submit({**body, "cohort": {"include": [{"kind": "age", "min": 40},
                                                            {"kind": "sex",
                                                             "values": ["male"]}],
                                                "exclude": [{"kind": "age", "max": 55}]}})
        fed.load("hosp-a", _patients("a-old", 2, "1950-01-01"))
        fed.load("hosp-b", _patients("b-oldest", 2, "1950-01-01"))
        rec = fed.run(oldest.study_id, "n")
        assert rec.status == "failed" and rec.result is None
        assert rec.refused == {"hosp-a": "min-cell-size", "hosp-b": "min-cell-size"}
        assert _releases(fed) == 1


def test_differencing_attack_is_refused(fed: InProcessFederation) -> None:
    first = fed.submit(study(fed.names, cohort={"include": [{"kind": "age", "min": 30}]}))
    assert fed.run(first.study_id, "n").status == "done"
    # the same researcher asks for the cohort with one more year of age: a few patients apart
    second = fed.submit(study(fed.names, cohort={"include": [{"kind": "age", "min": 31}]}))
    rec = fed.run(second.study_id, "n")
    assert "differencing" in rec.refused.values()
    assert all(rule == "differencing" for rule in rec.refused.values())


def test_budget_exhausted_is_refused(node_resources: dict[str, list[dict[str, Any]]]) -> None:
    policy = PrivacyPolicy(dp=DpSettings(epsilon=0.4, epsilon_cap=1.0))
    with InProcessFederation(["hosp-a", "hosp-b"], policy=policy, catalog=False) as fed:
        fed.load("hosp-a", resources("hosp-a", 80, 1))
        fed.load("hosp-b", resources("hosp-b", 80, 2))
        st = fed.submit(study(fed.names))
        first, second = fed.run(st.study_id, "n"), fed.run(st.study_id, "n")
        assert first.status == second.status == "done"
        assert first.result != second.result  # noised
        third = fed.run(st.study_id, "n")
        assert third.status == "failed" and third.result is None
        assert third.refused == {"hosp-a": "privacy-budget", "hosp-b": "privacy-budget"}
        assert _releases(fed) == 2
