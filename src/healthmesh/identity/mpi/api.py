"""FastAPI routes of the patient index: node submissions and a ``$match``-style lookup.

``make_router(mpi, authorize)`` takes the caller's authorisation dependency (a callable
FastAPI can inject, returning the principal's name and raising to refuse), so this module
knows nothing of tokens or scopes. A submission must come from the OAuth client bound to its
institution (:meth:`MasterPatientIndex.bind_client`): the principal the dependency returns is
that client id, and a submission for any other institution is refused (403). Results are
FHIR Bundles of minimal Patient entries that carry only institution and local identifiers
and the enterprise id, with ``search.score``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from healthmesh.errors import HealthmeshError, InvalidInput
from healthmesh.identity.mpi.service import Encoding, MasterPatientIndex

ENTERPRISE_SYSTEM = "urn:healthmesh:enterprise-id"
INSTITUTION_SYSTEM_PREFIX = "urn:healthmesh:institution:"


class EncodingIn(BaseModel):
    """Encodings of one patient, base64 for bytes and decimal strings for tokens."""

    clk: str
    id_token: str | None = None
    block_tokens: list[str | None] = Field(default_factory=list)

    def to_encoding(self) -> Encoding:
        """Decode into the service's :class:`Encoding`."""
        try:
            clk = base64.b64decode(self.clk, validate=True)
            tok = base64.b64decode(self.id_token, validate=True) if self.id_token else None
            blocks = [int(b) if b else None for b in self.block_tokens]
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("malformed encoding") from exc
        return Encoding(clk, tok, blocks)


class SubmissionIn(EncodingIn):
    """A node's submission for one local patient."""

    institution: str
    local_id: str


def patient_identifier(enterprise_id: str) -> dict[str, Any]:
    """The FHIR ``Patient.identifier`` a node adds to carry the enterprise id.

    >>> patient_identifier("ab12")["system"]
    'urn:healthmesh:enterprise-id'
    """
    return {
        "use": "secondary",
        "system": ENTERPRISE_SYSTEM,
        "value": enterprise_id,
        "assigner": {"display": "healthmesh hub patient index"},
    }


def _outcome(exc: HealthmeshError) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": exc.code, "diagnostics": exc.message}],
    }
    return JSONResponse(body, status_code=exc.status)


def _bundle(mpi: MasterPatientIndex, scored: list[tuple[str, float | None]]) -> dict[str, Any]:
    entries = []
    for enterprise_id, score in scored:
        identifiers = [{"system": ENTERPRISE_SYSTEM, "value": enterprise_id}]
        for member in mpi.members(enterprise_id):
            identifiers.append(
                {
                    "system": INSTITUTION_SYSTEM_PREFIX + member["institution"],
                    "value": member["local_id"],
                }
            )
        entry: dict[str, Any] = {
            "resource": {"resourceType": "Patient", "identifier": identifiers},
            "search": {"mode": "match"},
        }
        if score is not None:
            entry["search"]["score"] = round(min(score, 1.0), 4)
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def make_router(mpi: MasterPatientIndex, authorize: Callable[..., Any]) -> APIRouter:
    """Routes: ``POST /linkage/records`` (node submission), ``POST /Patient/$match``
    (by encoding) and ``GET /Patient/$match?institution=&local_id=`` (by local record).

    Example:
        >>> router = make_router(MasterPatientIndex.open(":memory:"), lambda: "tester")
        >>> sorted(r.path for r in router.routes)
        ['/Patient/$match', '/Patient/$match', '/linkage/records']
    """
    router = APIRouter()

    @router.post("/linkage/records")
    def submit(body: SubmissionIn, principal: Any = Depends(authorize)) -> Any:
        try:
            mpi.check_submitter(body.institution, str(principal))
            decision = mpi.submit(
                body.institution, body.local_id, body.to_encoding(), actor=str(principal)
            )
        except HealthmeshError as exc:
            return _outcome(exc)
        return {
            "enterprise_id": decision.enterprise_id,
            "status": decision.status,
            "score": decision.score,
        }

    @router.post("/Patient/$match")
    def match_encoding(body: EncodingIn, principal: Any = Depends(authorize)) -> Any:
        try:
            found = mpi.match(body.to_encoding())
        except HealthmeshError as exc:
            return _outcome(exc)
        return _bundle(mpi, [(c.enterprise_id, c.score) for c in found])

    @router.get("/Patient/$match")
    def match_local(institution: str, local_id: str, principal: Any = Depends(authorize)) -> Any:
        try:
            enterprise_id = mpi.enterprise_of(institution, local_id)
        except HealthmeshError as exc:
            return _outcome(exc)
        return _bundle(mpi, [(enterprise_id, None)])

    return router
