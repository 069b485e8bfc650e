"""Shared fixtures: the public test material in ../shared/data and a PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HEALTHMESH_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/data (public test material); fails loudly if absent."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"public test material not found at {SHARED_DATA}")
    return SHARED_DATA


def _pg_base_url() -> str:
    return os.environ.get("HEALTHMESH_TEST_PG_URL", DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of a reachable PostgreSQL server. In CI it must be there; elsewhere we skip."""
    import psycopg

    url = _pg_base_url()
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {url} ({type(exc).__name__}); set HEALTHMESH_TEST_PG_URL"
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: " + reason)
        pytest.skip(reason)
    return url


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    sep = "&" if "?" in pg_server_url else "?"
    try:
        yield f"{pg_server_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
