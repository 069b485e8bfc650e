"""Write interactions inside one database transaction: create, update, patch, delete, and
their conditional forms. A ``WriteTx`` is what a transaction Bundle runs its entries on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import jsonpatch
import orjson
from sqlalchemy import Connection, bindparam, select, update

from healthmesh.errors import (
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from healthmesh.fhir.store import schema
from healthmesh.fhir.store.bulkwrite import fast_insert
from healthmesh.fhir.store.indexsync import sync_index
from healthmesh.fhir.store.params import empty_rows, table_rows
from healthmesh.fhir.store.prepare import PreparedError, Validated
from healthmesh.fhir.store.records import (
    Stored,
    WriteResult,
    check_id,
    instant,
    new_id,
    stored_from_row,
)

if TYPE_CHECKING:
    from healthmesh.fhir.store.store import FhirStore

R = schema.resource
_UPDATE_CURRENT = (
    update(R)
    .where(R.c.lid == bindparam("b_lid"))
    .values(
        version=bindparam("b_version"),
        last_updated=bindparam("b_ts"),
        deleted=bindparam("b_deleted"),
        method=bindparam("b_method"),
        content=bindparam("b_content"),
    )
)


_CURRENT_OF_IDS = select(R).where(
    R.c.res_type == bindparam("b_type"), R.c.res_id.in_(bindparam("b_ids", expanding=True))
)


class PatchFailed(InvalidInput):
    """A JSON Patch that cannot be applied (FHIR: 422 Unprocessable Entity)."""

    status = 422
    code = "processing"


class WriteTx:
    """Writes sharing one transaction. Obtain from ``FhirStore.writing()``."""

    def __init__(self, store: FhirStore, conn: Connection) -> None:
        self.store = store
        self.conn = conn
        self._last_ts = 0.0
        #: every version written in this transaction (listeners hear of them after commit)
        self.written: list[Stored] = []
        # writes are buffered and sent with executemany / COPY at commit and before a search
        self._lids: list[int] = []
        #: new resources' rows, and by lid their position there and (type, index rows)
        self._pending_res: list[tuple[Any, ...]] = []
        self._new_at: dict[int, int] = {}
        self._new_rows: dict[int, tuple[str, Any | None]] = {}
        self._pending_history: list[tuple[Any, ...]] = []
        #: by lid: the new current row of an existing resource, and its index rows (None:
        #: deleted), brought in line with the stored ones at flush
        self._pending_updates: dict[int, dict[str, Any]] = {}
        self._reindex: dict[int, tuple[str, Any] | None] = {}
        #: by (type, id): the version buffered last. The database row of a key is changed
        #: only by its own buffered writes, so ``current`` answers these from here and reads
        #: the others without a flush
        self._buffered: dict[tuple[str, str], Stored] = {}

    def flush(self) -> None:
        """Send buffered writes to the database (before any read, and before commit): old
        versions to history, current rows updated, their changed index rows rewritten, then
        the new resources and their index rows."""
        if self._pending_history:
            fast_insert(self.conn, schema.history, self._pending_history)
            self._pending_history = []
        if self._pending_updates:
            self.conn.execute(_UPDATE_CURRENT, list(self._pending_updates.values()))
            self._pending_updates = {}
        if self._reindex:
            targets, self._reindex = self._reindex, {}
            sync_index(self.conn, self.store.params, targets)
        if self._pending_res:
            fast_insert(self.conn, R, self._pending_res)
            index = empty_rows()
            for lid, (rtype, rows) in self._new_rows.items():
                if rows is not None:  # None: deleted in the transaction that created it
                    table_rows(self.store.params, rtype, lid, rows, index)
            for kind, table_rows_ in index.items():
                fast_insert(self.conn, schema.INDEX_TABLES[kind], table_rows_)
            self._pending_res = []
            self._new_at = {}
            self._new_rows = {}
        self._buffered = {}

    def _lid(self) -> int:
        if not self._lids:
            self._lids = self.store.db.allocate_lids(self.conn, 256)[::-1]
        return self._lids.pop()

    def match(self, res_type: str, query: str) -> list[Stored]:
        self.flush()
        return self.store.match(self.conn, res_type, query)

    # -- helpers ------------------------------------------------------------------------------
    def now(self) -> float:
        """A timestamp for a new version: later than every one this transaction handed out."""
        ts = time.time()
        if ts <= self._last_ts:
            ts = self._last_ts + 1e-6
        self._last_ts = ts
        return ts

    def current(self, res_type: str, res_id: str) -> Stored | None:
        """The current version (deleted or not) as this transaction sees it, None if absent."""
        buffered = self._buffered.get((res_type, res_id))
        if buffered is not None:
            return buffered
        row = self.conn.execute(
            select(R).where(R.c.res_type == res_type, R.c.res_id == res_id)
        ).first()
        return stored_from_row(row) if row is not None else None

    def current_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Stored]:
        """Current versions (deleted ones included) of the given (type, id) keys that exist:
        one query per resource type and 500 ids."""
        by_type: dict[str, list[str]] = {}
        out: dict[tuple[str, str], Stored] = {}
        for key in set(keys):
            if key in self._buffered:
                out[key] = self._buffered[key]
            else:
                by_type.setdefault(key[0], []).append(key[1])
        for res_type, ids in sorted(by_type.items()):
            ids.sort()
            for i in range(0, len(ids), 500):
                params = {"b_type": res_type, "b_ids": ids[i : i + 500]}
                for row in self.conn.execute(_CURRENT_OF_IDS, params):
                    stored = stored_from_row(row)
                    out[(stored.res_type, stored.res_id)] = stored
        return out

    def _prepare(self, res_type: str, resource: Any, res_id: str, version: int, ts: float) -> bytes:
        if not isinstance(resource, dict):
            raise InvalidInput("resource must be a JSON object")
        if resource.get("resourceType") != res_type:
            raise InvalidInput(
                f"resourceType must be {res_type}", location=f"{res_type}.resourceType"
            )
        resource["id"] = res_id
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = instant(ts)
        resource["meta"] = meta
        self.store.validate(resource)
        return orjson.dumps(resource)

    def _add_new(self, stored: Stored, rows: Any) -> None:
        """Buffer the row and index rows of a new resource (version 1, or a later version of
        a resource created earlier in this transaction and not flushed yet)."""
        row = (  # fhir_resource's column order
            stored.lid,
            stored.res_type,
            stored.res_id,
            stored.version,
            stored.last_updated,
            stored.deleted,
            stored.method,
            stored.content,
        )
        at = self._new_at.get(stored.lid)
        if at is None:
            self._new_at[stored.lid] = len(self._pending_res)
            self._pending_res.append(row)
        else:
            self._pending_res[at] = row
        self._new_rows[stored.lid] = (stored.res_type, rows)

    def _set_current(self, stored: Stored, rows: Any | None) -> None:
        """Buffer the new current row of an existing resource and its index rows (None when
        deleted)."""
        if stored.lid in self._new_at:  # created in this transaction, not flushed yet
            self._add_new(stored, rows)
            return
        self._reindex[stored.lid] = None if rows is None else (stored.res_type, rows)
        self._pending_updates[stored.lid] = {
            "b_lid": stored.lid,
            "b_version": stored.version,
            "b_ts": stored.last_updated,
            "b_deleted": stored.deleted,
            "b_method": stored.method,
            "b_content": stored.content,
        }

    def _to_history(self, cur: Stored) -> None:
        self._pending_history.append(
            (
                cur.lid,
                cur.version,
                cur.res_type,
                cur.res_id,
                cur.last_updated,
                cur.deleted,
                cur.method,
                cur.content,
            )
        )

    def _done(self, stored: Stored, **kw: bool) -> WriteResult:
        self.written.append(stored)
        self._buffered[(stored.res_type, stored.res_id)] = stored
        return WriteResult(stored, **kw)

    # -- interactions --------------------------------------------------------------------------
    def create(
        self, resource: Any, *, if_none_exist: str | None = None, res_type: str | None = None
    ) -> WriteResult:
        if not isinstance(resource, dict):
            raise InvalidInput("resource must be a JSON object")
        rtype = res_type or str(resource.get("resourceType", ""))
        self.store.check_type(rtype)
        if if_none_exist:
            found = self.match(rtype, if_none_exist)
            if len(found) > 1:
                raise PreconditionFailed("If-None-Exist matched more than one resource")
            if found:
                return WriteResult(found[0], matched=True)
        return self._insert(rtype, resource, new_id(), "POST")

    def _insert(
        self,
        rtype: str,
        resource: dict[str, Any],
        res_id: str,
        method: str,
        prepared: tuple[float, bytes, Any] | None = None,
    ) -> WriteResult:
        """Insert a new resource; ``prepared`` = (ts, content, index rows) from ``prepare_new``."""
        if prepared is None:
            ts = self.now()
            content = self._prepare(rtype, resource, res_id, 1, ts)
            rows = self.store.extract(resource)
        else:
            ts, content, rows = prepared
        if (rtype, res_id) in self._buffered:
            raise PreconditionFailed(
                f"this {rtype} id was written in this transaction already", location="id"
            )
        stored = Stored(self._lid(), rtype, res_id, 1, ts, False, method, content)
        self._add_new(stored, rows)
        return self._done(stored, created=True)

    def prepare_new(
        self, items: list[tuple[str, dict[str, Any], str]]
    ) -> list[tuple[float, bytes, Any] | PreparedError]:
        """Validate, index and serialise new resources (type, resource, id) as version 1,
        in parallel for large batches; per item the prepared data or its error."""
        for rtype, resource, _ in items:
            if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
                raise InvalidInput(
                    f"resourceType must be {rtype}", location=f"{rtype}.resourceType"
                )
        stamps = [self.now() for _ in items]
        results = self.store.preparer.run(
            [(t, r, i, 1, ts) for (t, r, i), ts in zip(items, stamps, strict=True)]
        )
        out: list[tuple[float, bytes, Any] | PreparedError] = []
        for ts, (content, rows) in zip(stamps, results, strict=True):
            out.append((ts, content, rows) if content is not None else PreparedError(*rows))
        return out

    def update(
        self,
        res_type: str,
        res_id: str,
        resource: Any,
        *,
        if_match: int | None = None,
    ) -> WriteResult:
        self.store.check_type(res_type)
        check_id(res_id)
        if not isinstance(resource, dict):
            raise InvalidInput("resource must be a JSON object")
        body_id = resource.get("id")
        if body_id is not None and body_id != res_id:
            raise InvalidInput("resource id in the body does not match the URL", location="id")
        cur = self.current(res_type, res_id)
        if cur is None:
            if if_match is not None:
                raise PreconditionFailed("If-Match given for a resource that does not exist")
            return self._insert(res_type, resource, res_id, "PUT")
        if if_match is not None and if_match != cur.version:
            raise PreconditionFailed(
                f"version conflict: If-Match {if_match}, current version {cur.version}"
            )
        return self._replace(cur, resource, "PUT")

    def _replace(self, cur: Stored, resource: dict[str, Any], method: str) -> WriteResult:
        ts = self.now()
        version = cur.version + 1
        content = self._prepare(cur.res_type, resource, cur.res_id, version, ts)
        self._to_history(cur)
        stored = Stored(cur.lid, cur.res_type, cur.res_id, version, ts, False, method, content)
        self._set_current(stored, self.store.extract(resource))
        return self._done(stored, created=cur.deleted)

    def put_validated(
        self, version: Validated, cur: Stored | None, *, method: str = "PUT"
    ) -> WriteResult:
        """Write a version made by ``FhirStore.prepare_version`` (validated there; not
        validated again): a new resource when ``cur`` is None (``version`` must be 1), else
        the successor of ``cur``, the current version as read in this transaction
        (``current``, ``current_many``) or returned by the previous write of it here.

        Buffered like every write; the old version goes to history and only the index rows
        of parameters whose values changed are rewritten.
        """
        if cur is None:
            if version.version != 1:
                raise InvalidInput("a new resource starts at version 1", location="meta.versionId")
            return self._insert(
                version.res_type,
                {},
                version.res_id,
                method,
                (version.ts, version.content, version.rows),
            )
        if (cur.res_type, cur.res_id) != (version.res_type, version.res_id):
            raise InvalidInput("the version is of another resource", location="id")
        latest = self._buffered.get((cur.res_type, cur.res_id), cur)
        if latest.version != cur.version or version.version != (cur.version + 1):
            raise PreconditionFailed(
                f"version conflict: version {version.version} written over {cur.version}"
            )
        self._to_history(cur)
        stored = Stored(
            cur.lid,
            cur.res_type,
            cur.res_id,
            version.version,
            version.ts,
            False,
            method,
            version.content,
        )
        self._set_current(stored, version.rows)
        return self._done(stored, created=cur.deleted)

    def conditional_update(self, res_type: str, query: str, resource: Any) -> WriteResult:
        self.store.check_type(res_type)
        found = self.match(res_type, query)
        if len(found) > 1:
            raise PreconditionFailed("conditional update matched more than one resource")
        if not found:
            if not isinstance(resource, dict):
                raise InvalidInput("resource must be a JSON object")
            rid = resource.get("id")
            return self._insert(res_type, resource, check_id(rid) if rid else new_id(), "PUT")
        return self.update(res_type, found[0].res_id, resource)

    def patch(
        self,
        res_type: str,
        res_id: str,
        operations: Any,
        *,
        if_match: int | None = None,
    ) -> WriteResult:
        cur = self.current(res_type, res_id)
        if cur is None or cur.deleted:
            raise NotFound(f"{res_type}/{res_id} not found")
        if if_match is not None and if_match != cur.version:
            raise PreconditionFailed(
                f"version conflict: If-Match {if_match}, current version {cur.version}"
            )
        patched = apply_json_patch(cur.resource(), operations)
        if patched.get("resourceType") != res_type or patched.get("id") != res_id:
            raise InvalidInput("a patch may not change resourceType or id")
        return self._replace(cur, patched, "PATCH")

    def delete(self, res_type: str, res_id: str) -> WriteResult | None:
        """Delete (kept in history). Returns None when it was already deleted."""
        self.store.check_type(res_type)
        cur = self.current(res_type, res_id)
        if cur is None:
            raise NotFound(f"{res_type}/{res_id} not found")
        if cur.deleted:
            return None
        ts = self.now()
        self._to_history(cur)
        stored = Stored(cur.lid, res_type, res_id, cur.version + 1, ts, True, "DELETE", None)
        self._set_current(stored, None)
        return self._done(stored)

    def conditional_delete(self, res_type: str, query: str) -> int:
        found = self.match(res_type, query)
        if len(found) > 1:
            raise PreconditionFailed("conditional delete matched more than one resource")
        for s in found:
            self.delete(res_type, s.res_id)
        return len(found)


def apply_json_patch(resource: dict[str, Any], operations: Any) -> dict[str, Any]:
    """Apply an RFC 6902 JSON Patch document.

    Operations are applied one at a time so that an error can name the failing operation
    (index, op and path) without echoing any value from the resource.
    """
    if not isinstance(operations, list):
        raise InvalidInput("a JSON Patch body must be an array of operations")
    doc: Any = resource
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or "path" not in op:
            raise InvalidInput(f"JSON Patch operation {i} needs 'op' and 'path'")
        where = f"operation {i} ({op['op']} {str(op['path'])[:100]})"
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc)
        except jsonpatch.JsonPatchTestFailed:
            raise PatchFailed(f"JSON Patch test failed at {where}") from None
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
            raise PatchFailed(f"JSON Patch cannot apply {where}") from None
        except (TypeError, KeyError, IndexError, ValueError, AttributeError):
            raise PatchFailed(f"JSON Patch cannot apply {where}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("JSON Patch must leave a JSON object")
    return doc


Validator = Callable[[dict[str, Any]], None]
