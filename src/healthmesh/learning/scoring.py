"""Scores computed at a node with a registered model: the hub serves the model (weights,
spec, digest); the node checks the digest, rebuilds the model and scores its own rows. Scores
stay at the node — nothing here sends them anywhere.

Binary models give the predicted probability of the outcome; Cox models the relative hazard
``exp(x·β)`` (1 = average baseline risk of a patient with all-zero features).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.analytics.data import NodeData
from healthmesh.errors import InvalidInput, LedgerIntegrityError
from healthmesh.learning.registry import ModelVersion, weights_digest

FloatArray = npt.NDArray[np.float64]


def score_matrix(
    model: ModelVersion, x: FloatArray, *, expected_digest: str | None = None
) -> FloatArray:
    """Scores for the rows of ``x`` (n × p, the model's feature order).

    ``expected_digest`` (e.g. from the ledger's ``model_release`` entry) must match the
    weights' hash when given; a mismatch raises LedgerIntegrityError and nothing is scored.
    """
    from healthmesh.learning.models import build_model, predict, set_weights

    digest = weights_digest(model.weights)
    if digest != model.digest or (expected_digest is not None and digest != expected_digest):
        raise LedgerIntegrityError("model weights do not match the registered digest")
    x = np.asarray(x, dtype=np.float64)
    p = int(model.spec["n_features"])
    if x.ndim != 2 or x.shape[1] != p:
        raise InvalidInput(f"expected a matrix with {p} feature columns, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InvalidInput("feature matrix has missing or infinite values")
    net = build_model(model.kind, p, int(model.spec.get("hidden", 16)))
    set_weights(net, model.weights)
    raw = predict(net, x)
    if model.kind == "cox":
        return np.exp(raw)
    return 1.0 / (1.0 + np.exp(-raw))


def score_cohort(
    model: ModelVersion,
    data: NodeData,
    cohort: Cohort,
    features: Sequence[Variable],
    *,
    expected_digest: str | None = None,
) -> tuple[list[str], FloatArray]:
    """Score a node's cohort (consent-refusing patients excluded by ``NodeData``).

    Returns the design's column names and one score per complete-case row, rows ordered by
    patient id as :meth:`NodeData.matrix` orders them.
    """
    names, x = data.matrix(cohort, features)
    want = model.lineage.get("feature_columns")
    if want is not None and list(want) != names:
        raise InvalidInput("the node's feature columns differ from the model's")
    return names, score_matrix(model, x, expected_digest=expected_digest)
