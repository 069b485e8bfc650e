"""End to end in one process: a researcher's study is announced, the nodes decide, and
count, cross-tab and logistic regression results equal the same computations on the pooled
data (ResourceData over the union of every node's resources)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from pydantic import TypeAdapter

from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.analytics.memory_data import ResourceData
from healthmesh.errors import Forbidden
from healthmesh.federation.inprocess import InProcessFederation
from healthmesh.hub.studies import parse_request

from .data import COHORT, VARIABLES, study

_VARS = {v["name"]: TypeAdapter(Variable).validate_python(v) for v in VARIABLES}


def _ledger_types(fed: InProcessFederation) -> list[str]:
    import json

    log = fed.hub.ledger.service.log
    return [json.loads(log.entry(i))["type"] for i in range(log.size())]


def test_study_results_equal_pooled_computation(
    fed: InProcessFederation, node_resources: dict[str, list[dict[str, Any]]]
) -> None:
    pooled = ResourceData([r for res in node_resources.values() for r in res])
    cohort = Cohort.model_validate(COHORT)
    st = fed.submit(study(fed.names))
    # the nodes' policy auto-approves count and crosstab, not the regression
    assert {d.state for d in st.decisions.values()} == {"approved"}
    assert all(d.computations == ("n", "table") for d in st.decisions.values())
    with pytest.raises(Forbidden, match="no institution has approved"):
        fed.run(st.study_id, "model")
    fed.approve(st.study_id, computations=["model"])

    n = fed.run(st.study_id, "n")
    assert n.status == "done" and n.refused == {} and n.not_responded == []
    assert n.result is not None and n.result["n"] == pooled.count(cohort)
    assert sorted(n.participants) == sorted(fed.names)

    table = fed.run(st.study_id, "table")
    assert table.refused == {} and table.result is not None
    expect = pooled.crosstab(cohort, [_VARS["sex"], _VARS["diabetes"]])
    got = {tuple(c["key"]): c["n"] for c in table.result["cells"]}
    assert got == {tuple(k): v for k, v in expect.items()}

    model = fed.run(st.study_id, "model")
    assert model.status == "done", model.error
    assert model.result is not None
    _names, X = pooled.matrix(cohort, [_VARS["hypertension"], _VARS["age"], _VARS["sex"],
                                      _VARS["bmi"]])
    ref = sm.GLM(X[:, 0], sm.add_constant(X[:, 1:]), family=sm.families.Binomial()).fit(
        tol=1e-12
    )
    coefs = np.array([c["estimate"] for c in model.result["coefficients"]])
    assert np.max(np.abs(coefs - ref.params)) < 1e-8
    # every submission, decision, job start and release is in the ledger
    types = _ledger_types(fed)
    assert types.count("study_submission") == 1
    assert types.count("study_approval") == 2 * len(fed.names)  # policy, then operator
    assert types.count("job_start") == 3  # the refused first try of "model" started none
    assert types.count("job_result_release") == 3
    assert [r.computation for r in fed.results(st.study_id)] == ["n", "table", "model"]


def test_rejecting_node_takes_no_part(fed: InProcessFederation) -> None:
    st = fed.submit(study(fed.names))
    fed.reject(st.study_id, "clinic-c", "not within our research remit")
    decisions = fed.hub.studies.get(st.study_id).decisions
    assert decisions["clinic-c"].state == "rejected"
    assert decisions["clinic-c"].reason == "not within our research remit"
    rec = fed.run(st.study_id, "n")
    assert sorted(rec.participants) == ["hosp-a", "hosp-b"]
    # the node's own record says rejected: it would refuse even if asked
    assert fed.nodes["clinic-c"].studies.get(st.study_id).state == "rejected"


def test_invalid_studies_are_refused_with_the_field_named(fed: InProcessFederation) -> None:
    from healthmesh.errors import InvalidInput

    with pytest.raises(InvalidInput, match="computations"):
        parse_request(study(fed.names, computations=[]))
    body = study(fed.names)
    body["computations"][2]["params"]["outcome"] = "undeclared"
    with pytest.raises(InvalidInput, match="undeclared variable"):
        fed.submit(body)
    with pytest.raises(InvalidInput, match="not registered"):
        fed.submit(study(["hosp-a", "nowhere"]))
    body = study(fed.names)
    body["computations"][0]["algorithm"] = "mystery"
    with pytest.raises(InvalidInput, match="unknown algorithm"):
        fed.submit(body)
    assert fed.hub.studies.list() == []  # nothing half-written


def test_catalog_is_published_and_searchable(fed: InProcessFederation) -> None:
    fed.pump()  # agents publish their catalog entry when they start polling
    entries = fed.hub.catalog.entries()
    assert set(entries) == set(fed.names)
    assert entries["hosp-a"]["resource_counts"]["Patient"] >= 100
    kinds = {i.institution: i.metadata.kind for i in fed.hub.registry.institutions()}
    hyper = fed.hub.catalog.search(code="http://hl7.org/fhir/sid/icd-10|I10", institutions=kinds)
    assert {e["institution"] for e in hyper} == set(fed.names)
    clinics = fed.hub.catalog.search(kind="clinic", institutions=kinds)
    assert [e["institution"] for e in clinics] == ["clinic-c"]
    assert fed.hub.catalog.search(resource_type="ImagingStudy") == []
    # metadata only: no patient id appears anywhere in what was published
    assert "hosp-a-1" not in json.dumps(entries)
