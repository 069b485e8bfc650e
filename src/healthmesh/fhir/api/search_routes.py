"""Search (GET and POST ``_search``), ``Patient/$everything`` and ``$validate``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from healthmesh.errors import Forbidden, InvalidInput
from healthmesh.fhir.api.context import Api, Rights
from healthmesh.fhir.api.responses import bundle, fhir_response, outcome, outcome_many, shape
from healthmesh.fhir.query.engine import SearchResult
from healthmesh.fhir.store.records import Stored


def _strict(request: Request) -> bool:
    return "handling=strict" in request.headers.get("prefer", "").replace(" ", "")


def search_bundle(
    api: Api,
    request: Request,
    path: str,
    pairs: list[tuple[str, str]],
    result: SearchResult,
) -> dict[str, Any]:
    base = api.base(request)
    q = result.query
    entries: list[dict[str, Any]] = []

    def entry(s: Stored, mode: str) -> dict[str, Any]:
        return {
            "fullUrl": f"{base}/{s.res_type}/{s.res_id}",
            "resource": shape(s.resource(), q.summary, q.elements),
            "search": {"mode": mode},
        }

    entries.extend(entry(s, "match") for s in result.matches)
    entries.extend(entry(s, "include") for s in result.included)
    if result.warnings:
        oo = outcome_many(("warning", "not-supported", w, None) for w in result.warnings)
        entries.append({"resource": oo, "search": {"mode": "outcome"}})
    kept = [(k, v) for k, v in pairs if k != "_cursor"]
    url = f"{base}/{path}"
    links = {"self": f"{url}?{urlencode(pairs)}" if pairs else url}
    if result.next_cursor:
        links["next"] = f"{url}?{urlencode([*kept, ('_cursor', result.next_cursor)])}"
    if result.prev_cursor:
        links["previous"] = f"{url}?{urlencode([*kept, ('_cursor', result.prev_cursor)])}"
    return bundle("searchset", entries, total=result.total, links=links)


def run_search(
    api: Api,
    request: Request,
    rights: Rights,
    res_type: str | None,
    pairs: list[tuple[str, str]],
) -> Response:
    if res_type is not None:
        api.store.check_type(res_type)
        api.require(rights, res_type, "s")
        types = None
    else:
        type_param = [v for k, v in pairs if k == "_type"]
        pairs = [(k, v) for k, v in pairs if k != "_type"]
        wanted = [t for v in type_param for t in v.split(",") if t] or sorted(
            api.store.resource_types
        )
        types = [t for t in wanted if api.allowed(rights, t, "s")]
        if not types:
            raise Forbidden("the token's scopes allow searching none of these types")
    extra = []
    if res_type is not None:
        restricted = api.restriction(rights, res_type, "s")
        if restricted is not None:
            extra.append(restricted)  # a query-restricted scope is ANDed into the search

    def can_search(t: str) -> bool:
        # chains and _has may only reach types the token searches without restriction
        return api.allowed(rights, t, "s") and api.restriction(rights, t, "s") is None

    result = api.store.search_engine.search(
        res_type,
        pairs,
        strict=_strict(request),
        base_url=api.base(request),
        can_search=can_search,
        types=types,
        extra=extra,
        # includes may reach restricted types: they are filtered by ``visible`` below
        can_include=lambda t: api.allowed(rights, t, "r"),
    )
    if res_type is None:
        result.matches = api.visible(rights, result.matches, "s")
    # included resources the token may not read never leave the server
    result.included = api.visible(rights, result.included, "r")
    entities = [f"{s.res_type}/{s.res_id}" for s in (*result.matches, *result.included)]
    api.audited(
        rights,
        "E",
        "search-type" if res_type else "search-system",
        entities,
        urlencode(pairs),
    )
    path = res_type or ""
    return fhir_response(search_bundle(api, request, path, pairs, result))


def add_search_routes(router: APIRouter, api: Api, rights_dep: Callable[..., Any]) -> None:

    @router.get("/{res_type}")
    def search_get(
        request: Request, res_type: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        pairs = parse_qsl(str(request.url.query), keep_blank_values=True)
        return run_search(api, request, rights, res_type, pairs)

    @router.post("/{res_type}/_search")
    async def search_post(
        request: Request, res_type: str, rights: Rights = Depends(rights_dep)
    ) -> Response:
        ctype = request.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" not in ctype:
            raise InvalidInput("POST _search needs application/x-www-form-urlencoded")
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs = parse_qsl(str(request.url.query), keep_blank_values=True)
        pairs += parse_qsl(body, keep_blank_values=True)
        return run_search(api, request, rights, res_type, pairs)

    @router.post("/{res_type}/$validate")
    @router.post("/{res_type}/{res_id}/$validate")
    async def validate(
        request: Request,
        res_type: str,
        rights: Rights = Depends(rights_dep),
        res_id: str | None = None,
    ) -> Response:
        api.store.check_type(res_type)
        if not (api.allowed(rights, res_type, "c") or api.allowed(rights, res_type, "u")):
            raise Forbidden(f"$validate needs create or update rights on {res_type}")
        body = await api.json_body(request)
        if isinstance(body, dict) and body.get("resourceType") == "Parameters":
            found = [
                p.get("resource") for p in body.get("parameter", []) if p.get("name") == "resource"
            ]
            body = found[0] if found else None
        if not isinstance(body, dict) or body.get("resourceType") != res_type:
            raise InvalidInput(f"$validate needs a {res_type} resource")
        from healthmesh.fhir.validation import validate as validate_resource

        issues = validate_resource(body)
        if not issues:
            return fhir_response(outcome("information", "informational", "the resource is valid"))
        oo = outcome_many((i.severity, i.code, i.message, i.location) for i in issues)
        errors = any(i.severity == "error" for i in issues)
        return fhir_response(oo, 422 if errors else 200)

    @router.get("/Patient/{res_id}/$everything")
    def everything(request: Request, res_id: str, rights: Rights = Depends(rights_dep)) -> Response:
        api.require(rights, "Patient", "r")
        patient = api.store.read("Patient", res_id)
        registry = api.store.registry
        found: list[Stored] = [patient]
        params = request.query_params
        pairs: list[tuple[str, str]] = []
        if "_since" in params:
            pairs.append(("_lastUpdated", f"ge{params['_since']}"))
        wanted = set(params.get("_type", "").split(",")) - {""}
        for rtype in registry.compartment_types("Patient"):
            if rtype == "Patient" or (wanted and rtype not in wanted):
                continue
            if not api.allowed(rights, rtype, "r"):
                continue  # a type outside the token's scopes never leaks
            for code in registry.compartment_params("Patient", rtype):
                if registry.get(rtype, code) is None:
                    continue
                cursor: str | None = None
                while True:
                    page = [*pairs, (code, f"Patient/{res_id}"), ("_count", "1000")]
                    if cursor:
                        page.append(("_cursor", cursor))
                    res = api.store.search_engine.search(rtype, page)
                    found.extend(res.matches)
                    cursor = res.next_cursor
                    if not cursor:
                        break
        unique = api.visible(rights, list({s.lid: s for s in found}.values()), "r")
        base = api.base(request)
        entries = [
            {
                "fullUrl": f"{base}/{s.res_type}/{s.res_id}",
                "resource": s.resource(),
                "search": {"mode": "match"},
            }
            for s in unique
        ]
        api.audited(rights, "E", "operation", [f"Patient/{res_id}"])
        return fhir_response(bundle("searchset", entries, total=len(entries)))
