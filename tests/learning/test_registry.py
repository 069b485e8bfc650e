"""The model registry on SQLite and PostgreSQL (one shared test body), the model card, and
node-side scoring's integrity check."""

from __future__ import annotations

import numpy as np
import pytest

from healthmesh.db import make_engine
from healthmesh.errors import InvalidInput, LedgerIntegrityError, NotFound
from healthmesh.learning.card import card_json, card_markdown
from healthmesh.learning.registry import ModelRegistry, weights_digest
from healthmesh.learning.scoring import score_matrix

SPEC = {"task": "binary", "model": "logreg", "n_features": 3, "strategy": "fedavg",
        "rounds": 2, "local_steps": 5, "batch_size": 4, "lr": 0.1, "optimizer": "sgd",
        "secagg": True, "seed": 0}
W = [np.array([[0.5, -1.0, 2.0]], dtype=np.float32), np.array([0.25], dtype=np.float32)]
LINEAGE = {"institutions": {"a": {"n_train": 10, "n_test": 5, "consent_snapshot": "sha256:00"}},
           "cohort_digest": "sha256:11", "feature_columns": ["x1", "x2", "x3"],
           "privacy": {"level": "record", "epsilon": 0.99, "delta": 1e-3, "clip": 1.0,
                       "accountant": "rdp"}}


def _registry_contract(reg: ModelRegistry) -> None:
    with pytest.raises(NotFound):
        reg.get("risk")
    v1 = reg.register("risk", study_id="s1", job_id="j1", spec=SPEC, weights=W, metric=0.7,
                      per_institution={"a": 0.6, "b": 0.8}, lineage=LINEAGE)
    w2 = [W[0] * 2, W[1]]
    v2 = reg.register("risk", study_id="s1", job_id="j2", spec=SPEC, weights=w2, metric=0.75,
                      per_institution={"a": 0.7}, lineage=LINEAGE)
    assert (v1.version, v2.version) == (1, 2)
    assert reg.get("risk").version == 2 and reg.get("risk", 1).digest == weights_digest(W)
    got = reg.get("risk", 1)
    assert got.per_institution == {"a": 0.6, "b": 0.8}
    assert got.lineage == LINEAGE and got.spec == SPEC and got.metric_name == "accuracy"
    for a, b in zip(got.weights, W, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [v["version"] for v in reg.versions("risk")] == [2, 1]
    with pytest.raises(InvalidInput):
        reg.register("bad name!", study_id="s", job_id="j", spec=SPEC, weights=W, metric=None,
                     per_institution={}, lineage={})


def test_registry_sqlite(tmp_path) -> None:
    _registry_contract(ModelRegistry(make_engine(tmp_path / "hub.db")))


@pytest.mark.postgres
def test_registry_postgres(pg_url: str) -> None:
    _registry_contract(ModelRegistry(make_engine(pg_url)))


def test_card_and_scoring(tmp_path) -> None:
    reg = ModelRegistry(make_engine(tmp_path / "hub.db"))
    m = reg.register("risk", study_id="s1", job_id="j1", spec=SPEC, weights=W, metric=0.7,
                     per_institution={"a": 0.6}, lineage=LINEAGE)
    card = card_json(m)
    assert card["model"]["digest"] == m.digest and card["privacy"]["epsilon"] == 0.99
    md = card_markdown(m)
    assert "# Model card: risk v1" in md and "| a | 0.6000 |" in md and "epsilon 0.990" in md
    x = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    expected = 1 / (1 + np.exp(-(x @ W[0][0] + W[1][0])))
    np.testing.assert_allclose(score_matrix(m, x, expected_digest=m.digest), expected, rtol=1e-6)
    with pytest.raises(LedgerIntegrityError):
        score_matrix(m, x, expected_digest="sha256:" + "0" * 64)
    with pytest.raises(InvalidInput):
        score_matrix(m, np.ones((2, 4)))
    with pytest.raises(InvalidInput):
        score_matrix(m, np.array([[np.nan, 0.0, 0.0]]))
