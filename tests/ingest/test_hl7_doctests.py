"""The examples in the ingest modules' docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "healthmesh.ingest.cn_identity",
    "healthmesh.ingest.registry",
    "healthmesh.ingest.pipeline",
    "healthmesh.ingest.quarantine",
    "healthmesh.ingest.mllp",
    "healthmesh.ingest.hl7v2.access",
    "healthmesh.ingest.hl7v2.adapter",
    "healthmesh.ingest.hl7v2.datatypes",
    "healthmesh.ingest.hl7v2.decode",
    "healthmesh.ingest.hl7v2.vocab",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
