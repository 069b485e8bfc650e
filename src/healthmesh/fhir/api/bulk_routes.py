"""Bulk Data Access routes: ``$export`` kick-off, status polling, files, cancellation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, Response

from healthmesh.errors import Forbidden, InvalidInput, NotFound
from healthmesh.fhir.api.context import Api, Rights
from healthmesh.fhir.api.responses import fhir_response, outcome
from healthmesh.fhir.bulk.export import Exporter, ExportRequest, parse_type_filters


def _kickoff(
    api: Api, exporter: Exporter, request: Request, rights: Rights, level: str, group_id: str | None
) -> Response:
    if "respond-async" not in request.headers.get("prefer", ""):
        raise InvalidInput("$export needs the header Prefer: respond-async")
    params = request.query_params
    fmt = params.get("_outputFormat")
    if fmt and fmt not in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        raise InvalidInput("_outputFormat must be application/fhir+ndjson")
    requested = [t for v in params.getlist("_type") for t in v.split(",") if t]
    for t in requested:
        api.store.check_type(t)
        api.require(rights, t, "r")
    types = requested or sorted(t for t in api.store.resource_types if api.allowed(rights, t, "r"))
    if not types:
        raise Forbidden("the token's scopes allow exporting no resource type")
    since = None
    if params.get("_since"):
        try:
            since = datetime.fromisoformat(params["_since"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise InvalidInput("_since must be a FHIR instant") from None
    if level == "group":
        api.require(rights, "Group", "r")
    req = ExportRequest(
        level=level,
        types=types,
        since=since,
        type_filters=parse_type_filters(params.getlist("_typeFilter"), api.store),
        restrictions={
            t: cond for t in types if (cond := api.restriction(rights, t, "r")) is not None
        },
        group_id=group_id,
        request_url=str(request.url),
        owner=rights.client_id,
    )
    if group_id is not None:
        api.store.read("Group", group_id)
    job = exporter.start(req)
    api.audited(
        rights,
        "E",
        "operation",
        [f"Group/{group_id}"] if group_id else [],
        str(request.url.query) or None,
    )
    return Response(
        status_code=202,
        headers={"Content-Location": f"{api.base(request)}/$export-status/{job.id}"},
    )


def add_bulk_routes(
    router: APIRouter, api: Api, rights_dep: Callable[..., Any], exporter: Exporter | None = None
) -> None:
    export = exporter or Exporter(api.store, api.export_dir)

    @router.get("/$export")
    @router.post("/$export")
    def system_export(request: Request, rights: Rights = Depends(rights_dep)) -> Response:
        return _kickoff(api, export, request, rights, "system", None)

    @router.get("/Patient/$export")
    @router.post("/Patient/$export")
    def patient_export(request: Request, rights: Rights = Depends(rights_dep)) -> Response:
        api.require(rights, "Patient", "r")
        return _kickoff(api, export, request, rights, "patient", None)

    @router.get("/Group/{group_id}/$export")
    @router.post("/Group/{group_id}/$export")
    def group_export(
        request: Request, group_id: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        return _kickoff(api, export, request, rights, "group", group_id)

    def _job(job_id: str, rights: Rights) -> Any:
        job = export.jobs.get(job_id)
        if job is None or job.request.owner != rights.client_id:
            raise NotFound("no such export job")
        return job

    @router.get("/$export-status/{job_id}")
    def status(request: Request, job_id: str, rights: Rights = Depends(rights_dep)) -> Response:
        job = _job(job_id, rights)
        if job.status == "in-progress":
            return Response(
                status_code=202, headers={"X-Progress": job.progress, "Retry-After": "1"}
            )
        if job.status == "failed":
            return fhir_response(outcome("error", "exception", f"export failed: {job.error}"), 500)
        base = f"{api.base(request)}/$export-file/{job.id}"
        return fhir_response(job.manifest(base), 200, {"Expires": "in 24h"})

    @router.delete("/$export-status/{job_id}")
    def cancel(job_id: str, rights: Rights = Depends(rights_dep)) -> Response:
        _job(job_id, rights)
        export.cancel(job_id)
        return Response(status_code=202)

    @router.get("/$export-file/{job_id}/{name}")
    def file(job_id: str, name: str, rights: Rights = Depends(rights_dep)) -> Response:
        job = _job(job_id, rights)
        match = [o for o in job.outputs if o["file"] == name]
        if not match:
            raise NotFound("no such export file")
        return FileResponse(job.directory / name, media_type="application/fhir+ndjson")
