"""What the hub appends to its ledger: study submissions, each institution's decision, job
starts, job failures and result releases (entry types in :mod:`healthmesh.ledger.entries`).

Researchers appear as ``client:<digest>`` (a stable digest of their OAuth client id: client
ids may hold characters the entry identifiers do not allow); no study content other than the
protocol's digest is written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from healthmesh.ledger.entries import make_event
from healthmesh.ledger.service import LedgerService

_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")


def researcher_ident(client_id: str) -> str:
    """The ledger identifier of a researcher's OAuth client.

    >>> researcher_ident("abc") == researcher_ident("abc")
    True
    """
    return "client:" + hashlib.sha256(client_id.encode()).hexdigest()[:24]


class HubLedger:
    """Appends the hub's study events to an in-process :class:`LedgerService`."""

    def __init__(self, service: LedgerService, actor: str = "hub") -> None:
        self.service = service
        self.actor = actor

    def _append(self, etype: str, body: dict[str, object]) -> int:
        return self.service.log.append_events([make_event(etype, self.actor, body)])[0]

    def study_submitted(
        self, study_id: str, researcher: str, protocol_digest: str, institutions: Sequence[str]
    ) -> int:
        return self._append(
            "study_submission",
            {
                "study_id": study_id,
                "researcher": researcher_ident(researcher),
                "protocol_digest": protocol_digest,
                "institutions": list(institutions),
            },
        )

    def decision(self, study_id: str, institution: str, state: str, protocol_digest: str) -> int:
        return self._append(
            "study_approval",
            {
                "study_id": study_id,
                "approver": institution,
                "decision": state,
                "protocol_digest": protocol_digest,
            },
        )

    def job_started(
        self, job_id: str, study_id: str, algorithm: str, institutions: Sequence[str]
    ) -> int:
        return self._append("job_start", _job(job_id, study_id, algorithm, institutions))

    def job_failed(
        self, job_id: str, study_id: str, algorithm: str, institutions: Sequence[str],
        reason: str,
    ) -> int:
        """A started job ended without a release (``reason``: a code, never a message)."""
        fields = _job(job_id, study_id, algorithm, institutions)
        return self._append("job_failure", {**fields, "reason": reason})

    def released(self, job_id: str, study_id: str, result_digest: str, researcher: str) -> int:
        return self._append(
            "job_result_release",
            {
                "job_id": job_id,
                "study_id": study_id,
                "result_digest": result_digest,
                "released_to": researcher_ident(researcher),
            },
        )


def _job(
    job_id: str, study_id: str, algorithm: str, institutions: Sequence[str]
) -> dict[str, Any]:
    """The fields every job entry carries (an algorithm name outside the grammar as "other")."""
    return {
        "job_id": job_id,
        "study_id": study_id,
        "algorithm": algorithm if _IDENT.fullmatch(algorithm) else "other",
        "institutions": list(institutions),
    }
