"""One governed federated training run, end to end.

1. Every named institution checks its own approval of the study for federated learning on the
   run's cohort (Forbidden otherwise — nothing is trained, nothing is charged).
2. With DP, every institution charges the run's (ε, δ) to the researcher's budget for the
   study, all-or-nothing checked first (DisclosureRisk ``privacy-budget`` when exceeded).
3. Each institution's data provider writes its consent-filtered rows where its ClientApp reads
   them; the run is recorded as started (ledger), trained on Flower (in-process grid or the
   deployment engine, SecAgg+ on by default), then registered with its lineage and recorded
   as finished with the model hash — or recorded as failed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.errors import (
    DisclosureRisk,
    Forbidden,
    InvalidInput,
    LedgerIntegrityError,
)
from healthmesh.learning.governance import NodeGovernance, Recorder, cohort_digest
from healthmesh.learning.registry import ModelRegistry, ModelVersion, weights_digest
from healthmesh.learning.spec import parse_spec
from healthmesh.ledger.reasons import failure_reason


class Engine(Protocol):
    def run(self, spec_json: str, node_files: Mapping[str, str], out: Path) -> dict[str, Any]:
        """Train; the server's result dict (``model_path`` names the weights ``.npz``)."""
        ...


@dataclass
class LocalEngine:
    """The Flower apps in this process (:mod:`healthmesh.learning.local_grid`)."""

    workers: int = 1
    drop_after: Mapping[int, int] | None = None

    def run(self, spec_json: str, node_files: Mapping[str, str], out: Path) -> dict[str, Any]:
        from healthmesh.learning.apps import client_app, server_app
        from healthmesh.learning.local_grid import run_local

        cfgs = [{"data": p, "institution": k} for k, p in node_files.items()]
        rc = {"spec": spec_json, "result-dir": str(out), "clients": len(cfgs)}
        run_local(server_app, client_app, cfgs, rc, workers=self.workers,
                  drop_after=self.drop_after)
        result: dict[str, Any] = json.loads((out / "result.json").read_text())
        result["model_path"] = str(out / "model.npz")
        return result


@dataclass
class DeploymentEngine:
    """A fresh SuperLink + one SuperNode per institution for the run (subprocesses)."""

    timeout: float = 900.0

    def run(self, spec_json: str, node_files: Mapping[str, str], out: Path) -> dict[str, Any]:
        from healthmesh.learning.deploy import Deployment

        with Deployment({k: {"data": p} for k, p in node_files.items()}) as dep:
            return dep.run(spec_json, timeout=self.timeout)


@dataclass(frozen=True)
class TrainingRequest:
    """A researcher's training run within a study."""

    study_id: str
    job_id: str
    researcher: str
    model_name: str
    institutions: Sequence[str]
    cohort: Cohort
    features: Sequence[Variable]
    label: Variable
    spec: Mapping[str, Any] = field(default_factory=dict)  # TrainingSpec fields but n_features
    test_fraction: float = 0.3


def train(
    request: TrainingRequest,
    nodes: Mapping[str, NodeGovernance],
    recorder: Recorder,
    registry: ModelRegistry,
    engine: Engine | None = None,
) -> ModelVersion:
    """Run ``request`` under governance; the registered model version."""
    insts = list(dict.fromkeys(request.institutions))
    missing = [i for i in insts if i not in nodes]
    if missing:
        raise InvalidInput(f"unknown institutions: {', '.join(sorted(missing))}")
    if len(insts) < 2:
        raise InvalidInput("federated training needs at least two institutions")
    # 1. approvals, each node for itself
    refused = []
    for inst in insts:
        try:
            nodes[inst].approvals.require(request.study_id, request.cohort)
        except Forbidden:
            refused.append(inst)
    if refused:
        raise Forbidden(
            "not approved for federated learning by: " + ", ".join(sorted(refused))
        )
    # 2. datasets (consent applied by each node's data), then the spec with the feature count
    work = tempfile.TemporaryDirectory(prefix="hm-train-")
    try:
        files, lineage_inst, cols = {}, {}, None
        for inst in insts:
            ds = nodes[inst].data.dataset(
                request.cohort, request.features, request.label,
                test_fraction=request.test_fraction, seed=int(request.spec.get("seed", 0)),
            )
            if cols is not None and ds.columns != cols:
                raise InvalidInput("institutions produced different feature columns")
            cols = ds.columns
            if len(ds.x_train) == 0 or len(ds.x_test) == 0:
                raise DisclosureRisk(f"min-cell-size: {inst} has too few eligible patients")
            path = str(Path(work.name) / f"{inst}.npz")
            ds.save(path)
            files[inst] = path
            lineage_inst[inst] = {"n_train": len(ds.x_train), "n_test": len(ds.x_test),
                                  "consent_snapshot": ds.consent_snapshot}
        if cols is None:
            raise InvalidInput("no institutions")
        spec = parse_spec({**request.spec, "n_features": len(cols),
                           "min_clients": int(request.spec.get("min_clients", len(insts)))})
        # 3. budgets: check every node first, then charge (one charge id per job)
        if spec.dp is not None:
            for inst in insts:
                eps_left, delta_left = nodes[inst].budget.remaining(
                    request.researcher, request.study_id)
                if spec.dp.epsilon > eps_left + 1e-9 or spec.dp.delta > delta_left + 1e-12:
                    raise DisclosureRisk(
                        f"privacy-budget: the run's epsilon {spec.dp.epsilon:g} exceeds what "
                        f"is left at {inst}"
                    )
            for inst in insts:
                nodes[inst].budget.charge(request.researcher, request.study_id,
                                          request.job_id, spec.dp.epsilon, spec.dp.delta)
        base = {"study_id": request.study_id, "job_id": request.job_id,
                "institutions": insts}
        recorder.record("training-started", base)
        try:
            result = (engine or LocalEngine()).run(
                spec.model_dump_json(), files, Path(work.name) / "out")
            with np.load(result["model_path"]) as f:
                weights = [f[f"arr_{i}"] for i in range(len(f.files))]
        except Exception as exc:  # a code, never the message: the ledger may record it
            recorder.record("training-failed", {**base, "reason": failure_reason(exc)})
            raise
        lineage = {
            "institutions": lineage_inst,
            "cohort": request.cohort.model_dump(mode="json"),
            "cohort_digest": cohort_digest(request.cohort),
            "feature_columns": cols,
            "privacy": result.get("privacy"),
            "rounds": result.get("rounds"),
        }
        model = registry.register(
            request.model_name, study_id=request.study_id, job_id=request.job_id,
            spec=spec.model_dump(mode="json"), weights=weights, metric=result.get("metric"),
            per_institution=result.get("per_institution", {}), lineage=lineage,
        )
        if model.digest != weights_digest(weights):
            raise LedgerIntegrityError("the registered model differs from the trained one")
        recorder.record("training-finished", {
            **base, "model_name": model.name, "model_version": model.version,
            "model_digest": model.digest,
            "epsilon": (result.get("privacy") or {}).get("epsilon"),
        })
        return model
    finally:
        work.cleanup()
