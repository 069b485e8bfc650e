"""Instance and type interactions: read, vread, create, update, patch, delete, history."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from healthmesh.errors import Forbidden, Gone, InvalidInput, NotFound
from healthmesh.fhir.api.context import Api, Rights
from healthmesh.fhir.api.responses import (
    bundle,
    fhir_response,
    history_entry,
    outcome,
    resource_headers,
    shape,
)
from healthmesh.fhir.store.records import Stored, WriteResult, parse_etag


def _prefer_return(request: Request) -> str:
    prefer = request.headers.get("prefer", "")
    for part in prefer.split(";"):
        part = part.strip()
        if part.startswith("return="):
            return part.split("=", 1)[1]
    return "representation"


def write_response(api: Api, request: Request, result: WriteResult) -> Response:
    stored = result.stored
    headers = resource_headers(stored, api.base(request))
    status = 201 if result.created else 200
    ret = _prefer_return(request)
    if ret == "minimal":
        return fhir_response(None, status, headers)
    if ret == "OperationOutcome":
        return fhir_response(outcome("information", "informational", "ok"), status, headers)
    return fhir_response(stored.content, status, headers)


def read_response(request: Request, api: Api, stored: Stored) -> Response:
    summary = request.query_params.get("_summary")
    elements = request.query_params.get("_elements")
    headers = resource_headers(stored, api.base(request))
    headers.pop("Location")
    inm = request.headers.get("if-none-match")
    if inm and inm.strip() == stored.etag:
        return Response(status_code=304, headers=headers)
    if summary or elements:
        body = shape(stored.resource(), summary, elements.split(",") if elements else None)
        return fhir_response(body, 200, headers)
    return fhir_response(stored.content, 200, headers)


def parse_since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidInput("_since must be a FHIR instant") from None


def history_response(
    request: Request,
    api: Api,
    res_type: str | None,
    res_id: str | None,
) -> Response:
    params = request.query_params
    since = parse_since(params.get("_since"))
    before = (
        float(params["_before"]) if params.get("_before", "").replace(".", "").isdigit() else None
    )
    before = before if before is not None else time.time()
    count = int(params.get("_count", "50")) if params.get("_count", "50").isdigit() else 50
    count = min(count, 1000)
    offset = int(params.get("_offset", "0")) if params.get("_offset", "0").isdigit() else 0
    versions, total = api.store.history(
        res_type, res_id, since=since, before=before, count=count, offset=offset
    )
    base = api.base(request)
    path = "/".join(p for p in (res_type, res_id, "_history") if p)
    common = f"{base}/{path}?_count={count}&_before={before!r}"
    if since is not None:
        common += f"&_since={params['_since']}"
    links = {"self": f"{common}&_offset={offset}"}
    if offset + count < total:
        links["next"] = f"{common}&_offset={offset + count}"
    if offset > 0:
        links["previous"] = f"{common}&_offset={max(0, offset - count)}"
    body = bundle("history", [history_entry(v, base) for v in versions], total=total, links=links)
    return fhir_response(body)


def add_rest_routes(router: APIRouter, api: Api, rights_dep: Callable[..., Any]) -> None:

    @router.get("/{res_type}/{res_id}/_history/{vid}")
    def vread(
        request: Request, res_type: str, res_id: str, vid: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        api.require(rights, res_type, "r")
        if not vid.isdigit():
            raise InvalidInput("version id must be a number")
        stored = api.store.vread(res_type, res_id, int(vid))
        api.require_visible(rights, api.store.read(res_type, res_id))
        api.audited(rights, "R", "vread", [stored.location])
        return read_response(request, api, stored)

    @router.get("/{res_type}/{res_id}/_history")
    def instance_history(
        request: Request, res_type: str, res_id: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        api.require(rights, res_type, "r")
        if api.restriction(rights, res_type, "r") is not None:
            api.require_visible(rights, api.store.read(res_type, res_id))
        api.audited(rights, "R", "history-instance", [f"{res_type}/{res_id}"])
        return history_response(request, api, res_type, res_id)

    @router.get("/{res_type}/_history")
    def type_history(
        request: Request, res_type: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        api.require(rights, res_type, "r")
        if api.restriction(rights, res_type, "r") is not None:
            raise Forbidden("type history is not available under a query-restricted scope")
        api.audited(
            rights,
            "R",
            "history-type",
            [res_type],
            str(request.url.query) or None,
        )
        return history_response(request, api, res_type, None)

    @router.get("/_history")
    def system_history(request: Request, rights: Rights = Depends(rights_dep)) -> Response:
        if not all(
            api.allowed(rights, t, "r") and api.restriction(rights, t, "r") is None
            for t in api.store.resource_types
        ):
            raise Forbidden("system history needs read access to every resource type")
        api.audited(
            rights,
            "R",
            "history-system",
            [],
            str(request.url.query) or None,
        )
        return history_response(request, api, None, None)

    @router.get("/{res_type}/{res_id}")
    def read(
        request: Request, res_type: str, res_id: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        api.require(rights, res_type, "r")
        stored = api.store.read(res_type, res_id)
        api.require_visible(rights, stored)
        api.audited(rights, "R", "read", [f"{res_type}/{res_id}"])
        return read_response(request, api, stored)

    @router.post("/{res_type}")
    async def create(
        request: Request, res_type: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        api.require(rights, res_type, "c")
        body = await api.json_body(request)
        ine = request.headers.get("if-none-exist")
        if ine:
            api.require(rights, res_type, "s")
        with api.store.writing() as tx:
            result = tx.create(body, if_none_exist=ine, res_type=res_type)
        api.audited(rights, "C", "create", [result.stored.location])
        return write_response(api, request, result)

    @router.put("/{res_type}/{res_id}")
    async def update(
        request: Request, res_type: str, res_id: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        api.require(rights, res_type, "u")
        if not api.allowed(rights, res_type, "c"):
            try:  # update-as-create needs the create permission: check before writing
                api.store.read(res_type, res_id)
            except (NotFound, Gone):
                raise Forbidden(f"creating a {res_type} by update needs 'c' rights") from None
        body = await api.json_body(request)
        if_match = request.headers.get("if-match")
        with api.store.writing() as tx:
            result = tx.update(
                res_type, res_id, body, if_match=parse_etag(if_match) if if_match else None
            )
        api.audited(rights, "U", "update", [result.stored.location])
        return write_response(api, request, result)

    @router.put("/{res_type}")
    async def conditional_update(
        request: Request, res_type: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        for perm in ("u", "c", "s"):
            api.require(rights, res_type, perm)
        body = await api.json_body(request)
        with api.store.writing() as tx:
            result = tx.conditional_update(res_type, str(request.url.query), body)
        api.audited(
            rights,
            "U",
            "update",
            [result.stored.location],
            str(request.url.query),
        )
        return write_response(api, request, result)

    @router.patch("/{res_type}/{res_id}")
    async def patch(
        request: Request, res_type: str, res_id: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        api.require(rights, res_type, "u")
        ctype = request.headers.get("content-type", "")
        if "json-patch" not in ctype:
            raise InvalidInput("PATCH needs Content-Type application/json-patch+json")
        body = await api.json_body(request)
        if_match = request.headers.get("if-match")
        with api.store.writing() as tx:
            result = tx.patch(
                res_type, res_id, body, if_match=parse_etag(if_match) if if_match else None
            )
        api.audited(rights, "U", "patch", [result.stored.location])
        return write_response(api, request, result)

    @router.delete("/{res_type}/{res_id}")
    def delete(
        request: Request, res_type: str, res_id: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        api.require(rights, res_type, "d")
        with api.store.writing() as tx:
            result = tx.delete(res_type, res_id)
        api.audited(rights, "D", "delete", [f"{res_type}/{res_id}"])
        headers = {"ETag": result.stored.etag} if result else {}
        return Response(status_code=204, headers=headers)

    @router.delete("/{res_type}")
    def conditional_delete(
        request: Request, res_type: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        api.store.check_type(res_type)
        api.require(rights, res_type, "d")
        api.require(rights, res_type, "s")
        with api.store.writing() as tx:
            n = tx.conditional_delete(res_type, str(request.url.query))
        api.audited(
            rights,
            "D",
            "delete",
            [res_type],
            str(request.url.query),
        )
        return fhir_response(outcome("information", "informational", f"deleted {n}"), 200)
