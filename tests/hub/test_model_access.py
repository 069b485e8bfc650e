"""Models back to the nodes, only to institutions that trained them: a node client (scope
``system/Model.rs``) bound to an institution lists and reads only the versions its institution
took part in training or that were shared with it; an unbound client reads nothing."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from healthmesh.errors import InvalidInput, NotFound
from healthmesh.hub.api import HUB_ADMIN, RESEARCHER_SCOPES
from healthmesh.hub.app import Hub, build_hub
from healthmesh.hub.model_access import ModelAccess
from healthmesh.hub.settings import HubSettings
from healthmesh.hub.studies import parse_request

from .data import study

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

W = [np.array([[0.5, -0.25]], dtype=np.float32), np.array([0.1], dtype=np.float32)]
SPEC = {"task": "binary", "model": "logreg", "n_features": 2}


def _lineage(*institutions: str) -> dict[str, Any]:
    return {"institutions": {i: {"n": 40} for i in institutions}, "cohort": {},
            "feature_columns": ["age", "bmi"], "covariates": []}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    hub = build_hub(HubSettings(data_dir=tmp_path / "hub"))
    assert hub.models is not None
    for lineage in (_lineage("hosp-a", "hosp-b"), _lineage("hosp-b", "clinic-c")):
        hub.models.register("htn", study_id="s-1", job_id="j-1", spec=SPEC, weights=W,
                            metric=0.7, per_institution={}, lineage=lineage)
    yield hub
    hub.close()


def _head(hub: Hub, name: str, institution: str | None) -> dict[str, str]:
    creds = hub.clients.add(name, "system/Model.rs")
    if institution is not None:
        ModelAccess(hub.engine).bind_client(creds.client_id, institution)
    return {"Authorization": f"Bearer {hub.issue_token(creds.client_id)}"}


def test_a_node_reads_only_the_models_its_institution_trained(hub: Hub) -> None:
    a, c = _head(hub, "node-a", "hosp-a"), _head(hub, "node-c", "clinic-c")
    with TestClient(hub.app) as http:
        listed = http.get("/models", headers=a).json()["models"]
        assert [(m["name"], m["version"]) for m in listed] == [("htn", 1)]
        assert http.get("/models/htn/1", headers=a).status_code == 200
        refused = http.get("/models/htn/2", headers=a)  # trained by hosp-b and clinic-c
        assert refused.status_code == 403
        assert "did not train" in refused.text
        # 'latest' is the newest version the institution may read
        assert http.get("/models/htn/latest", headers=a).json()["version"] == 1
        assert http.get("/models/htn/latest", headers=c).json()["version"] == 2
        assert http.get("/models/htn/1", headers=c).status_code == 403
        assert http.get("/models/other/latest", headers=a).status_code == 404
        assert http.get("/models/htn/9", headers=a).status_code == 404


def test_a_shared_version_becomes_readable(hub: Hub) -> None:
    a = _head(hub, "node-a", "hosp-a")
    ModelAccess(hub.engine).share("htn", 2, "hosp-a")
    with TestClient(hub.app) as http:
        assert http.get("/models/htn/2", headers=a).status_code == 200
        listed = http.get("/models", headers=a).json()["models"]
        assert sorted(m["version"] for m in listed) == [1, 2]
    with pytest.raises(NotFound):
        ModelAccess(hub.engine).share("htn", 7, "hosp-a")
    with pytest.raises(InvalidInput):
        ModelAccess(hub.engine).share("htn", 2, "../x")


def test_an_unbound_node_client_and_a_stranger_read_nothing(hub: Hub) -> None:
    unbound, stranger = _head(hub, "node-x", None), _head(hub, "node-z", "hosp-z")
    with TestClient(hub.app) as http:
        assert http.get("/models", headers=unbound).status_code == 403
        assert http.get("/models/htn/1", headers=unbound).status_code == 403
        assert http.get("/models", headers=stranger).json()["models"] == []
        assert http.get("/models/htn/latest", headers=stranger).status_code == 403
        assert http.get("/models/htn/1").status_code == 401


def test_researchers_read_their_own_studies_models_operators_every_one(hub: Hub) -> None:
    assert hub.models is not None
    alice, bob = hub.add_researcher("alice"), hub.add_researcher("bob")
    ops = hub.add_researcher("ops", RESEARCHER_SCOPES + " " + HUB_ADMIN)
    own = hub.studies.submit(alice.client_id, parse_request(study(["hosp-a"]))).study_id
    hub.models.register("htn", study_id=own, job_id="j-2", spec=SPEC, weights=W, metric=0.7,
                        per_institution={}, lineage=_lineage("hosp-a"))
    head = {c.client_id: {"Authorization": f"Bearer {hub.issue_token(c.client_id)}"}
            for c in (alice, bob, ops)}
    with TestClient(hub.app) as http:
        a, b, o = (head[c.client_id] for c in (alice, bob, ops))
        listed = http.get("/models", headers=a).json()["models"]
        assert [(m["version"], m["study"]) for m in listed] == [(3, own)]
        assert http.get("/models/htn/3", headers=a).status_code == 200
        assert http.get("/models/htn/latest", headers=a).json()["version"] == 3
        refused = http.get("/models/htn/1", headers=a)  # study s-1 is nobody's here
        assert refused.status_code == 403
        assert "not trained in one of your studies" in refused.text
        assert http.get("/models", headers=b).json()["models"] == []
        assert http.get("/models/htn/3", headers=b).status_code == 403
        assert http.get("/models/htn/latest", headers=b).status_code == 403
        assert http.get("/models/htn/9", headers=b).status_code == 404
        listed = http.get("/models", headers=o).json()["models"]
        assert sorted(m["version"] for m in listed) == [1, 2, 3]
        assert http.get("/models/htn/1", headers=o).status_code == 200


def test_operator_binds_and_shares_from_the_command_line(hub: Hub) -> None:
    from click.testing import CliRunner

    from healthmesh.cli import main

    creds = hub.clients.add("node-c", "system/Model.rs")
    where = ["--data-dir", str(hub.settings.data_dir)]
    run = CliRunner().invoke
    assert run(main, ["hub", "models", "bind", creds.client_id, "clinic-c", *where]).exit_code == 0
    assert run(main, ["hub", "models", "share", "htn", "1", "clinic-c", *where]).exit_code == 0
    bad = run(main, ["hub", "models", "share", "htn", "9", "clinic-c", *where])
    assert bad.exit_code == 1 and "not found" in bad.output
    access = ModelAccess(hub.engine)
    assert access.institution_of(creds.client_id) == "clinic-c"
    assert access.readable("clinic-c", "htn") == {("htn", 1), ("htn", 2)}
