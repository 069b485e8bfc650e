"""Keyset paging through chain and broad match sets: the same resources, each exactly once,
forwards and backwards. On PostgreSQL a page is chosen by a narrow inner query and a chain's
target ids are looked up first when few (``RESOLVE_LIMIT``; lowered here so that the
subquery path runs too); SQLite runs the flat queries. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from healthmesh.fhir.query import conditions
from healthmesh.fhir.query.engine import SearchResult
from healthmesh.fhir.store import FhirStore

N_PATIENTS = 12
OBS_PER_PATIENT = 4


def _patient(i: int) -> dict[str, Any]:
    family = "Koepp" if i % 3 else "Zieme"  # 8 of 12 are Koepp
    return {"resourceType": "Patient", "id": f"p{i:02d}", "name": [{"family": family}],
            "gender": "female" if i % 2 else "male"}


def _observation(i: int, j: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"o{i:02d}-{j}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
            "subject": {"reference": f"Patient/p{i:02d}"},
            # repeated dates, so that sorting on date alone has ties (broken by lid)
            "effectiveDateTime": f"2024-01-{1 + (i * 7 + j) % 5:02d}",
            "valueQuantity": {"value": float((i * 31 + j * 17) % 50)}}


@pytest.fixture
def loaded(store: FhirStore) -> FhirStore:
    with store.writing() as tx:
        for i in range(N_PATIENTS):
            tx.update("Patient", f"p{i:02d}", _patient(i))
        for i in range(N_PATIENTS):
            for j in range(OBS_PER_PATIENT):
                tx.update("Observation", f"o{i:02d}-{j}", _observation(i, j))
    return store


KOEPP_OBS = {f"o{i:02d}-{j}" for i in range(N_PATIENTS) if i % 3 for j in range(OBS_PER_PATIENT)}


def _search(store: FhirStore, pairs: list[tuple[str, str]]) -> SearchResult:
    return store.search_engine.search("Observation", pairs, strict=True)


def _walk(store: FhirStore, pairs: list[tuple[str, str]]) -> tuple[list[str], list[list[str]]]:
    """All pages forwards (ids in order, and each page), then checks the way back."""
    pages: list[list[str]] = []
    res = _search(store, pairs)
    assert res.prev_cursor is None
    pages.append([m.res_id for m in res.matches])
    while res.next_cursor:
        res = _search(store, [*pairs, ("_cursor", res.next_cursor)])
        pages.append([m.res_id for m in res.matches])
    back: list[list[str]] = [pages[-1]]
    while res.prev_cursor:
        res = _search(store, [*pairs, ("_cursor", res.prev_cursor)])
        back.append([m.res_id for m in res.matches])
    assert list(reversed(back)) == pages
    return [i for p in pages for i in p], pages


@pytest.mark.parametrize("limit", [conditions.RESOLVE_LIMIT, 3])
def test_chain_pages_every_match_once(
    loaded: FhirStore, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    # limit 3: more targets (8 Koepp patients) than the lookup takes, so the subquery stays
    monkeypatch.setattr(conditions, "RESOLVE_LIMIT", limit)
    pairs = [("subject:Patient.name", "koep"), ("_count", "5"), ("_total", "accurate")]
    order, pages = _walk(loaded, pairs)
    assert len(order) == len(set(order)) == len(KOEPP_OBS)
    assert set(order) == KOEPP_OBS
    assert [len(p) for p in pages] == [5, 5, 5, 5, 5, 5, 2]
    assert _search(loaded, pairs).total == len(KOEPP_OBS)


@pytest.mark.parametrize("limit", [conditions.RESOLVE_LIMIT, 1])
def test_chain_sorted_on_several_keys(
    loaded: FhirStore, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(conditions, "RESOLVE_LIMIT", limit)
    pairs = [("subject:Patient.name", "koep"), ("_sort", "-date,value-quantity,_id"),
             ("_count", "7")]
    order, _ = _walk(loaded, pairs)

    def key(res_id: str) -> tuple[Any, ...]:
        i, j = (int(x) for x in res_id[1:].split("-"))
        o = _observation(i, j)
        return (-int(o["effectiveDateTime"][-2:]), o["valueQuantity"]["value"], res_id)

    assert order == sorted(KOEPP_OBS, key=key)


def test_chain_with_no_target_and_nested_chain(loaded: FhirStore) -> None:
    assert _search(loaded, [("subject:Patient.name", "nobody")]).matches == []
    res = _search(loaded, [("subject:Patient.name", "nobody"), ("_total", "accurate")])
    assert res.total == 0 and res.next_cursor is None
    # a chain combined with another filter, and the same chain as a _has inner filter
    res = _search(loaded, [("subject:Patient.name", "koep"), ("subject:Patient.gender", "male"),
                           ("_count", "100")])
    male_koepp = {f"o{i:02d}-{j}" for i in range(N_PATIENTS) if i % 3 and i % 2 == 0
                  for j in range(OBS_PER_PATIENT)}
    assert {m.res_id for m in res.matches} == male_koepp
    res = loaded.search_engine.search(
        "Patient", [("_has:Observation:subject:subject.name", "zieme"), ("_count", "50")])
    assert {m.res_id for m in res.matches} == {f"p{i:02d}" for i in range(N_PATIENTS) if i % 3 == 0}


def test_broad_match_paged_with_includes_and_deletes(loaded: FhirStore) -> None:
    pairs = [("code", "http://loinc.org|8302-2"), ("_count", "10"),
             ("_include", "Observation:subject")]
    res = _search(loaded, pairs)
    assert [m.res_id for m in res.matches] == sorted(m.res_id for m in res.matches)
    assert {s.res_id for s in res.included} == {m.resource()["subject"]["reference"][8:]
                                                for m in res.matches}
    assert all(m.content for m in res.matches)
    with loaded.writing() as tx:
        tx.delete("Observation", "o01-0")
        tx.update("Observation", "o01-1", {**_observation(1, 1), "status": "amended"})
    order, _ = _walk(loaded, pairs)
    assert "o01-0" not in order and len(order) == len(set(order)) == N_PATIENTS * 4 - 1
    amended = _search(loaded, [("_id", "o01-1")]).matches
    assert amended[0].resource()["status"] == "amended" and amended[0].version == 2


def test_chain_only_live_resources_of_the_searched_type(
    loaded: FhirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with loaded.writing() as tx:
        # another type referencing a Koepp patient through its own subject parameter
        tx.update("Condition", "c1", {"resourceType": "Condition", "id": "c1",
                                      "subject": {"reference": "Patient/p01"},
                                      "code": {"text": "x"}})
        tx.delete("Observation", "o02-3")
        tx.delete("Patient", "p04")  # its Observations stay, but no longer match the chain
    expected = KOEPP_OBS - {"o02-3"} - {f"o04-{j}" for j in range(OBS_PER_PATIENT)}
    for limit in (conditions.RESOLVE_LIMIT, 1):
        monkeypatch.setattr(conditions, "RESOLVE_LIMIT", limit)
        res = _search(loaded, [("subject:Patient.name", "koep"), ("_count", "100"),
                               ("_total", "accurate")])
        assert {m.res_id for m in res.matches} == expected
        assert res.total == len(expected)
        assert all(m.res_type == "Observation" and not m.deleted for m in res.matches)
    res = loaded.search_engine.search("Condition", [("subject:Patient.name", "koep")])
    assert [m.res_id for m in res.matches] == ["c1"]
