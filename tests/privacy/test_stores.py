"""The privacy store contracts on the in-memory stores."""

from __future__ import annotations

import pytest

from healthmesh.privacy.budget import MemoryBudgetStore
from healthmesh.privacy.release_log import MemoryReleaseLog

from .store_contract import BudgetStoreContract, ReleaseLogContract


class TestMemoryReleaseLog(ReleaseLogContract):
    @pytest.fixture
    def log(self) -> MemoryReleaseLog:
        return MemoryReleaseLog()


class TestMemoryBudgetStore(BudgetStoreContract):
    @pytest.fixture
    def budget(self) -> MemoryBudgetStore:
        return MemoryBudgetStore()
