"""The NodeData contract suite on ResourceData (the normative in-memory implementation)."""

from __future__ import annotations

from typing import Any

import pytest

from healthmesh.analytics.memory_data import ResourceData

from .data_contract import Make, NodeDataContract


class TestResourceDataContract(NodeDataContract):
    @pytest.fixture
    def make(self) -> Make:
        def build(resources: list[dict[str, Any]]) -> ResourceData:
            return ResourceData(resources)

        return build


def test_resources_without_id_or_type_are_ignored() -> None:
    data = ResourceData([{"resourceType": "Patient"}, {"id": "x"}, {"resourceType": "Patient", "id": "a"}])
    from healthmesh.analytics.cohort import Cohort

    assert data.members(Cohort()) == {"a"}
