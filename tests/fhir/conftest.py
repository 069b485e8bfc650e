"""Fixtures for the FHIR store and API tests: one store contract run on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthmesh.fhir.store import FhirStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FhirStore]:
    if request.param == "sqlite":
        url = str(tmp_path / "store.sqlite")
    else:
        url = request.getfixturevalue("pg_url")
    s = FhirStore(url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[FhirStore]:
    s = FhirStore(str(tmp_path / "store.sqlite"))
    yield s
    s.close()
