"""Risk scores at the node: fetch a trained model version from the hub (checking its hash),
score the node's consented cohort patients with it and keep the scores as FHIR R4
``RiskAssessment`` resources in the node's own store. Nothing is sent anywhere.

The cohort and features are the model's own (its lineage names them); the node's design
columns must equal the model's feature columns. Each (patient, model version) has one
``RiskAssessment`` with a deterministic id, so a second run writes nothing new unless a score
changed. Written here rather than with a library: a few HTTP calls over httpx and a
resource per row; the scoring itself is :mod:`healthmesh.learning.scoring`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from healthmesh.analytics import _model_fit as mf
from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.errors import InvalidInput, LedgerIntegrityError
from healthmesh.learning.registry import ModelVersion, unpack_weights, weights_digest
from healthmesh.learning.scoring import score_matrix
from healthmesh.node.hub_client import raise_for_hub

if TYPE_CHECKING:
    from healthmesh.fhir.store import FhirStore

log = logging.getLogger(__name__)
#: the OAuth2 scope a node's client at the hub needs to fetch models
MODEL_SCOPE = "system/Model.rs"
MODEL_SYSTEM = "urn:healthmesh:model"
DIGEST_SYSTEM = "urn:healthmesh:model-digest"


@dataclass(frozen=True)
class ScoreRun:
    """What one scoring run did (counts only)."""

    model: str
    version: int
    digest: str
    scored: int
    written: int
    unchanged: int
    withdrawn: int = 0


def model_from_served(body: dict[str, Any], *, expected_digest: str | None = None) -> ModelVersion:
    """A :class:`ModelVersion` from the hub's ``GET /models/{name}/{version}`` body.

    Raises LedgerIntegrityError when the weights' SHA-256 differs from the served digest or
    from ``expected_digest`` (e.g. the ledger's model-release entry)."""
    try:
        weights = unpack_weights(base64.b64decode(body["weights"], validate=True))
        digest = str(body["digest"])
        model = ModelVersion(
            name=str(body["name"]), version=int(body["version"]),
            created_at=dt.datetime.fromisoformat(body["created_at"]),
            study_id=str(body["study_id"]), job_id=str(body["job_id"]), kind=str(body["kind"]),
            digest=digest, metric_name=str(body["metric_name"]), metric=body.get("metric"),
            spec=dict(body["spec"]), lineage=dict(body["lineage"]),
            per_institution=dict(body.get("per_institution") or {}), weights=weights,
        )
    except (KeyError, TypeError, ValueError, binascii.Error, OSError):
        raise InvalidInput("the hub's model response is malformed") from None
    actual = weights_digest(weights)
    if actual != digest or (expected_digest is not None and actual != expected_digest):
        raise LedgerIntegrityError(
            f"model {model.name} v{model.version}: weights do not match the expected hash")
    return model


def fetch_model(
    hub_url: str,
    token: Callable[[], str],
    name: str,
    version: int | None = None,
    *,
    expected_digest: str | None = None,
    http: httpx.Client | None = None,
) -> ModelVersion:
    """Fetch a model version (the latest when ``version`` is None) and verify its hash."""
    client = http or httpx.Client(timeout=60.0)
    try:
        resp = client.get(
            f"{hub_url.rstrip('/')}/models/{name}/{version if version else 'latest'}",
            headers={"Authorization": f"Bearer {token()}"},
        )
        raise_for_hub(resp, f"model {name}")
        return model_from_served(resp.json(), expected_digest=expected_digest)
    finally:
        if http is None:
            client.close()


def _model_design(model: ModelVersion) -> tuple[Cohort, list[Variable]]:
    lineage = model.lineage
    if "covariates" not in lineage:
        raise InvalidInput("the model's lineage does not name its covariates")
    cohort = mf.parse_cohort({"cohort": lineage.get("cohort") or {}})
    return cohort, mf.parse_covariates({"covariates": lineage["covariates"]}, reserved=[])


def risk_assessment_id(model: ModelVersion, patient_id: str) -> str:
    """Deterministic id of the RiskAssessment of one patient under one model version."""
    key = f"{model.name}|{model.version}|{model.digest}|{patient_id}".encode()
    return "risk-" + hashlib.sha256(key).hexdigest()[:40]


def _assessment(model: ModelVersion, pid: str, score: float, when: str) -> dict[str, Any]:
    label = f"{model.name} v{model.version}"
    pred: dict[str, Any] = (
        {"relativeRisk": score} if model.kind == "cox" else {"probabilityDecimal": score}
    )
    return {
        "resourceType": "RiskAssessment",
        "id": risk_assessment_id(model, pid),
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "occurrenceDateTime": when,
        "method": {
            "coding": [{"system": MODEL_SYSTEM, "code": f"{model.name}:{model.version}",
                        "display": label}],
            "text": f"{label} ({model.digest})",
        },
        "basis": [{"identifier": {"system": DIGEST_SYSTEM, "value": model.digest},
                   "display": f"model {label}, study {model.study_id}"}],
        "prediction": [pred],
    }


def _existing_ids(store: FhirStore, model: ModelVersion) -> set[str]:
    """Ids of the stored RiskAssessments of this model version (every search page)."""
    pairs = [("method", f"{MODEL_SYSTEM}|{model.name}:{model.version}"), ("_count", "500")]
    out: set[str] = set()
    cursor: str | None = None
    while True:
        page = store.search_engine.search(
            "RiskAssessment", pairs + ([("_cursor", cursor)] if cursor else []), strict=True)
        out.update(s.res_id for s in page.matches)
        cursor = page.next_cursor
        if not cursor:
            return out


_COMPARED = ("status", "subject", "method", "basis", "prediction")


def write_risk_scores(
    store: FhirStore,
    model: ModelVersion,
    *,
    occurrence: dt.date | None = None,
    features: Sequence[Variable] | None = None,
) -> ScoreRun:
    """Score the model's cohort at this node and upsert one RiskAssessment per patient.

    Patients who refused research use are not in the cohort (``SqlNodeData``); rows with a
    missing feature are not scored. A patient whose current RiskAssessment for this model
    version already carries the same score is left alone (no new resource version); this
    version's RiskAssessments of patients no longer scored are deleted (kept in history)."""
    from healthmesh.node.analytics.data import SqlNodeData

    cohort, variables = _model_design(model)
    names, ids, x = SqlNodeData(store).matrix_ids(cohort, list(features or variables))
    want = model.lineage.get("feature_columns")
    if want is not None and list(want) != names:
        raise InvalidInput("the node's feature columns differ from the model's")
    scores: list[float] = [float(v) for v in score_matrix(model, x)] if ids else []
    when = (occurrence or dt.datetime.now(dt.UTC).date()).isoformat()
    written = unchanged = 0
    # scores of patients no longer in the cohort (e.g. consent withdrawn) are withdrawn
    stale = sorted(_existing_ids(store, model) - {risk_assessment_id(model, p) for p in ids})
    with store.writing() as tx:
        for rid in stale:
            tx.delete("RiskAssessment", rid)
        for pid, score in zip(ids, scores, strict=True):
            res = _assessment(model, pid, score, when)
            cur = tx.current("RiskAssessment", res["id"])
            if cur is not None and cur.content is not None:
                old = json.loads(cur.content)
                if all(old.get(k) == res[k] for k in _COMPARED):
                    unchanged += 1
                    continue
            tx.update("RiskAssessment", res["id"], res)
            written += 1
    log.info("risk scores %s v%s: %d scored, %d written", model.name, model.version,
             len(ids), written)
    return ScoreRun(model.name, model.version, model.digest, len(ids), written, unchanged,
                    len(stale))


def score_from_hub(
    store: FhirStore,
    hub_url: str,
    token: Callable[[], str],
    name: str,
    version: int | None = None,
    *,
    expected_digest: str | None = None,
    http: httpx.Client | None = None,
) -> ScoreRun:
    """:func:`fetch_model` then :func:`write_risk_scores` (the ``node score`` command)."""
    model = fetch_model(hub_url, token, name, version, expected_digest=expected_digest,
                        http=http)
    return write_risk_scores(store, model)


__all__ = ["MODEL_SCOPE", "ScoreRun", "fetch_model", "model_from_served",
           "risk_assessment_id", "score_from_hub", "write_risk_scores"]
