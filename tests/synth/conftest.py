"""A small region generated once per test session (seeded), shared by the synth tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from healthmesh.synth.region import RegionConfig, RegionSummary, generate_region

SMALL = RegionConfig(seed=11, people=1500, days=240, start=dt.date(2024, 10, 1))


@pytest.fixture(scope="session")
def small_region(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RegionSummary]:
    out = tmp_path_factory.mktemp("region")
    return out, generate_region(SMALL, out)
