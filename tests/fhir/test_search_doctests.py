"""The examples in the docstrings of healthmesh.fhir.search run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "healthmesh.fhir.search",
    "healthmesh.fhir.search.coerce",
    "healthmesh.fhir.search.compiler",
    "healthmesh.fhir.search.extract",
    "healthmesh.fhir.search.fhirpath",
    "healthmesh.fhir.search.model",
    "healthmesh.fhir.search.operations",
    "healthmesh.fhir.search.values",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0 or name.endswith(".operations")
