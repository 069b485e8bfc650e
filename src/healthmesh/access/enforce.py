"""Small helpers the FHIR layer calls to enforce scopes and to advertise its security.

Pure: no web framework, no database. The store applies :meth:`ScopeSet.restrictions` to its
queries itself; these helpers cover the yes/no decisions and the CapabilityStatement block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from healthmesh.access.context import AccessContext
from healthmesh.access.scopes import permission_for
from healthmesh.access.tokens import InsufficientScope

__all__ = ["capability_security", "require", "restricted_searches", "visible_types"]

_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def require(ctx: AccessContext, resource_type: str, interaction: str) -> None:
    """Raise :class:`InsufficientScope` (403) unless ``ctx`` may do ``interaction`` on
    ``resource_type`` (possibly only under restrictions the store must still apply).

    When only patient/ scopes grant it, the token must carry a launch patient; the store then
    limits results to that patient's compartment (``ctx.scopes.compartment(...)``).

    >>> from healthmesh.access.scopes import ScopeSet
    >>> ctx = AccessContext("c", ScopeSet.parse("system/Patient.rs"), "t")
    >>> require(ctx, "Patient", "read")
    >>> require(ctx, "Patient", "delete")
    Traceback (most recent call last):
    ...
    healthmesh.access.tokens.InsufficientScope: the token's scopes do not allow d on Patient
    """
    if not ctx.scopes.allows(resource_type, interaction):
        letter = permission_for(interaction)
        raise InsufficientScope(f"the token's scopes do not allow {letter} on {resource_type}")
    if ctx.scopes.compartment(resource_type, interaction) == "Patient" and ctx.patient is None:
        raise InsufficientScope("patient/ scopes need a patient launch context")


def restricted_searches(
    ctx: AccessContext,
    resource_type: str,
    interaction: str,
    params: Sequence[tuple[str, str]] = (),
) -> list[list[tuple[str, str]]]:
    """The searches whose union is what ``ctx`` may see of ``params`` on ``resource_type``.

    Unrestricted grant: ``[params]``. Not allowed: ``[]``. Query-restricted scopes: one
    search per restriction map, each ``params`` plus that map's parameters (FHIR ANDs
    repeated parameters, so a restriction can only narrow the request). To check a single
    resource for ``read``, pass ``[("_id", id)]`` and see whether any search finds it.

    >>> from healthmesh.access.scopes import ScopeSet
    >>> ctx = AccessContext("c", ScopeSet.parse("system/Observation.rs?category=laboratory"), "t")
    >>> restricted_searches(ctx, "Observation", "search-type", [("code", "8480-6")])
    [[('code', '8480-6'), ('category', 'laboratory')]]
    >>> restricted_searches(ctx, "Condition", "search-type", [])
    []
    """
    restrictions = ctx.scopes.restrictions(resource_type, interaction)
    if restrictions is None:
        return [list(params)]
    return [list(params) + sorted(r.items()) for r in restrictions]


def visible_types(ctx: AccessContext, interaction: str, all_types: Iterable[str]) -> frozenset[str]:
    """Resource types ``ctx`` may see through ``interaction``: use it to filter ``_include``,
    ``_revinclude``, ``$everything``, history and export output, not only the primary type."""
    return ctx.scopes.types_for(interaction, all_types)


def capability_security(token_url: str) -> dict[str, Any]:
    """The ``CapabilityStatement.rest[0].security`` element for a SMART-protected server."""
    return {
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
        "description": "OAuth2 bearer tokens (SMART Backend Services, SMART v2 scopes).",
        "extension": [{"url": _OAUTH_URIS, "extension": [{"url": "token", "valueUri": token_url}]}],
    }
