"""Who refused research use of their data: the patients never counted in any cohort.

Rule (normative; the node's SQL implementation must agree, checked by the shared contract
suite):

- Only ``Consent`` resources with ``status`` ``active`` whose ``scope`` has the coding
  ``http://terminology.hl7.org/CodeSystem/consentscope|research`` and whose top-level
  ``provision.type`` is ``deny`` or ``permit`` count; the patient is ``patient.reference``
  (``Patient/<id>``). Other scopes (treatment, patient-privacy), other statuses (draft,
  proposed, rejected, inactive, entered-in-error), nested provisions and provision periods are
  not read.
- The latest research consent by ``dateTime`` decides. A patient is refused when some deny has
  no permit strictly later than it. So: a permit dated after every deny re-includes; on equal
  dateTimes deny wins; an undated deny cannot be overridden; an undated permit overrides
  nothing. Patients without research consents take part (opt-out model).

Pure: a function of the Consent resources only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from healthmesh.analytics.resource_fields import Resource, parse_instant, patient_id

RESEARCH_SCOPE = ("http://terminology.hl7.org/CodeSystem/consentscope", "research")


def _is_research(consent: Resource) -> bool:
    scope = consent.get("scope")
    if not isinstance(scope, dict):
        return False
    return any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) == RESEARCH_SCOPE
        for c in scope.get("coding") or []
    )


def research_decision(consent: Resource) -> str | None:
    """``"deny"`` or ``"permit"`` for an active research Consent, else None (not counted)."""
    if consent.get("resourceType") != "Consent" or consent.get("status") != "active":
        return None
    if not _is_research(consent):
        return None
    provision = consent.get("provision")
    kind = provision.get("type") if isinstance(provision, dict) else None
    return kind if kind in ("deny", "permit") else None


def refused_research(resources: Iterable[Resource]) -> frozenset[str]:
    """Ids of patients whose research consents leave them refused (see the module rule).

    Example::

        >>> deny = {"resourceType": "Consent", "status": "active",
        ...         "scope": {"coding": [{"system": RESEARCH_SCOPE[0], "code": "research"}]},
        ...         "patient": {"reference": "Patient/p1"}, "dateTime": "2024-01-01",
        ...         "provision": {"type": "deny"}}
        >>> sorted(refused_research([deny]))
        ['p1']
    """
    latest_deny: dict[str, dt.datetime | None] = {}
    latest_permit: dict[str, dt.datetime] = {}
    undated_deny: set[str] = set()
    for res in resources:
        decision = research_decision(res)
        pid = patient_id(res) if decision else None
        if pid is None:
            continue
        when = parse_instant(res.get("dateTime") if isinstance(res.get("dateTime"), str) else None)
        if decision == "deny":
            if when is None:
                undated_deny.add(pid)
            prev = latest_deny.get(pid)
            if when is not None and (prev is None or when > prev):
                latest_deny[pid] = when
            else:
                latest_deny.setdefault(pid, None)
        elif when is not None:
            prev_p = latest_permit.get(pid)
            if prev_p is None or when > prev_p:
                latest_permit[pid] = when
    refused: set[str] = set(undated_deny)
    for pid, deny_at in latest_deny.items():
        permit_at = latest_permit.get(pid)
        if deny_at is None or permit_at is None or permit_at <= deny_at:
            refused.add(pid)
    return frozenset(refused)
