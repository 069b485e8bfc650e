"""Models served back to the nodes: the hub lists and serves registered models over real HTTP
(uvicorn), and a node scores its consented cohort into FHIR RiskAssessments kept locally."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from healthmesh.cli import main
from healthmesh.errors import Gone, LedgerIntegrityError, NotFound, Unauthorized
from healthmesh.fhir.store import FhirStore
from healthmesh.hub.app import build_hub
from healthmesh.hub.model_access import ModelAccess
from healthmesh.hub.serving import ServerThread, free_port
from healthmesh.hub.settings import HubSettings
from healthmesh.hub.studies import builtin_algorithm, parse_request
from healthmesh.learning.governance import ALGORITHM
from healthmesh.learning.registry import ModelRegistry, models_t, weights_digest
from healthmesh.node.hub_client import client_credentials
from healthmesh.node.risk_scores import MODEL_SCOPE, fetch_model, risk_assessment_id, score_from_hub

from ..analytics.contract_resources import GLUCOSE, consent, observation, patient
from ..hub.data import study

W = [np.array([[0.03, 0.4]], dtype=np.float32), np.array([-5.0], dtype=np.float32)]
SPEC = {"task": "binary", "model": "logreg", "n_features": 2, "strategy": "fedavg",
        "rounds": 2, "local_steps": 5, "batch_size": 4, "lr": 0.1, "optimizer": "sgd",
        "secagg": True, "seed": 0}
COVARIATES = [{"kind": "age", "name": "age"},
              {"kind": "observation", "name": "glucose", "codes": [GLUCOSE], "pick": "last"}]
LINEAGE = {"institutions": {"h1": {"n": 40}, "h2": {"n": 50}}, "cohort": {},
           "cohort_digest": "sha256:00", "feature_columns": ["age", "glucose"],
           "covariates": COVARIATES, "privacy": None, "rounds": 2}
# (birth date, glucose): ages at the cohort's reference date 2026-01-01
ELIGIBLE = {"p1": ("1950-06-01", 7.0, 75), "p2": ("1970-06-01", 5.5, 55),
            "p3": ("1980-06-01", 6.1, 45)}
OPTED_OUT = "p4"
MISSING = "p5"  # no glucose: not scored (complete cases only)


def _resources() -> list[dict[str, Any]]:
    res = [patient(pid, "female", born) for pid, (born, _, _) in ELIGIBLE.items()]
    res += [observation(f"o{pid}", pid, GLUCOSE, g, effectiveDateTime="2025-05-01")
            for pid, (_, g, _) in ELIGIBLE.items()]
    res += [patient(OPTED_OUT, "male", "1960-06-01"),
            observation("o4", OPTED_OUT, GLUCOSE, 8.0, effectiveDateTime="2025-05-01"),
            consent("k4", OPTED_OUT, "deny", "2025-01-01T00:00:00Z"),
            patient(MISSING, "male", "1965-06-01")]
    return res


def _expected(age: int, glucose: float) -> float:
    w, b = W[0][0].astype(float), float(W[1][0])
    return 1.0 / (1.0 + math.exp(-(w[0] * age + w[1] * glucose + b)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def region(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    db = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    port = free_port()
    hub = build_hub(HubSettings(data_dir=tmp_path / "hub", port=port, db=db))
    assert hub.models is not None
    researcher = hub.add_researcher("alice")  # the researcher whose study trained the model
    study_id = hub.studies.submit(researcher.client_id, parse_request(study(["h1"]))).study_id
    model = hub.models.register("diabetes_risk", study_id=study_id, job_id="j-1", spec=SPEC,
                                weights=W, metric=0.74, per_institution={"h1": 0.7},
                                lineage=LINEAGE)
    server = ServerThread(hub.app, "127.0.0.1", port).start()
    node = hub.clients.add("node-h1", "system/Model.rs")
    ModelAccess(hub.engine).bind_client(node.client_id, "h1")  # h1 trained the model
    other = hub.clients.add("linker", "system/Linkage.c")
    store = FhirStore(db or tmp_path / "h1.sqlite")
    with store.writing() as tx:
        for r in _resources():
            tx.update(r["resourceType"], r["id"], r)
    yield {"hub": hub, "url": server.url, "model": model, "store": store, "node": node,
           "other": other, "tmp": tmp_path, "db": db, "researcher": researcher,
           "study": study_id}
    store.close()
    server.stop()
    hub.close()


def _token(region: dict[str, Any], which: str = "node") -> Any:
    c = region[which]
    scope = MODEL_SCOPE if which == "node" else "system/Linkage.c"
    return client_credentials(region["url"], c.client_id, c.client_secret, scope)


def test_hub_lists_and_serves_models_by_scope(region: dict[str, Any]) -> None:
    url, hub = region["url"], region["hub"]
    researcher = region["researcher"]
    for creds, scope in ((researcher, "system/Study.rs"), (region["node"], MODEL_SCOPE)):
        token = client_credentials(url, creds.client_id, creds.client_secret, scope)()
        head = {"Authorization": f"Bearer {token}"}
        listed = httpx.get(url + "/models", headers=head).json()["models"]
        assert [(m["name"], m["version"], m["hash"], m["study"]) for m in listed] == [
            ("diabetes_risk", 1, weights_digest(W), region["study"])]
        body = httpx.get(url + "/models/diabetes_risk/1", headers=head).json()
        assert body["digest"] == weights_digest(W) and body["card"]["model"]["version"] == 1
    assert httpx.get(url + "/models").status_code == 401
    head = {"Authorization": f"Bearer {_token(region, 'other')()}"}
    assert httpx.get(url + "/models", headers=head).status_code == 403
    assert httpx.get(url + "/models/diabetes_risk/1", headers=head).status_code == 403
    head = {"Authorization": f"Bearer {_token(region)()}"}
    assert httpx.get(url + "/models/diabetes_risk/7", headers=head).status_code == 404
    assert httpx.get(url + "/models/diabetes_risk/x", headers=head).status_code == 400
    # studies run the registry-bound training algorithm; the others stay the built-ins
    assert hub.jobs.algorithms(ALGORITHM) is not builtin_algorithm(ALGORITHM)
    assert hub.jobs.algorithms("count") is builtin_algorithm("count")


def test_node_scores_consented_patients_idempotently(region: dict[str, Any]) -> None:
    store, model = region["store"], region["model"]
    run = score_from_hub(store, region["url"], _token(region), "diabetes_risk")
    assert (run.version, run.scored, run.written, run.unchanged) == (1, 3, 3, 0)
    for pid, (_, glucose, age) in ELIGIBLE.items():
        stored = store.read("RiskAssessment", risk_assessment_id(model, pid))
        res = stored.resource()
        assert res["subject"] == {"reference": f"Patient/{pid}"}
        assert res["method"]["coding"][0]["code"] == "diabetes_risk:1"
        assert res["basis"][0]["identifier"]["value"] == weights_digest(W)
        assert res["prediction"][0]["probabilityDecimal"] == pytest.approx(
            _expected(age, glucose), rel=1e-5)
        assert stored.version == 1
    for pid in (OPTED_OUT, MISSING):
        with pytest.raises(NotFound):
            store.read("RiskAssessment", risk_assessment_id(model, pid))
    again = score_from_hub(store, region["url"], _token(region), "diabetes_risk", 1)
    assert (again.written, again.unchanged) == (0, 3)
    for pid in ELIGIBLE:
        assert store.read("RiskAssessment", risk_assessment_id(model, pid)).version == 1
    # p3 withdraws research consent: the next run withdraws p3's score, keeps the others
    with store.writing() as tx:
        tx.update("Consent", "k3", consent("k3", "p3", "deny", "2025-12-01T00:00:00Z"))
    third = score_from_hub(store, region["url"], _token(region), "diabetes_risk", 1)
    assert (third.scored, third.written, third.unchanged, third.withdrawn) == (2, 0, 2, 1)
    with pytest.raises(Gone):  # deleted, kept in the store's history
        store.read("RiskAssessment", risk_assessment_id(model, "p3"))
    assert store.read("RiskAssessment", risk_assessment_id(model, "p1")).version == 1


def test_tampered_model_is_refused(region: dict[str, Any]) -> None:
    hub = region["hub"]
    registry = ModelRegistry(hub.engine)
    tampered = [W[0] * 3, W[1]]
    from healthmesh.learning.registry import pack_weights

    with hub.engine.begin() as conn:
        conn.execute(sa.update(models_t).values(weights=pack_weights(tampered)))
    assert registry.get("diabetes_risk").digest == weights_digest(W)
    with pytest.raises(LedgerIntegrityError):
        fetch_model(region["url"], _token(region), "diabetes_risk", 1)
    with pytest.raises(LedgerIntegrityError):
        score_from_hub(region["store"], region["url"], _token(region), "diabetes_risk")
    with pytest.raises(NotFound):
        region["store"].read("RiskAssessment", risk_assessment_id(region["model"], "p1"))


def test_expected_digest_and_bad_token(region: dict[str, Any]) -> None:
    with pytest.raises(LedgerIntegrityError):
        fetch_model(region["url"], _token(region), "diabetes_risk",
                    expected_digest="sha256:" + "0" * 64)
    with pytest.raises(Unauthorized):
        fetch_model(region["url"], lambda: "not-a-token", "diabetes_risk")


def test_cli_node_score(region: dict[str, Any]) -> None:
    node, tmp = region["node"], region["tmp"]
    db = region["db"] or str(tmp / "h1.sqlite")
    region["store"].close()
    out = CliRunner().invoke(main, [
        "node", "score", "--db", db, "--data-dir", str(tmp / "node"),
        "--hub", region["url"], "--model", "diabetes_risk:1",
        "--client-id", node.client_id, "--client-secret", node.client_secret,
    ])
    assert out.exit_code == 0, out.output
    assert "3 patients scored, 3 RiskAssessments written" in out.output
    bad = CliRunner().invoke(main, [
        "node", "score", "--db", db, "--data-dir", str(tmp / "node"),
        "--hub", region["url"], "--model", "diabetes_risk:zero",
        "--client-id", node.client_id, "--client-secret", node.client_secret,
    ])
    assert bad.exit_code != 0 and "version" in bad.output
