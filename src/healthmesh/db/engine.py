"""Create SQLAlchemy engines from a SQLite path or a ``postgresql://`` URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import StaticPool


def normalize_url(db: str | Path) -> str:
    """Turn a path or URL into a SQLAlchemy URL.

    >>> normalize_url("postgresql://u@h/db")
    'postgresql+psycopg://u@h/db'
    >>> normalize_url(":memory:")
    'sqlite://'
    """
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if text.startswith("postgresql+"):
        return text
    if text.startswith("sqlite"):
        return text
    if text == ":memory:":
        return "sqlite://"
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def make_engine(db: str | Path, **kwargs: Any) -> Engine:
    """Engine for a SQLite path/URL or a PostgreSQL URL, with sane defaults.

    SQLite gets WAL, a busy timeout and foreign keys; in-memory SQLite shares one connection.
    """
    url = normalize_url(db)
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return create_engine(url, **kwargs)
