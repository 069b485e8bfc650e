"""SQL expressions that SQLite and PostgreSQL spell differently, as SQLAlchemy constructs.

SQLAlchemy Core has no portable way to read a field of a JSON document stored as bytes, to
turn POSIX seconds into a calendar date, or to count days between ISO dates, so these few
are written here once per dialect (``@compiles``) and used by the cohort and variable
compilers as ordinary column expressions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement, FunctionElement, literal
from sqlalchemy.sql.visitors import InternalTraversal


class json_text(FunctionElement[str]):
    """Text of the JSON field at ``path`` (a dotted path of object keys) in a ``content``
    column holding the resource's JSON as UTF-8 bytes; NULL when absent."""

    type = String()
    inherit_cache = True
    name = "json_text"
    # the path is part of the compiled SQL, so it must be part of the statement cache key
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy class attribute)
        *FunctionElement._traverse_internals,
        ("path", InternalTraversal.dp_string),
    ]

    def __init__(self, content: ColumnElement[Any], path: str) -> None:
        for key in path.split("."):
            if not key.isidentifier():
                raise ValueError(f"bad JSON path {path!r}")
        self.path = path
        super().__init__(content)


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    (content,) = element.clauses
    # a BLOB would be read as JSONB by newer SQLite: cast the UTF-8 text first
    return f"json_extract(CAST({compiler.process(content, **kw)} AS TEXT), '$.{element.path}')"


@compiles(json_text, "postgresql")
def _json_text_pg(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    (content,) = element.clauses
    keys = ",".join(element.path.split("."))
    return f"(convert_from({compiler.process(content, **kw)}, 'UTF8')::jsonb #>> '{{{keys}}}')"


class epoch_ymd(FunctionElement[int]):
    """The UTC calendar date of POSIX seconds as the integer ``YYYYMMDD``."""

    type = Integer()
    inherit_cache = True
    name = "epoch_ymd"


@compiles(epoch_ymd, "sqlite")
def _ymd_sqlite(element: epoch_ymd, compiler: SQLCompiler, **kw: Any) -> str:
    (seconds,) = element.clauses
    return f"CAST(strftime('%Y%m%d', {compiler.process(seconds, **kw)}, 'unixepoch') AS INTEGER)"


@compiles(epoch_ymd, "postgresql")
def _ymd_pg(element: epoch_ymd, compiler: SQLCompiler, **kw: Any) -> str:
    (seconds,) = element.clauses
    return (
        f"CAST(to_char(to_timestamp({compiler.process(seconds, **kw)}) AT TIME ZONE 'UTC', "
        "'YYYYMMDD') AS INTEGER)"
    )


class day_number(FunctionElement[float]):
    """Days since 1970-01-01 of an ISO ``YYYY-MM-DD`` text (NULL when shorter)."""

    type = Float()
    inherit_cache = True
    name = "day_number"


@compiles(day_number, "sqlite")
def _days_sqlite(element: day_number, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = element.clauses
    t = compiler.process(text, **kw)
    return f"(julianday(substr({t}, 1, 10)) - 2440587.5)"


@compiles(day_number, "postgresql")
def _days_pg(element: day_number, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = element.clauses
    t = compiler.process(text, **kw)
    return (
        f"(CASE WHEN length({t}) >= 10 THEN "
        f"CAST(CAST(substr({t}, 1, 10) AS DATE) - DATE '1970-01-01' AS DOUBLE PRECISION) END)"
    )


def prefix_match(column: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix`` (case-sensitive on both databases; the store sets
    ``case_sensitive_like`` on SQLite, so a plain prefix uses the b-tree index)."""
    if not any(ch in prefix for ch in "%_\\"):
        return column.like(prefix + "%")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(literal(escaped + "%"), escape="\\")


class iso_epoch(FunctionElement[float]):
    """POSIX seconds of an ISO date/dateTime text with a zone (a date alone: midnight UTC)."""

    type = Float()
    inherit_cache = True
    name = "iso_epoch"


@compiles(iso_epoch, "sqlite")
def _epoch_sqlite(element: iso_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = element.clauses
    return f"((julianday({compiler.process(text, **kw)}) - 2440587.5) * 86400.0)"


@compiles(iso_epoch, "postgresql")
def _epoch_pg(element: iso_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = element.clauses
    t = compiler.process(text, **kw)
    return (
        f"(CASE WHEN length({t}) <= 10 THEN extract(epoch FROM CAST({t} AS DATE)::timestamp) "
        f"ELSE extract(epoch FROM CAST({t} AS timestamptz)) END)::double precision"
    )


class binary_order(FunctionElement[str]):
    """A text column compared by code point (as Python orders strings) on both databases."""

    type = String()
    inherit_cache = True
    name = "binary_order"


@compiles(binary_order, "sqlite")
def _binary_sqlite(element: binary_order, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = element.clauses
    return str(compiler.process(text, **kw))


@compiles(binary_order, "postgresql")
def _binary_pg(element: binary_order, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = element.clauses
    return f'({compiler.process(text, **kw)} COLLATE "C")'
