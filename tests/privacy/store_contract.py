"""Shared contract suites for the node's privacy stores (ReleaseLog, BudgetStore).

Subclass in a ``Test...`` class and provide the ``log`` / ``budget`` fixture (a fresh, empty
store)::

    class TestSqlBudget(BudgetStoreContract):
        @pytest.fixture
        def budget(self, engine):
            return SqlBudgetStore(engine)

Each suite includes a concurrency test (threads charging / recording at once).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from healthmesh.errors import Conflict, DisclosureRisk, InvalidInput
from healthmesh.privacy.budget import BudgetStore, Spent
from healthmesh.privacy.release_log import ReleaseLog

CAP = Spent(1.0, 1e-5)


class ReleaseLogContract:
    @pytest.fixture
    def log(self) -> ReleaseLog:
        raise NotImplementedError("provide a log fixture")

    def test_empty(self, log: ReleaseLog) -> None:
        assert list(log.released("r1")) == []

    def test_records_per_researcher(self, log: ReleaseLog) -> None:
        a, b = frozenset({"p1", "p2", "p3"}), frozenset({"p4"})
        log.record("r1", a)
        log.record("r1", b)
        log.record("r2", a)
        assert sorted(map(sorted, log.released("r1"))) == [["p1", "p2", "p3"], ["p4"]]
        assert [set(c) for c in log.released("r2")] == [set(a)]
        assert list(log.released("r3")) == []

    def test_same_set_recorded_once(self, log: ReleaseLog) -> None:
        log.record("r1", frozenset({"p1", "p2"}))
        log.record("r1", frozenset({"p2", "p1"}))
        assert len(list(log.released("r1"))) == 1

    def test_large_cohort_and_unicode_ids(self, log: ReleaseLog) -> None:
        big = frozenset(f"患者-{i}" for i in range(5000))
        log.record("研究者", big)
        assert list(log.released("研究者")) == [big]

    def test_concurrent_records(self, log: ReleaseLog) -> None:
        sets = [frozenset({f"p{i}", f"q{i}"}) for i in range(20)]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda s: log.record("r1", s), sets))
        assert {frozenset(c) for c in log.released("r1")} == set(sets)


class BudgetStoreContract:
    @pytest.fixture
    def budget(self) -> BudgetStore:
        raise NotImplementedError("provide a budget fixture")

    def test_starts_at_zero(self, budget: BudgetStore) -> None:
        assert budget.spent("r1", "s1") == Spent(0.0, 0.0)

    def test_charges_add_up_per_researcher_and_study(self, budget: BudgetStore) -> None:
        assert budget.charge("r1", "s1", "t1#0", Spent(0.25, 1e-6), CAP) == Spent(0.25, 1e-6)
        total = budget.charge("r1", "s1", "t2#0", Spent(0.5, 0.0), CAP)
        assert total.epsilon == pytest.approx(0.75) and total.delta == pytest.approx(1e-6)
        budget.charge("r1", "s2", "t1#0", Spent(0.1, 0.0), CAP)
        budget.charge("r2", "s1", "t1#0", Spent(0.2, 0.0), CAP)
        assert budget.spent("r1", "s1").epsilon == pytest.approx(0.75)
        assert budget.spent("r1", "s2").epsilon == pytest.approx(0.1)
        assert budget.spent("r2", "s1").epsilon == pytest.approx(0.2)

    def test_same_charge_id_is_charged_once(self, budget: BudgetStore) -> None:
        budget.charge("r1", "s1", "t1#0", Spent(0.3, 0.0), CAP)
        again = budget.charge("r1", "s1", "t1#0", Spent(0.3, 0.0), CAP)
        assert again.epsilon == pytest.approx(0.3)
        assert budget.spent("r1", "s1").epsilon == pytest.approx(0.3)

    def test_same_id_other_cost_conflicts(self, budget: BudgetStore) -> None:
        budget.charge("r1", "s1", "t1#0", Spent(0.3, 0.0), CAP)
        with pytest.raises(Conflict):
            budget.charge("r1", "s1", "t1#0", Spent(0.4, 0.0), CAP)
        assert budget.spent("r1", "s1").epsilon == pytest.approx(0.3)

    def test_exhaustion_refused_and_nothing_charged(self, budget: BudgetStore) -> None:
        for i in range(4):
            budget.charge("r1", "s1", f"t{i}", Spent(0.25, 0.0), CAP)  # exactly the cap
        with pytest.raises(DisclosureRisk, match=r"^privacy-budget"):
            budget.charge("r1", "s1", "t9", Spent(0.01, 0.0), CAP)
        with pytest.raises(DisclosureRisk, match=r"^privacy-budget"):
            budget.charge("r1", "s2", "t9", Spent(0.1, 2e-5), CAP)  # delta over its cap
        assert budget.spent("r1", "s1").epsilon == pytest.approx(1.0)
        assert budget.spent("r1", "s2") == Spent(0.0, 0.0)
        budget.charge("r1", "s1", "t0", Spent(0.25, 0.0), CAP)  # a replay is still fine

    def test_bad_cost_refused(self, budget: BudgetStore) -> None:
        for cost in (Spent(-0.1, 0.0), Spent(float("nan"), 0.0), Spent(0.1, float("inf"))):
            with pytest.raises(InvalidInput):
                budget.charge("r1", "s1", "t", cost, CAP)
        assert budget.spent("r1", "s1") == Spent(0.0, 0.0)

    def test_concurrent_charges_never_pass_the_cap(self, budget: BudgetStore) -> None:
        barrier = threading.Barrier(8)
        refused = []

        def spend(i: int) -> None:
            barrier.wait()
            for j in range(5):
                try:
                    budget.charge("r1", "s1", f"t{i}-{j}", Spent(0.05, 0.0), CAP)
                except DisclosureRisk:
                    refused.append((i, j))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(spend, range(8)))
        assert budget.spent("r1", "s1").epsilon == pytest.approx(1.0)  # 20 of 40 charges
        assert len(refused) == 20
