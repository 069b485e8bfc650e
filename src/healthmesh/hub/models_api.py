"""The hub's model-serving API: registered model versions (``GET /models``) and one version's
card, spec and weights (``GET /models/{name}/{version}``) so nodes compute risk scores locally.

Who may read: researchers with ``system/Study.rs`` the versions trained in their own studies
(``studies_of``: researcher client id -> the ids of the studies they submitted; a version of
another researcher's study, or of none, is 403); operators (``system/Institution.cruds``)
every version; institutions' node clients with ``system/Model.rs``. Nodes use an OAuth2
client (client credentials at the hub's token endpoint, registered by the operator for an
approved institution), the path ``healthmesh node link`` already takes: a signed federation
call would need a new message kind in the transport for a read that carries no patient data,
so the existing OAuth2 path is the simpler sound one. A node client must be bound to its
institution (:mod:`healthmesh.hub.model_access`), and it lists and reads only the model
versions its institution took part in training or that were shared with it (403 otherwise);
``latest`` is the newest such version.

The weights travel as base64 of the registry's NumPy ``.npz`` (no pickles); ``digest`` is the
SHA-256 of the canonical weights bytes, which the node recomputes before scoring.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from healthmesh.access.context import AccessContext
from healthmesh.access.tokens import InsufficientScope
from healthmesh.errors import Forbidden, InvalidInput
from healthmesh.hub.model_access import ModelAccess
from healthmesh.learning.card import card_json
from healthmesh.learning.registry import ModelRegistry, pack_weights

MODEL_READ = "system/Model.rs"


@dataclass(frozen=True)
class Reader:
    """Who reads: a researcher (``institution`` None; ``operator`` reads every version) or a
    node client's institution."""

    client_id: str
    institution: str | None
    operator: bool = False


def _reader(auth: Callable[..., AccessContext], access: ModelAccess) -> Callable[..., Reader]:
    def principal(ctx: AccessContext = Depends(auth)) -> Reader:
        if ctx.scopes.allows("Study", "r"):
            return Reader(ctx.client_id, None, operator=ctx.scopes.allows("Institution", "u"))
        if not ctx.scopes.allows("Model", "r"):
            raise InsufficientScope("this needs the scope system/Study.rs or system/Model.rs")
        institution = access.institution_of(ctx.client_id)
        if institution is None:
            raise Forbidden("this client is not bound to an institution that may read models")
        return Reader(ctx.client_id, institution)

    return principal


StudiesOf = Callable[[str], set[str]]


def _no_studies(_researcher: str) -> set[str]:
    return set()


def allowed_versions(
    access: ModelAccess,
    studies_of: StudiesOf,
    reader: Reader,
    rows: list[dict[str, Any]],
    name: str | None = None,
) -> set[tuple[str, int]] | None:
    """(name, version) pairs ``reader`` may read (of ``name``); None: every version.
    ``rows``: the registry's version summaries (``ModelRegistry.versions(name)``)."""
    if reader.institution is not None:
        return access.readable(reader.institution, name)
    if reader.operator:
        return None
    own = studies_of(reader.client_id)
    return {(str(r["name"]), int(r["version"])) for r in rows if r["study_id"] in own}


def readable_version(
    registry: ModelRegistry,
    access: ModelAccess,
    reader: Reader,
    name: str,
    version: int | None,
    studies_of: StudiesOf = _no_studies,
) -> int | None:
    """The version ``reader`` may read (None: the latest, for an operator); Forbidden when
    the institution neither trained nor was given it or the version is not of the
    researcher's own study, NotFound when there is none."""
    rows = [] if reader.institution is not None or reader.operator else registry.versions(name)
    pairs = allowed_versions(access, studies_of, reader, rows, name)
    if pairs is None:
        return version
    allowed = {v for _, v in pairs}
    if version is None:
        if allowed:
            return max(allowed)
        registry.get(name)  # NotFound when the model does not exist at all
    elif version in allowed:
        return version
    else:
        registry.get(name, version)
    if reader.institution is None:
        raise Forbidden("this model version was not trained in one of your studies")
    raise Forbidden("this institution did not train this model version and it was not "
                    "shared with it")


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


def create_models_router(
    registry: ModelRegistry, auth: Callable[..., AccessContext],
    access: ModelAccess | None = None,
    studies_of: StudiesOf = _no_studies,
) -> APIRouter:
    """Routes ``GET /models`` and ``GET /models/{name}/{version}`` (``latest`` allowed);
    ``access``: node clients' institutions and shares (default: on the registry's database);
    ``studies_of``: a researcher's study ids (default: none known, so researchers read nothing
    and only operators read every version)."""
    router = APIRouter(tags=["models"])
    acl = access or ModelAccess(registry.engine)
    reader = _reader(auth, acl)

    def visible(who: Reader) -> list[dict[str, Any]]:
        rows = registry.versions()
        allowed = allowed_versions(acl, studies_of, who, rows)
        if allowed is None:
            return rows
        return [r for r in rows if (r["name"], r["version"]) in allowed]

    @router.get("/models")
    async def list_models(who: Reader = Depends(reader)) -> dict[str, Any]:
        rows = await run_in_threadpool(visible, who)
        return {"models": [
            {"name": r["name"], "version": r["version"], "hash": r["digest"],
             "created": r["created_at"].isoformat(), "study": r["study_id"], "kind": r["kind"],
             "metric_name": r["metric_name"], "metric": r["metric"]}
            for r in rows
        ]}

    @router.get("/models/{name}/{version}")
    async def get_model(name: str, version: str, who: Reader = Depends(reader)) -> dict[str, Any]:
        if version == "latest":
            number: int | None = None
        elif version.isdigit() and 0 < int(version) < 2**31:
            number = int(version)
        else:
            raise InvalidInput("version must be a positive integer or 'latest'",
                               location="version")

        def serve() -> dict[str, Any]:
            allowed = readable_version(registry, acl, who, name, number, studies_of)
            return served_model(registry, name, allowed)

        return await run_in_threadpool(serve)

    return router
