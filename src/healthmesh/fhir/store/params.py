"""Map search parameters to the small integer ids (``pid``) the index tables use, and turn
extracted index rows into table rows."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from healthmesh.fhir.search import IndexRows, Registry, SearchParam
from healthmesh.fhir.store import schema

log = logging.getLogger(__name__)

Row = tuple[Any, ...]


def definition_hash(sp: SearchParam) -> str:
    text = "|".join((sp.type, sp.expression, ",".join(sp.targets), repr(sp.components), sp.url))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ParamTable:
    """The (resource type, code) -> pid mapping, synchronised with the registry at start-up."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.pids: dict[tuple[str, str], int] = {}
        self.types: dict[int, str] = {}
        self.changed: set[tuple[str, str]] = set()

    def sync(self, conn: Connection, resource_types: Iterable[str]) -> None:
        """Insert rows for new parameters; remember those whose definition changed."""
        existing = {
            (r.res_type, r.code): (int(r.pid), r.definition_hash)
            for r in conn.execute(select(schema.param)).all()
        }
        next_pid = max((p for p, _ in existing.values()), default=0) + 1
        new_rows: list[dict[str, object]] = []
        for rtype in sorted(resource_types):
            for code, sp in sorted(self.registry.for_type(rtype).items()):
                digest = definition_hash(sp)
                key = (rtype, code)
                if key in existing:
                    pid, old = existing[key]
                    if old != digest:
                        self.changed.add(key)
                else:
                    pid = next_pid
                    next_pid += 1
                    new_rows.append(
                        {
                            "pid": pid,
                            "res_type": rtype,
                            "code": code,
                            "type": sp.type,
                            "definition_hash": digest,
                        }
                    )
                self.pids[key] = pid
                self.types[pid] = sp.type
        if new_rows:
            conn.execute(schema.param.insert(), new_rows)
        if self.changed:
            log.warning(
                "%d search parameter definitions changed since indexing; run `healthmesh node "
                "reindex`",
                len(self.changed),
            )

    def mark_current(self, conn: Connection) -> None:
        """Record the current definition hashes (after a reindex)."""
        for rtype, code in sorted(self.changed):
            sp = self.registry.get(rtype, code)
            if sp is not None:
                conn.execute(
                    schema.param.update()
                    .where(schema.param.c.pid == self.pids[(rtype, code)])
                    .values(definition_hash=definition_hash(sp))
                )
        self.changed.clear()

    def pid(self, res_type: str, code: str) -> int | None:
        return self.pids.get((res_type, code))


def _component(value: Any) -> tuple[Any, ...]:
    """Normalise one composite component value to (a, b, low, high)."""
    if isinstance(value, str):
        return (None, value, None, None)
    if isinstance(value, tuple):
        if len(value) == 2 and all(isinstance(v, float | int) for v in value):
            return (None, None, float(value[0]), float(value[1]))
        if len(value) == 2:
            return (value[0], value[1], None, None)
        if len(value) == 3:  # number: (low, high, value)
            return (None, None, float(value[0]), float(value[1]))
        if len(value) >= 4:  # quantity: (system, code, low, high, value)
            return (value[0], value[1], float(value[2]), float(value[3]))
    return (None, None, None, None)


def table_rows(
    params: ParamTable, res_type: str, lid: int, rows: IndexRows, out: dict[str, list[Row]]
) -> None:
    """Append one resource's index rows to ``out`` (by kind), as tuples in the column order
    of the index tables: ``(lid, pid, *values)``. The extracted tuples are laid out in that
    order already, so this only maps codes to pids."""
    rows_by_kind(params.pids, res_type, lid, rows, out)


def rows_by_kind(
    pids: dict[tuple[str, str], int],
    res_type: str,
    lid: int,
    rows: IndexRows,
    out: dict[str, list[Row]],
) -> None:
    """:func:`table_rows` with a plain (type, code) -> pid mapping (usable in a worker)."""
    for kind in _SIMPLE_KINDS:
        dest = out[kind]
        for item in getattr(rows, kind):
            p = pids.get((res_type, item[0]))
            if p is not None:
                dest.append((lid, p, *item[1:]))
    dest = out["composites"]
    for code, comps in rows.composites:
        p = pids.get((res_type, code))
        if p is None or len(comps) < 2:
            continue
        dest.append((lid, p, *_component(comps[0]), *_component(comps[1])))


_SIMPLE_KINDS = (
    "strings",
    "tokens",
    "identifier_types",
    "dates",
    "numbers",
    "quantities",
    "references",
    "uris",
)


def empty_rows() -> dict[str, list[Row]]:
    return {kind: [] for kind in schema.INDEX_TABLES}
