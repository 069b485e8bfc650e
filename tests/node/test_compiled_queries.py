"""Compiled cohort queries (node/analytics/compiled.py): compiled once per query and pid map,
shared across stores, and always answering from the store's current data."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.fhir.store import FhirStore
from healthmesh.node.analytics import SqlNodeData
from healthmesh.node.analytics.compiled import CompiledCache

from ..hub.data import COHORT, VARIABLES, resources
from .test_sql_node_data import load

VARS: list[Variable] = TypeAdapter(list[Variable]).validate_python(VARIABLES[:3])


def _node(tmp_path: Any, name: str, n: int, seed: int, cache: CompiledCache) -> SqlNodeData:
    store = FhirStore(str(tmp_path / f"{name}.sqlite"))
    load(store, resources(name, n, seed))
    data = SqlNodeData(store)
    data.compiled = cache
    return data


def _plain(store: FhirStore) -> SqlNodeData:
    data = SqlNodeData(store)
    data.compiled = CompiledCache(size=0)  # nothing kept: every query built afresh
    return data


def test_shared_across_stores_and_equal_to_uncached(tmp_path: Any) -> None:
    cache = CompiledCache()
    a = _node(tmp_path, "a", 30, 1, cache)
    b = _node(tmp_path, "b", 20, 2, cache)
    cohort = Cohort.model_validate(COHORT)
    for data in (a, b, a, b):
        assert data.members(cohort) == _plain(data.store).members(cohort)
        assert data.count(cohort) == _plain(data.store).count(cohort)
        names, x = data.matrix(cohort, VARS)
        names0, x0 = _plain(data.store).matrix(cohort, VARS)
        assert names == names0 and x.tolist() == x0.tolist()
    # three queries, each compiled once for both stores; everything else a hit
    assert cache.misses == 3
    assert cache.hits == 9
    a.store.close()
    b.store.close()


def test_answers_follow_writes(tmp_path: Any) -> None:
    cache = CompiledCache()
    a = _node(tmp_path, "a", 10, 3, cache)
    cohort = Cohort.model_validate(COHORT)
    before = a.count(cohort)
    load(a.store, resources("new", 6, 4, refusals=0))
    after = a.count(cohort)
    assert after > before
    assert after == _plain(a.store).count(cohort)
    assert a.members(cohort) == _plain(a.store).members(cohort)
    a.store.close()


@pytest.mark.parametrize("size", [1, 2])
def test_bounded(tmp_path: Any, size: int) -> None:
    cache = CompiledCache(size=size)
    a = _node(tmp_path, "a", 8, 5, cache)
    for low in (30, 40, 50):
        cohort = Cohort.model_validate({"include": [{"kind": "age", "min": low}]})
        assert a.count(cohort) == _plain(a.store).count(cohort)
    assert len(cache._items) == size
    a.store.close()
