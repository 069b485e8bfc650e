"""The hub's stores on PostgreSQL: a study submitted, decided and computed end to end with the
hub's registry, queue, studies, results, catalog and ledger in PostgreSQL."""

from __future__ import annotations

import pytest

from healthmesh.federation.inprocess import InProcessFederation

from .data import resources, study

pytestmark = pytest.mark.postgres


def test_hub_on_postgres(pg_url: str) -> None:
    with InProcessFederation(["hosp-a", "hosp-b"], hub_db=pg_url) as fed:
        fed.load("hosp-a", resources("hosp-a", 60, 1))
        fed.load("hosp-b", resources("hosp-b", 60, 2))
        st = fed.submit(study(fed.names))
        assert fed.hub.engine.dialect.name == "postgresql"
        rec = fed.run(st.study_id, "n")
        assert rec.status == "done" and rec.result is not None
        assert rec.result["n"] == sum(rec.result["by_node"].values())
        again = fed.hub.studies.get(st.study_id)
        assert {d.state for d in again.decisions.values()} == {"approved"}
        assert [r.job_id for r in fed.results(st.study_id)] == [rec.job_id]
        assert set(fed.hub.catalog.entries()) == {"hosp-a", "hosp-b"}
        assert fed.hub.ledger.service.log.size() >= 5
