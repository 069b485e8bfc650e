"""A small in-process federation with synthetic data at three nodes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from healthmesh.federation.inprocess import InProcessFederation, NodeSpec

from .data import resources

SIZES = {"hosp-a": 120, "hosp-b": 100, "clinic-c": 80}
KINDS = {"hosp-a": "hospital", "hosp-b": "hospital", "clinic-c": "clinic"}


@pytest.fixture
def node_resources() -> dict[str, list[dict[str, Any]]]:
    return {
        name: resources(name, n, seed)
        for seed, (name, n) in enumerate(SIZES.items())
    }


@pytest.fixture
def fed(node_resources: dict[str, list[dict[str, Any]]]) -> Iterator[InProcessFederation]:
    specs = [NodeSpec(n, KINDS[n]) for n in SIZES]  # type: ignore[arg-type]
    with InProcessFederation(specs, job_timeout=20) as federation:
        for name, res in node_resources.items():
            federation.load(name, res)
        yield federation
