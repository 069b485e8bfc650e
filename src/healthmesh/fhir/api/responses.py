"""FHIR JSON responses: resources with ETag/Last-Modified, OperationOutcomes, Bundles, and the
``_summary`` / ``_elements`` views."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.responses import Response

from healthmesh.errors import HealthmeshError
from healthmesh.fhir.api.summary import summary_view
from healthmesh.fhir.store.records import Stored, http_date, instant

FHIR_JSON = "application/fhir+json; charset=utf-8"


def fhir_response(
    body: Mapping[str, Any] | bytes | None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    content = b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, headers=dict(headers or {}), media_type=FHIR_JSON)


def resource_headers(stored: Stored, base: str) -> dict[str, str]:
    return {
        "ETag": stored.etag,
        "Last-Modified": http_date(stored.last_updated),
        "Location": f"{base}/{stored.location}",
    }


def outcome(severity: str, code: str, message: str, location: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if location:
        issue["expression"] = [location]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_many(issues: Iterable[tuple[str, str, str, str | None]]) -> dict[str, Any]:
    out = []
    for severity, code, message, location in issues:
        issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
        if location:
            issue["expression"] = [location]
        out.append(issue)
    return {"resourceType": "OperationOutcome", "issue": out}


def error_outcome(exc: HealthmeshError) -> dict[str, Any]:
    issues = getattr(exc, "issues", None)
    if issues:
        return outcome_many((i.severity, i.code, i.message, i.location) for i in issues)
    return outcome("error", exc.code, exc.message, exc.location)


def shape(
    resource: dict[str, Any], summary: str | None, elements: list[str] | None
) -> dict[str, Any]:
    """Apply ``_summary`` / ``_elements`` to a resource, marking it SUBSETTED when reduced."""
    if elements:
        keep = {"resourceType", "id", "meta", *(e.split(".", 1)[0] for e in elements)}
        out = {k: v for k, v in resource.items() if k in keep}
        return _subsetted(out)
    if summary in (None, "false"):
        return resource
    if summary == "data":
        return _subsetted({k: v for k, v in resource.items() if k != "text"})
    if summary == "text":
        keep = {"resourceType", "id", "meta", "text"}
        return _subsetted({k: v for k, v in resource.items() if k in keep})
    if summary == "true":
        return _subsetted(summary_view(resource))
    return resource


def _subsetted(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = list(meta.get("tag") or [])
    tag = {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
    }
    if tag not in tags:
        tags.append(tag)
    meta["tag"] = tags
    resource["meta"] = meta
    return resource


def bundle(
    kind: str,
    entries: list[dict[str, Any]],
    *,
    total: int | None = None,
    links: Mapping[str, str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    if now is not None:
        out["meta"] = {"lastUpdated": instant(now)}
    if total is not None:
        out["total"] = total
    if links:
        out["link"] = [{"relation": rel, "url": url} for rel, url in links.items()]
    if entries:
        out["entry"] = entries
    return out


def history_entry(stored: Stored, base: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"{base}/{stored.res_type}/{stored.res_id}"}
    if not stored.deleted:
        entry["resource"] = stored.resource()
    method = stored.method if stored.method in ("POST", "PUT", "DELETE") else "PUT"
    url = stored.res_type if method == "POST" else f"{stored.res_type}/{stored.res_id}"
    entry["request"] = {"method": method, "url": url}
    entry["response"] = {
        "status": "410 Gone"
        if stored.deleted
        else ("201 Created" if stored.version == 1 else "200 OK"),
        "etag": stored.etag,
        "lastModified": instant(stored.last_updated),
    }
    return entry
