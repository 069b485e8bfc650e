"""The examples in the docstrings of the region, CSV, DICOM, terminology and quality modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "healthmesh.synth.region",
    "healthmesh.synth.region.config",
    "healthmesh.synth.region.hl7out",
    "healthmesh.synth.region.xlsx",
    "healthmesh.synth.region.region",
    "healthmesh.ingest.csv.adapter",
    "healthmesh.ingest.csv.mapping",
    "healthmesh.ingest.dicom.adapter",
    "healthmesh.ingest.terminology.codes",
    "healthmesh.ingest.terminology.translate",
    "healthmesh.ingest.quality.assess",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
