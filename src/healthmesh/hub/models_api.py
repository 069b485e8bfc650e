"""The hub's model-serving API: registered model versions (``GET /models``) and one version's
card, spec and weights (``GET /models/{name}/{version}``) so nodes compute risk scores locally.

Who may read: researchers with ``system/Study.rs`` and institutions' node clients with
``system/Model.rs``. Nodes use an OAuth2 client (client credentials at the hub's token
endpoint, registered by the operator for an approved institution), the path ``healthmesh node
link`` already takes: a signed federation call would need a new message kind in the transport
for a read that carries no patient data, so the existing OAuth2 path is the simpler sound one.

The weights travel as base64 of the registry's NumPy ``.npz`` (no pickles); ``digest`` is the
SHA-256 of the canonical weights bytes, which the node recomputes before scoring.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from healthmesh.access.context import AccessContext
from healthmesh.access.tokens import InsufficientScope
from healthmesh.errors import InvalidInput
from healthmesh.learning.card import card_json
from healthmesh.learning.registry import ModelRegistry, pack_weights

MODEL_READ = "system/Model.rs"


def _reader(auth: Callable[..., AccessContext]) -> Callable[..., str]:
    def principal(ctx: AccessContext = Depends(auth)) -> str:
        if not (ctx.scopes.allows("Study", "r") or ctx.scopes.allows("Model", "r")):
            raise InsufficientScope("this needs the scope system/Study.rs or system/Model.rs")
        return ctx.client_id

    return principal


def served_model(registry: ModelRegistry, name: str, version: int | None) -> dict[str, Any]:
    """One model version as served: card, spec, lineage, digest and base64 weights."""
    m = registry.get(name, version)
    return {
        "name": m.name, "version": m.version, "digest": m.digest, "kind": m.kind,
        "created_at": m.created_at.isoformat(), "study_id": m.study_id, "job_id": m.job_id,
        "metric_name": m.metric_name, "metric": m.metric, "per_institution": m.per_institution,
        "spec": m.spec, "lineage": m.lineage, "card": card_json(m),
        "weights": base64.b64encode(pack_weights(m.weights)).decode(),
    }


def create_models_router(registry: ModelRegistry, auth: Callable[..., AccessContext]) -> APIRouter:
    """Routes ``GET /models`` and ``GET /models/{name}/{version}`` (``latest`` allowed)."""
    router = APIRouter(tags=["models"])
    reader = _reader(auth)

    @router.get("/models")
    async def list_models(_: str = Depends(reader)) -> dict[str, Any]:
        rows = await run_in_threadpool(registry.versions)
        return {"models": [
            {"name": r["name"], "version": r["version"], "hash": r["digest"],
             "created": r["created_at"].isoformat(), "study": r["study_id"], "kind": r["kind"],
             "metric_name": r["metric_name"], "metric": r["metric"]}
            for r in rows
        ]}

    @router.get("/models/{name}/{version}")
    async def get_model(name: str, version: str, _: str = Depends(reader)) -> dict[str, Any]:
        if version == "latest":
            number: int | None = None
        elif version.isdigit() and 0 < int(version) < 2**31:
            number = int(version)
        else:
            raise InvalidInput("version must be a positive integer or 'latest'",
                               location="version")
        return await run_in_threadpool(served_model, registry, name, number)

    return router
