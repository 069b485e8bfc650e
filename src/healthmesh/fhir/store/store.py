"""The FHIR store: one contract over SQLite (embedded default) and PostgreSQL (production).

The same SQL (SQLAlchemy Core) serves both; the differences (writer serialisation, id
allocation, bulk loading) live in ``database.py`` and ``bulk.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, func, literal, select, union_all

from healthmesh.errors import Gone, InvalidInput, NotFound
from healthmesh.fhir.search import IndexRows, Registry, default_registry, extract
from healthmesh.fhir.store import schema
from healthmesh.fhir.store.database import Database
from healthmesh.fhir.store.params import ParamTable
from healthmesh.fhir.store.prepare import (
    Items,
    Prepared,
    Preparer,
    Validated,
    prepare_items,
    validated_version,
)
from healthmesh.fhir.store.records import Stored, check_id, stored_from_row
from healthmesh.fhir.store.writes import WriteTx

R = schema.resource
H = schema.history

Validator = Callable[[dict[str, Any]], None]
WriteListener = Callable[[Sequence[Stored]], None]


def _default_validator() -> Validator:
    from healthmesh.fhir.validation import check

    return check


def _default_types() -> frozenset[str]:
    from healthmesh.fhir.validation import resource_types

    return resource_types()


class FhirStore:
    """Versioned FHIR resources with search indexes.

    >>> store = FhirStore(":memory:")
    >>> with store.writing() as tx:
    ...     created = tx.create({"resourceType": "Patient", "gender": "female"})
    >>> store.read("Patient", created.stored.res_id).version
    1
    """

    def __init__(
        self,
        db: str | Path,
        *,
        registry: Registry | None = None,
        validator: Validator | None = None,
        resource_types: frozenset[str] | None = None,
    ) -> None:
        self.db = Database(db)
        self.registry = registry or default_registry()
        self.validate: Validator = validator or _default_validator()
        self.resource_types = resource_types or _default_types()
        self.params = ParamTable(self.registry)
        with self.db.write() as conn:
            self.params.sync(conn, self.resource_types)
        self.listeners: list[WriteListener] = []
        defaults = registry is None and validator is None
        self.preparer = Preparer(self._prepare_local, workers=None if defaults else 1)
        self._since_analyze = 0
        self._analyze_at = 1000
        if self.db.is_sqlite:
            with self.db.read() as conn:
                has_stats = conn.exec_driver_sql(
                    "select 1 from sqlite_master where name = 'sqlite_stat1'"
                ).first()
                has_rows = conn.execute(select(R.c.lid).limit(1)).first()
            if has_rows and not has_stats:
                self.db.analyze()
        from healthmesh.fhir.query.engine import SearchEngine

        self.search_engine = SearchEngine(self)

    # -- plumbing -----------------------------------------------------------------------------
    def extract(self, resource: dict[str, Any]) -> IndexRows:
        return extract(resource, self.registry)

    def check_type(self, res_type: str) -> str:
        if res_type not in self.resource_types:
            raise InvalidInput("unknown resource type", location="resourceType")
        return res_type

    def close(self) -> None:
        self.preparer.close()
        self.db.dispose()

    def prepare_version(self, resource: Any, res_id: str, version: int, ts: float) -> Validated:
        """Stamp ``resource`` (in place) as ``version`` of ``res_id`` at ``ts``, validate,
        serialise and index it, for ``WriteTx.put_validated``, which does not validate again.
        Raises ``InvalidInput`` or the validator's error.

        >>> store = FhirStore(":memory:")
        >>> v = store.prepare_version({"resourceType": "Patient"}, "p1", 1, 0.0)
        >>> with store.writing() as tx:
        ...     tx.put_validated(v, None).stored.location
        'Patient/p1/_history/1'
        """
        if not isinstance(resource, dict):
            raise InvalidInput("resource must be a JSON object")
        self.check_type(str(resource.get("resourceType", "")))
        check_id(res_id)
        return validated_version(resource, res_id, version, ts, self.validate, self.extract)

    def _prepare_local(self, items: Items) -> list[Prepared]:
        return prepare_items(items, self.validate, self.extract)

    @contextmanager
    def writing(self) -> Iterator[WriteTx]:
        """A write transaction: all or nothing. Listeners hear of the writes after commit."""
        with self.db.write() as conn:
            tx = WriteTx(self, conn)
            yield tx
            tx.flush()
        self._note_writes(len(tx.written))
        if tx.written:
            for listener in self.listeners:
                listener(tx.written)

    def _note_writes(self, n: int) -> None:
        """Without statistics SQLite may drive a search from the wrong index; refresh them
        as the store grows (at 1k, 2k, 4k ... writes since the last refresh)."""
        self._since_analyze += n
        if self._since_analyze >= self._analyze_at:
            self.db.analyze()
            self._since_analyze = 0
            self._analyze_at = min(self._analyze_at * 2, 1_000_000)

    def match(self, conn: Connection, res_type: str, query: str) -> list[Stored]:
        """Resources of ``res_type`` matching a search query string (conditional interactions)."""
        return self.search_engine.match(conn, res_type, query)

    # -- reads --------------------------------------------------------------------------------
    def read(self, res_type: str, res_id: str) -> Stored:
        self.check_type(res_type)
        check_id(res_id)
        with self.db.read() as conn:
            row = conn.execute(
                select(R).where(R.c.res_type == res_type, R.c.res_id == res_id)
            ).first()
        if row is None:
            raise NotFound(f"{res_type}/{res_id} not found")
        stored = stored_from_row(row)
        if stored.deleted:
            raise Gone(f"{res_type}/{res_id} was deleted", location=stored.location)
        return stored

    def vread(self, res_type: str, res_id: str, version: int) -> Stored:
        self.check_type(res_type)
        check_id(res_id)
        with self.db.read() as conn:
            row = conn.execute(
                select(R).where(R.c.res_type == res_type, R.c.res_id == res_id)
            ).first()
            if row is not None and int(row.version) != version:
                row = conn.execute(
                    select(H).where(H.c.lid == row.lid, H.c.version == version)
                ).first()
        if row is None:
            raise NotFound(f"{res_type}/{res_id}/_history/{version} not found")
        stored = stored_from_row(row)
        if stored.deleted:
            raise Gone(f"{res_type}/{res_id}/_history/{version} is a deletion")
        return stored

    def history(
        self,
        res_type: str | None = None,
        res_id: str | None = None,
        *,
        since: float | None = None,
        before: float | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> tuple[list[Stored], int]:
        """Versions newest first, and the total number matching. ``before`` freezes paging."""
        cols_r = [
            R.c.lid,
            R.c.res_type,
            R.c.res_id,
            R.c.version,
            R.c.last_updated,
            R.c.deleted,
            R.c.method,
            R.c.content,
        ]
        cols_h = [H.c[c.name] for c in cols_r]
        conds_r: list[Any] = []
        conds_h: list[Any] = []
        with self.db.read() as conn:
            if res_type is not None:
                self.check_type(res_type)
                conds_r.append(R.c.res_type == res_type)
                conds_h.append(H.c.res_type == res_type)
            if res_id is not None:
                check_id(res_id)
                assert res_type is not None
                lid = conn.execute(
                    select(R.c.lid).where(R.c.res_type == res_type, R.c.res_id == res_id)
                ).scalar()
                if lid is None:
                    raise NotFound(f"{res_type}/{res_id} not found")
                conds_r.append(R.c.lid == lid)
                conds_h.append(H.c.lid == lid)
            if since is not None:
                conds_r.append(R.c.last_updated >= since)
                conds_h.append(H.c.last_updated >= since)
            if before is not None:
                conds_r.append(R.c.last_updated <= before)
                conds_h.append(H.c.last_updated <= before)
            both = union_all(
                select(*cols_r).where(and_(literal(True), *conds_r)),
                select(*cols_h).where(and_(literal(True), *conds_h)),
            ).subquery()
            total = int(conn.execute(select(func.count()).select_from(both)).scalar() or 0)
            rows = conn.execute(
                select(both)
                .order_by(both.c.last_updated.desc(), both.c.version.desc())
                .limit(count)
                .offset(offset)
            ).all()
        return [stored_from_row(r) for r in rows], total

    def count(self, res_type: str | None = None) -> int:
        q = select(func.count()).select_from(R).where(R.c.deleted == False)  # noqa: E712
        if res_type is not None:
            q = q.where(R.c.res_type == res_type)
        with self.db.read() as conn:
            return int(conn.execute(q).scalar() or 0)

    def by_lids(self, conn: Connection, lids: Sequence[int]) -> list[Stored]:
        """Current versions for the given keys, in the given order."""
        found: dict[int, Stored] = {}
        for i in range(0, len(lids), 500):
            chunk = lids[i : i + 500]
            for row in conn.execute(select(R).where(R.c.lid.in_(chunk))).all():
                found[int(row.lid)] = stored_from_row(row)
        return [found[lid] for lid in lids if lid in found]
