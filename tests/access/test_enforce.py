"""Enforcement helpers: yes/no scope decisions, visible types, CapabilityStatement security."""

from __future__ import annotations

import pytest
from fhirclient.models.capabilitystatement import CapabilityStatementRestSecurity

from healthmesh.access import (
    AccessContext,
    InsufficientScope,
    ScopeSet,
    capability_security,
    require,
    restricted_searches,
    visible_types,
)

CTX = AccessContext("c", ScopeSet.parse("system/Patient.rs system/Observation.s?category=lab"), "t")


def test_require() -> None:
    require(CTX, "Patient", "read")
    require(CTX, "Observation", "search-type")  # allowed, restricted: the store filters
    for rtype, interaction in [("Observation", "read"), ("Patient", "create"), ("Group", "s")]:
        with pytest.raises(InsufficientScope) as info:
            require(CTX, rtype, interaction)
        assert info.value.status == 403
        assert "insufficient_scope" in info.value.www_authenticate()


def test_restricted_searches() -> None:
    ctx = AccessContext(
        "c",
        ScopeSet.parse(
            "system/Patient.rs system/Observation.s?category=laboratory "
            "system/Observation.s?category=vital-signs&status=final"
        ),
        "t",
    )
    assert restricted_searches(ctx, "Patient", "s", [("name", "x")]) == [[("name", "x")]]
    assert restricted_searches(ctx, "Observation", "search-type", [("code", "1")]) == [
        [("code", "1"), ("category", "laboratory")],
        [("code", "1"), ("category", "vital-signs"), ("status", "final")],
    ]
    assert restricted_searches(ctx, "Observation", "read", [("_id", "9")]) == []
    assert restricted_searches(ctx, "Condition", "s") == []


def test_patient_scopes_need_a_launch_patient() -> None:
    scopes = ScopeSet.parse("patient/Observation.rs")
    with pytest.raises(InsufficientScope, match="launch context"):
        require(AccessContext("c", scopes, "t"), "Observation", "s")
    require(AccessContext("c", scopes, "t", patient="123"), "Observation", "s")


def test_visible_types_for_includes_and_export() -> None:
    everything = ["Patient", "Observation", "Condition", "Encounter"]
    assert visible_types(CTX, "s", everything) == {"Patient", "Observation"}
    assert visible_types(CTX, "read", everything) == {"Patient"}


def test_capability_security_is_valid_r4() -> None:
    block = capability_security("https://node.example/auth/token")
    CapabilityStatementRestSecurity(block, strict=True)
    assert block["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert block["extension"][0]["extension"][0]["valueUri"] == "https://node.example/auth/token"
