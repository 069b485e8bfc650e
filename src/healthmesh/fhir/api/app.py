"""The FHIR REST router and the one translator from errors to OperationOutcomes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from healthmesh.errors import Forbidden, HealthmeshError
from healthmesh.fhir.api.bulk_routes import add_bulk_routes
from healthmesh.fhir.api.capability import capability_statement
from healthmesh.fhir.api.context import Api, Rights
from healthmesh.fhir.api.responses import error_outcome, fhir_response, outcome
from healthmesh.fhir.api.rest import add_rest_routes
from healthmesh.fhir.api.search_routes import add_search_routes, run_search
from healthmesh.fhir.bundles import BundleProcessor

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as an OperationOutcome with the right status, never with patient data."""

    @app.exception_handler(HealthmeshError)
    async def _domain(_request: Request, exc: HealthmeshError) -> Response:
        headers: dict[str, str] = {}
        www = getattr(exc, "www_authenticate", None)
        if callable(www):
            headers["WWW-Authenticate"] = str(www())
        elif exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="healthmesh"'
        return fhir_response(error_outcome(exc), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        where = ".".join(str(p) for p in exc.errors()[0].get("loc", ())) if exc.errors() else ""
        return fhir_response(outcome("error", "invalid", f"invalid request ({where})"), 400)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        msg = {404: "no such endpoint", 405: "method not allowed"}.get(
            exc.status_code, "request refused"
        )
        return fhir_response(outcome("error", code, msg), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # type and route only: messages of arbitrary exceptions may carry data
        log.error(
            "internal error %s on %s %s", type(exc).__name__, request.method, request.url.path
        )
        return fhir_response(outcome("fatal", "exception", "internal server error"), 500)


def create_fhir_router(api: Api, rights_dep: Callable[..., Any], *, token_url: str) -> APIRouter:
    router = APIRouter()

    @router.get("/metadata")
    def metadata(request: Request) -> Response:
        return fhir_response(capability_statement(api, request, token_url=token_url))

    @router.get("/")
    def system_search(request: Request, rights: Rights = Depends(rights_dep)) -> Response:
        from urllib.parse import parse_qsl

        pairs = parse_qsl(str(request.url.query), keep_blank_values=True)
        return run_search(api, request, rights, None, pairs)

    @router.post("/")
    async def batch(request: Request, rights: Rights = Depends(rights_dep)) -> Response:
        body = await api.json_body(request)

        def authorize(res_type: str, interaction: str) -> None:
            api.require(rights, res_type, interaction)

        def get(url: str) -> dict[str, Any]:
            path, _, query = url.partition("?")
            parts = [p for p in path.split("/") if p]
            if len(parts) == 2:
                api.require(rights, parts[0], "r")
                stored = api.store.read(parts[0], parts[1])
                api.require_visible(rights, stored)
                return stored.resource()
            if len(parts) == 1:
                from urllib.parse import parse_qsl

                from healthmesh.fhir.api.search_routes import search_bundle

                api.require(rights, parts[0], "s")
                pairs = parse_qsl(query, keep_blank_values=True)
                restricted = api.restriction(rights, parts[0], "s")
                res = api.store.search_engine.search(
                    parts[0],
                    pairs,
                    base_url=api.base(request),
                    extra=[restricted] if restricted is not None else None,
                    can_search=lambda t: (
                        api.allowed(rights, t, "s") and api.restriction(rights, t, "s") is None
                    ),
                )
                res.included = api.visible(rights, res.included, "r")
                return search_bundle(api, request, parts[0], pairs, res)
            raise Forbidden("this GET is not supported inside a bundle")

        processor = BundleProcessor(api.store, authorize, get)
        response, written = processor.process(body)
        api.audited(
            rights,
            "E",
            "transaction" if body.get("type") == "transaction" else "batch",
            [s.location for s in written][:1000],
        )
        return fhir_response(response)

    add_bulk_routes(router, api, rights_dep)
    add_rest_routes(router, api, rights_dep)  # before search: /_history beats /{type}
    add_search_routes(router, api, rights_dep)
    return router
