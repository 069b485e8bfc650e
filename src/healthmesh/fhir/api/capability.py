"""The CapabilityStatement: generated from what the server really registers and supports."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from healthmesh import __version__
from healthmesh.fhir.api.context import Api

INTERACTIONS = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
SEARCH_DOC = {
    "_id": "token",
    "_lastUpdated": "date",
}


def capability_statement(api: Api, request: Request, *, token_url: str) -> dict[str, Any]:
    base = api.base(request)
    registry = api.store.registry
    resources = []
    for rtype in sorted(api.store.resource_types):
        params = registry.for_type(rtype)
        search = [
            {"name": code, "type": sp.type, "definition": sp.url}
            for code, sp in sorted(params.items())
            if sp.type != "special"
        ]
        refs = sorted(code for code, sp in params.items() if sp.type == "reference")
        res: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": c} for c in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchInclude": [f"{rtype}:{r}" for r in refs] + ["*"],
            "searchRevInclude": [],
            "searchParam": search,
        }
        if rtype == "Patient":
            res["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                },
            ]
        resources.append(res)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-28",
        "kind": "instance",
        "software": {"name": "healthmesh", "version": __version__},
        "implementation": {"description": "healthmesh institution node", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "patchFormat": ["application/json-patch+json"],
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": token_url}],
                        }
                    ],
                    "description": "SMART Backend Services (private_key_jwt RS384/ES384) or "
                    "client_secret_basic; SMART v2 scopes enforced on every interaction",
                },
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                    {"code": "search-system"},
                ],
                "searchParam": [
                    {"name": "_id", "type": "token"},
                    {"name": "_lastUpdated", "type": "date"},
                ],
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                    },
                    {
                        "name": "validate",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                    },
                ],
            }
        ],
    }
