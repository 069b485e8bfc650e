"""Cohort queries built and compiled once, reused across calls and across stores.

Building a cohort's SQLAlchemy statement (consent, criteria, variables) and compiling it cost
tens of milliseconds per query, far more than running it on a small node; an iterative fit
asks the same query every round, and a region's nodes share one search-parameter map
(``pid``), so their SQL text is identical. SQLAlchemy's own compiled cache is per engine
(per dialect instance) and still rebuilds the statement and its cache key on every call, so
this module keeps the **compiled text and bound values** per (dialect, driver, pid map,
query key) and runs them with ``exec_driver_sql``.

Only statements whose bound values are plain ``int``/``float``/``str``/``bool``/``None``
are kept (their driver conversions applied once, as SQLAlchemy would); anything else runs
the ordinary way. The text depends on the query and the pid map only, never on the data, so
nothing needs invalidating when a store is written to.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

#: most compiled queries kept (one per distinct cohort / design asked)
SIZE = 512
_PLAIN = (int, float, str, bool, type(None))


@dataclass(frozen=True)
class Prepared:
    """A compiled statement: its text and bound values in the driver's parameter style."""

    sql: str
    values: tuple[Any, ...] | dict[str, Any]


class CompiledCache:
    """A bounded, thread-safe map of (dialect, driver, pid map, key) to :class:`Prepared`."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Prepared | None] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def rows(
        self,
        conn: Connection,
        pids: Hashable,
        key: Hashable,
        build: Callable[[], Executable],
    ) -> list[Any]:
        """Rows of the statement ``build()`` returns for ``key`` (compiled once per dialect
        and pid map), run on ``conn``."""
        dialect = conn.dialect
        full = (dialect.name, dialect.driver, pids, key)
        with self._lock:
            found = full in self._items
            prepared = self._items.get(full)
            if found:
                self._items.move_to_end(full)
                self.hits += 1
        if not found:
            self.misses += 1
            stmt = build()
            prepared = _prepare(stmt, conn)
            with self._lock:
                self._items[full] = prepared
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            if prepared is None:
                return list(conn.execute(stmt).all())
        if prepared is None:  # not cacheable: built and run the ordinary way
            return list(conn.execute(build()).all())
        return list(conn.exec_driver_sql(prepared.sql, prepared.values).all())

    def clear(self) -> None:
        """Forget every compiled statement."""
        with self._lock:
            self._items.clear()


def _prepare(stmt: Executable, conn: Connection) -> Prepared | None:
    if not isinstance(stmt, ClauseElement):
        return None
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if not isinstance(compiled, SQLCompiler):
        return None
    params = dict(compiled.construct_params() or {})
    if any(not isinstance(v, _PLAIN) for v in params.values()):
        return None
    # the driver-side conversions SQLAlchemy would apply (e.g. bool -> int on SQLite),
    # applied once here since the values are fixed
    processors = getattr(compiled, "_bind_processors", None) or {}
    params = {k: processors[k](v) if k in processors else v for k, v in params.items()}
    if compiled.positional:
        order = compiled.positiontup or []
        return Prepared(compiled.string, tuple(params[name] for name in order))
    return Prepared(compiled.string, dict(params))


#: shared by every store of this process (nodes with the same pid map share entries)
SHARED = CompiledCache()
