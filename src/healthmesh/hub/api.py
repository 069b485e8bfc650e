"""The hub's researcher and operator API (FastAPI router): studies, results, catalog search,
institutions.

Authorisation is OAuth2 client credentials (``healthmesh.access``); the hub's permissions are
SMART-style system scopes on hub resources, so the shared token endpoint can grant them:

=============================  ======================================================
``system/Study.c``             submit studies and run their approved computations
``system/Study.rs``            read one's own studies and their results
``system/Catalog.rs``          search the data catalog
``system/Institution.cruds``   operator (``hub.admin``): every study, institutions
=============================  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from healthmesh.access.context import AccessContext
from healthmesh.access.tokens import InsufficientScope
from healthmesh.errors import Forbidden
from healthmesh.hub.studies import parse_request

if TYPE_CHECKING:
    from healthmesh.hub.app import Hub

STUDY_SUBMIT = "system/Study.c"
STUDY_READ = "system/Study.rs"
CATALOG_READ = "system/Catalog.rs"
HUB_ADMIN = "system/Institution.cruds"
#: the scopes a researcher client is registered with by default
RESEARCHER_SCOPES = f"{STUDY_SUBMIT} {STUDY_READ} {CATALOG_READ}"


def _needs(ctx: AccessContext, resource: str, permission: str) -> None:
    if not ctx.scopes.allows(resource, permission):
        raise InsufficientScope(f"this needs the scope system/{resource}.{permission}")


def is_admin(ctx: AccessContext) -> bool:
    return ctx.scopes.allows("Institution", "u")


def create_hub_router(hub: Hub, auth: Callable[..., AccessContext]) -> APIRouter:
    """Routes: ``POST/GET /studies``, ``GET /studies/{id}``, ``POST /studies/{id}/run``,
    ``GET /studies/{id}/results``, ``GET /catalog``, ``GET /institutions``,
    ``POST /institutions/{id}/approve|revoke``."""
    router = APIRouter(tags=["hub"])

    def own_study(study_id: str, ctx: AccessContext) -> Any:
        study = hub.studies.get(study_id)
        if study.researcher != ctx.client_id and not is_admin(ctx):
            raise Forbidden("this study belongs to another researcher")
        return study

    @router.post("/studies", status_code=201)
    def submit(body: Annotated[dict[str, Any], Body()], ctx: AccessContext = Depends(auth)) -> Any:
        _needs(ctx, "Study", "c")
        study = hub.submit_study(ctx.client_id, parse_request(body))
        return JSONResponse(study.as_dict(), status_code=201)

    @router.get("/studies")
    def list_studies(ctx: AccessContext = Depends(auth)) -> Any:
        _needs(ctx, "Study", "s")
        return hub.studies.list(None if is_admin(ctx) else ctx.client_id)

    @router.get("/studies/{study_id}")
    def show(study_id: str, ctx: AccessContext = Depends(auth)) -> Any:
        _needs(ctx, "Study", "r")
        return own_study(study_id, ctx).as_dict()

    @router.post("/studies/{study_id}/run")
    async def run(
        study_id: str,
        ctx: AccessContext = Depends(auth),
        body: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> Any:
        """Run the named computations (default: every computation some institution
        approved), one after the other; answers with their records when done."""
        _needs(ctx, "Study", "c")
        study = own_study(study_id, ctx)
        names = (body or {}).get("computations")
        if names is None:
            names = [c.name for c in study.request.computations if study.approved_for(c.name)]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise Forbidden("computations must be a list of the study's computation names")
        records = []
        for name in names:
            rec = await run_in_threadpool(hub.jobs.run, study, name, ctx.client_id)
            records.append(rec.as_dict())
        return {"study": study_id, "jobs": records}

    @router.get("/studies/{study_id}/results")
    def results(study_id: str, ctx: AccessContext = Depends(auth)) -> Any:
        _needs(ctx, "Study", "r")
        own_study(study_id, ctx)
        return {"study": study_id, "jobs": [r.as_dict() for r in hub.results.for_study(study_id)]}

    @router.get("/catalog")
    def catalog(
        resource_type: str | None = Query(None, max_length=64),
        code: str | None = Query(None, max_length=300),
        kind: str | None = Query(None, pattern="^(hospital|clinic|cdc)$"),
        ctx: AccessContext = Depends(auth),
    ) -> Any:
        _needs(ctx, "Catalog", "s")
        kinds = {i.institution: i.metadata.kind for i in hub.registry.institutions("approved")}
        return hub.catalog.search(
            resource_type=resource_type, code=code, kind=kind, institutions=kinds
        )

    @router.get("/institutions")
    def institutions(ctx: AccessContext = Depends(auth)) -> Any:
        _needs(ctx, "Catalog", "s")
        full = is_admin(ctx)
        return [
            {
                "institution": i.institution,
                "name": i.metadata.name,
                "kind": i.metadata.kind,
                "status": i.status,
                **({"keys": [k.record.key_id for k in i.keys]} if full else {}),
            }
            for i in hub.registry.institutions(None if full else "approved")
        ]

    @router.post("/institutions/{institution}/approve")
    def approve(institution: str, ctx: AccessContext = Depends(auth)) -> Any:
        _needs(ctx, "Institution", "u")
        return {
            "institution": institution,
            "status": hub.registry.approve(institution, ctx.client_id).status,
        }

    @router.post("/institutions/{institution}/revoke")
    def revoke(institution: str, ctx: AccessContext = Depends(auth)) -> Any:
        _needs(ctx, "Institution", "u")
        inst = hub.registry.revoke(operator=ctx.client_id, institution=institution)
        return {"institution": institution, "status": inst.status}

    return router
