"""Database plumbing shared by every component: engines from a URL (SQLite by default,
PostgreSQL in production) and forward-only schema migrations per component."""

from healthmesh.db.engine import is_postgres, make_engine
from healthmesh.db.migrations import Migration, apply_migrations, current_version

__all__ = ["Migration", "apply_migrations", "current_version", "is_postgres", "make_engine"]
