"""SqlNodeData against the shared NodeData contract suite, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest

from healthmesh.fhir.store import FhirStore
from healthmesh.node.analytics import SqlNodeData

from ..analytics.data_contract import Make, MakeDeleted, NodeDataContract


def load(store: FhirStore, resources: list[dict[str, Any]], deleted: Sequence[str] = ()) -> None:
    """Write resources in order (PUT: a later version replaces), then delete ``deleted``."""
    with store.writing() as tx:
        for res in resources:
            tx.update(res["resourceType"], res["id"], copy.deepcopy(res))
    if deleted:
        with store.writing() as tx:
            for ref in deleted:
                rtype, rid = ref.split("/")
                tx.delete(rtype, rid)


class _Stores:
    """One loaded store per distinct (resources, deleted): the suite only reads."""

    def __init__(self, url: Any) -> None:
        self.url = url
        self.cache: dict[bytes, SqlNodeData] = {}
        self.stores: list[FhirStore] = []

    def get(self, resources: list[dict[str, Any]], deleted: Sequence[str] = ()) -> SqlNodeData:
        key = orjson.dumps([resources, list(deleted)])
        if key not in self.cache:
            # the contract resources are minimal (no MedicationRequest.intent, ...): they test
            # reading rules, not R4 validation, which the store's own tests cover
            store = FhirStore(self.url(), validator=lambda _r: None)
            self.stores.append(store)
            load(store, resources, deleted)
            self.cache[key] = SqlNodeData(store)
        return self.cache[key]

    def close(self) -> None:
        for s in self.stores:
            s.close()


@pytest.fixture(scope="module")
def sqlite_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Stores]:
    base = tmp_path_factory.mktemp("sqlnodedata")
    s = _Stores(lambda: str(base / f"{uuid.uuid4().hex}.sqlite"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def pg_stores(pg_server_url: str) -> Iterator[_Stores]:
    import psycopg

    schemas: list[str] = []

    def url() -> str:
        schema = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'create schema "{schema}"')
        schemas.append(schema)
        sep = "&" if "?" in pg_server_url else "?"
        return f"{pg_server_url}{sep}options=-csearch_path%3D{schema}"

    s = _Stores(url)
    yield s
    s.close()
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'drop schema if exists "{schema}" cascade')


class TestSqliteNodeData(NodeDataContract):
    @pytest.fixture
    def make(self, sqlite_stores: _Stores) -> Make:
        return lambda resources: sqlite_stores.get(resources)

    @pytest.fixture
    def make_deleted(self, sqlite_stores: _Stores) -> MakeDeleted:
        return lambda resources, deleted: sqlite_stores.get(resources, deleted)


@pytest.mark.postgres
class TestPostgresNodeData(NodeDataContract):
    @pytest.fixture
    def make(self, pg_stores: _Stores) -> Make:
        return lambda resources: pg_stores.get(resources)

    @pytest.fixture
    def make_deleted(self, pg_stores: _Stores) -> MakeDeleted:
        return lambda resources, deleted: pg_stores.get(resources, deleted)
