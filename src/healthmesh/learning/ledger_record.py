"""Training runs in the ledger: a :class:`healthmesh.learning.governance.Recorder` that turns
a run's start into a ``job_start`` entry (algorithm ``federated_learning``), its end into a
``model_release`` entry carrying the model hash, and a failure (an error or a timeout after
the start) into a ``job_failure`` entry: the institutions and a reason code (``timeout``,
``transient``, a refusal rule ...), never a message. Entries are validated by the ledger's own
schemas (:func:`healthmesh.ledger.entries.make_event`) and handed to ``append`` — in the hub,
``LedgerService.append_as(hub_institution, events)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from healthmesh.learning.governance import ALGORITHM
from healthmesh.ledger.entries import make_event


class LedgerRecorder:
    """Records training runs through ``append`` (a batch of validated events)."""

    def __init__(
        self, append: Callable[[Sequence[Mapping[str, Any]]], object], actor: str
    ) -> None:
        self.append, self.actor = append, actor

    def record(self, event: str, body: Mapping[str, Any]) -> None:
        """Map a training event to ledger entries (see the module docstring)."""
        if event == "training-started":
            self.append([make_event("job_start", self.actor, {
                "job_id": body["job_id"], "study_id": body["study_id"],
                "algorithm": ALGORITHM, "institutions": list(body["institutions"]),
            })])
        elif event == "training-failed":
            self.append([make_event("job_failure", self.actor, {
                "job_id": body["job_id"], "study_id": body["study_id"],
                "algorithm": ALGORITHM, "institutions": list(body["institutions"]),
                "reason": body["reason"],
            })])
        elif event == "training-finished":
            self.append([make_event("model_release", self.actor, {
                "model_id": body["model_name"], "model_version": str(body["model_version"]),
                "model_digest": body["model_digest"], "training_job_id": body["job_id"],
            })])
