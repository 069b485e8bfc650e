"""Who may train what, on which data, at which privacy cost — the contract between a training
run and the platform, with in-memory twins for tests.

Each institution enforces its own part (:class:`NodeGovernance`): it trains only for a study it
approved for federated learning on the cohort it approved (:class:`Approvals`), only on its
research-consented patients of that cohort (:class:`TrainingData`, consent applied by
:class:`healthmesh.analytics.data.NodeData`), and charges the run's ε/δ to the researcher's
budget for the study, refusing when it would be exceeded (:class:`Budget`). The run's start,
end, participants and model hash go to a :class:`Recorder` (the ledger in production).

Adapters to the node's real stores: :class:`StudyApprovals` (``node.studies.NodeStudies``) and
:class:`StoreBudget` (any ``privacy.budget.BudgetStore``: memory or the node's SQL store).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from healthmesh.analytics.cohort import Cohort, SurvivalVariable, Variable, columns
from healthmesh.analytics.data import NodeData
from healthmesh.errors import Forbidden, InvalidInput
from healthmesh.privacy.budget import BudgetStore, Spent

#: the algorithm name a study's computation uses for federated training
ALGORITHM = "federated_learning"
FloatArray = npt.NDArray[np.float64]


def cohort_digest(cohort: Cohort) -> str:
    """``sha256:`` of the cohort definition's canonical JSON (what lineage records)."""
    text = json.dumps(cohort.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class NodeDataset:
    """One institution's training material; stays at the node (only counts and the consent
    snapshot hash leave it)."""

    columns: list[str]
    x_train: FloatArray
    y_train: FloatArray
    x_test: FloatArray
    y_test: FloatArray
    consent_snapshot: str  # sha256 of the cohort's member ids at training time

    def save(self, path: str) -> None:
        """Write the ``.npz`` the institution's ClientApp reads."""
        np.savez(path, x_train=self.x_train, y_train=self.y_train,
                 x_test=self.x_test, y_test=self.y_test)


class Approvals(Protocol):
    def require(self, study_id: str, cohort: Cohort) -> None:
        """Raise Forbidden unless this node approved federated learning for the study on
        ``cohort``."""
        ...


class TrainingData(Protocol):
    def dataset(
        self, cohort: Cohort, features: Sequence[Variable], label: Variable, *,
        test_fraction: float, seed: int,
    ) -> NodeDataset:
        """Consent-filtered complete-case rows of the cohort, split train/test."""
        ...


class Budget(Protocol):
    def charge(self, researcher: str, study_id: str, charge_id: str, epsilon: float,
               delta: float) -> None:
        """Charge once per ``charge_id``; DisclosureRisk (privacy-budget) past the cap."""
        ...

    def remaining(self, researcher: str, study_id: str) -> tuple[float, float]: ...


class Recorder(Protocol):
    def record(self, event: str, body: Mapping[str, Any]) -> None:
        """Record ``event`` (``training-started``, ``training-finished``, ``training-failed``,
        ``model-release``) with its body (ids, institutions, digests; never patient data)."""
        ...


@dataclass
class NodeGovernance:
    """What one institution enforces for a training run."""

    institution: str
    approvals: Approvals
    data: TrainingData
    budget: Budget


# ---- adapters to the real stores and data -------------------------------------------------


class NodeDataProvider:
    """:class:`TrainingData` over a node's :class:`NodeData` (SQL or in-memory)."""

    def __init__(self, data: NodeData) -> None:
        self.data = data

    def dataset(
        self, cohort: Cohort, features: Sequence[Variable], label: Variable, *,
        test_fraction: float = 0.3, seed: int = 0,
    ) -> NodeDataset:
        """Rows ordered by patient id, shuffled by ``seed``, split ``test_fraction``."""
        if not 0 < test_fraction < 1:
            raise InvalidInput("test_fraction must be in (0, 1)")
        if isinstance(label, SurvivalVariable):
            label_cols = [f"{label.name}_time", f"{label.name}_event"]
        else:
            label_cols = columns(label)
            if len(label_cols) != 1:
                raise InvalidInput("a binary label must be one 0/1 variable")
        names, m = self.data.matrix(cohort, [*features, label])
        feat = [c for c in names if c not in label_cols]
        x = m[:, [names.index(c) for c in feat]]
        y = m[:, [names.index(c) for c in label_cols]]
        if len(label_cols) == 1:
            y = y[:, 0]
            if not np.isin(y, (0.0, 1.0)).all():
                raise InvalidInput("a binary label must take values 0 and 1")
        members = sorted(self.data.members(cohort))
        snapshot = "sha256:" + hashlib.sha256("\n".join(members).encode()).hexdigest()
        order = np.random.default_rng(seed).permutation(len(x))
        n_test = round(len(x) * test_fraction)
        te, tr = order[:n_test], order[n_test:]
        return NodeDataset(feat, x[tr], y[tr], x[te], y[te], snapshot)


class StudyApprovals:
    """:class:`Approvals` over the node's study record (``healthmesh.node.studies``)."""

    def __init__(self, studies: Any) -> None:
        self.studies = studies  # NodeStudies (typed loosely: node imports the web stack)

    def require(self, study_id: str, cohort: Cohort) -> None:
        self.studies.require_approval(
            study_id, ALGORITHM, {"cohort": cohort.model_dump(mode="json")}
        )


class StoreBudget:
    """:class:`Budget` over a ``privacy.budget.BudgetStore`` with this node's cap per study."""

    def __init__(self, store: BudgetStore, cap_epsilon: float, cap_delta: float) -> None:
        self.store, self.cap = store, Spent(cap_epsilon, cap_delta)

    def charge(self, researcher: str, study_id: str, charge_id: str, epsilon: float,
               delta: float) -> None:
        self.store.charge(researcher, study_id, charge_id, Spent(epsilon, delta), self.cap)

    def remaining(self, researcher: str, study_id: str) -> tuple[float, float]:
        spent = self.store.spent(researcher, study_id)
        return self.cap.epsilon - spent.epsilon, self.cap.delta - spent.delta


# ---- in-memory twins ----------------------------------------------------------------------


@dataclass
class MemoryApprovals:
    """Approvals held in memory: study id -> approved cohort digests (None = any cohort)."""

    approved: dict[str, set[str] | None] = field(default_factory=dict)

    def approve(self, study_id: str, cohort: Cohort | None = None) -> None:
        """Approve federated learning for ``study_id`` (on ``cohort`` only, when given)."""
        if cohort is None:
            self.approved[study_id] = None
        else:
            cur = self.approved.get(study_id, set())
            self.approved[study_id] = (cur or set()) | {cohort_digest(cohort)}

    def require(self, study_id: str, cohort: Cohort) -> None:
        if study_id not in self.approved:
            raise Forbidden("this node has not approved federated learning for this study")
        allowed = self.approved[study_id]
        if allowed is not None and cohort_digest(cohort) not in allowed:
            raise Forbidden("the run's cohort is not the one this node approved")


@dataclass
class MemoryRecorder:
    """Recorded events in a list (tests; the demo's console)."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def record(self, event: str, body: Mapping[str, Any]) -> None:
        self.events.append((event, dict(body)))
