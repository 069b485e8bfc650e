"""Who refused research use: the consent rule, case by case."""

from __future__ import annotations

import pytest

from healthmesh.analytics.consent import refused_research, research_decision

from .contract_resources import RESOURCES, consent


def test_fixture_set() -> None:
    assert refused_research(r for r in RESOURCES if r["resourceType"] == "Consent") == {"p06", "p08", "p13"}


@pytest.mark.parametrize(
    ("consents", "refused"),
    [
        ([("deny", "2020-01-01")], True),
        ([("permit", "2020-01-01")], False),
        ([("deny", "2020-01-01"), ("permit", "2020-01-02")], False),  # later permit re-includes
        ([("permit", "2020-01-02"), ("deny", "2020-01-01")], False),  # order of resources irrelevant
        ([("deny", "2020-01-01"), ("permit", "2020-01-02"), ("deny", "2020-01-03")], True),
        ([("deny", "2020-01-01T10:00:00Z"), ("permit", "2020-01-01T18:00:00+08:00")], True),  # same instant
        ([("deny", "2020-01-01T10:00:00Z"), ("permit", "2020-01-01T18:00:01+08:00")], False),
        ([("deny", None), ("permit", "2030-01-01")], True),  # undated deny stands
        ([("permit", None), ("deny", "2020-01-01")], True),
        ([("deny", "2020-01-01"), ("permit", None)], True),  # undated permit overrides nothing
        ([("deny", "2020"), ("permit", "2020-01-01T00:00:01Z")], False),  # partial date = first day
    ],
)
def test_latest_decides(consents: list[tuple[str, str | None]], refused: bool) -> None:
    resources = [consent(f"k{i}", "p1", kind, when) for i, (kind, when) in enumerate(consents)]
    assert refused_research(resources) == ({"p1"} if refused else set())


@pytest.mark.parametrize(
    "resource",
    [
        consent("k", "p1", "deny", "2020-01-01", scope="treatment"),
        consent("k", "p1", "deny", "2020-01-01", scope="patient-privacy"),
        consent("k", "p1", "deny", "2020-01-01", status="inactive"),
        consent("k", "p1", "deny", "2020-01-01", status="entered-in-error"),
        consent("k", "p1", "deny", "2020-01-01", status="draft"),
        {**consent("k", "p1", "deny", "2020-01-01"), "provision": {}},
        {**consent("k", "p1", "deny", "2020-01-01"), "scope": {"text": "research"}},
        {**consent("k", "p1", "deny", "2020-01-01"), "resourceType": "Contract"},
    ],
)
def test_what_does_not_count(resource: dict) -> None:
    assert research_decision(resource) is None
    assert refused_research([resource]) == set()


def test_only_patient_references_count() -> None:
    for ref in ("Group/p1", "https://example.org/fhir/Patient/p1", "Patient/"):
        resource = {**consent("k", "p1", "deny", "2020-01-01"), "patient": {"reference": ref}}
        assert refused_research([resource]) == set()


def test_patients_are_independent() -> None:
    resources = [consent("a", "p1", "deny", "2020-01-01"), consent("b", "p2", "permit", "2021-01-01")]
    assert refused_research(resources) == {"p1"}
