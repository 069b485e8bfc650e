"""SQL privacy stores of the node (budget, release log) on SQLite and PostgreSQL.

When the shared suite ``tests/privacy/store_contract.py`` is present it is run as well (see
``test_privacy_store_contract.py``); these tests cover what only SQL can get wrong:
atomicity under concurrent chargers, persistence across instances, rollback of a refusal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from healthmesh.db import make_engine
from healthmesh.errors import Conflict, DisclosureRisk, InvalidInput
from healthmesh.node.analytics.privacy import SqlBudgetStore, SqlReleaseLog, charges
from healthmesh.privacy.budget import Spent


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(tmp_path / "node.sqlite")
    else:
        eng = make_engine(request.getfixturevalue("pg_url"))
    yield eng
    eng.dispose()


CAP = Spent(1.0, 1e-5)


def test_charges_add_up_and_refuse_past_cap(engine: Engine) -> None:
    store = SqlBudgetStore(engine)
    assert store.spent("r", "s") == Spent()
    assert store.charge("r", "s", "t1", Spent(0.4, 1e-6), CAP) == Spent(0.4, 1e-6)
    assert store.charge("r", "s", "t2", Spent(0.6, 0.0), CAP).epsilon == pytest.approx(1.0)
    with pytest.raises(DisclosureRisk, match="privacy-budget"):
        store.charge("r", "s", "t3", Spent(0.01, 0.0), CAP)
    with pytest.raises(DisclosureRisk, match="privacy-budget"):
        store.charge("r", "s2", "t4", Spent(0.0, 2e-5), CAP)  # delta alone passes the cap
    # the refused charges left nothing behind: not in the total, and their ids are free
    assert store.spent("r", "s").epsilon == pytest.approx(1.0)
    assert store.spent("r", "s2") == Spent()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(charges)).scalar() == 2
    # other researchers and studies have their own budgets
    assert store.charge("other", "s", "t1", Spent(0.5, 0.0), CAP) == Spent(0.5, 0.0)


def test_charge_is_idempotent_per_id(engine: Engine) -> None:
    store = SqlBudgetStore(engine)
    store.charge("r", "s", "task-1", Spent(0.3, 0.0), CAP)
    assert store.charge("r", "s", "task-1", Spent(0.3, 0.0), CAP) == Spent(0.3, 0.0)
    with pytest.raises(Conflict):
        store.charge("r", "s", "task-1", Spent(0.2, 0.0), CAP)
    # a re-delivered task is answered even when the budget is now exhausted
    store.charge("r", "s", "task-2", Spent(0.7, 0.0), CAP)
    assert store.charge("r", "s", "task-1", Spent(0.3, 0.0), CAP).epsilon == pytest.approx(1.0)


@pytest.mark.parametrize(
    "cost", [Spent(-0.1, 0.0), Spent(float("nan"), 0.0), Spent(0.0, float("inf"))]
)
def test_bad_costs_are_refused(engine: Engine, cost: Spent) -> None:
    with pytest.raises(InvalidInput):
        SqlBudgetStore(engine).charge("r", "s", "t", cost, CAP)


def test_budget_survives_a_new_instance(engine: Engine) -> None:
    SqlBudgetStore(engine).charge("r", "s", "t1", Spent(0.25, 0.0), CAP)
    assert SqlBudgetStore(engine).spent("r", "s") == Spent(0.25, 0.0)


def test_concurrent_charges_never_pass_the_cap(engine: Engine) -> None:
    store = SqlBudgetStore(engine)
    ok: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        try:
            # ids repeat: two threads deliver each task, only one of them charges it
            store.charge("r", "s", f"t{i % 10}", Spent(0.1, 0.0), Spent(0.5, 0.0))
            with lock:
                ok.append(f"t{i % 10}")
        except DisclosureRisk:
            with lock:
                refused.append(f"t{i % 10}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.spent("r", "s").epsilon == pytest.approx(0.5)
    assert len(set(ok)) == 5
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(charges)).scalar() == 5


def test_release_log_keeps_distinct_cohorts_per_researcher(engine: Engine) -> None:
    log = SqlReleaseLog(engine)
    a = frozenset({"p1", "p2", "p3"})
    b = frozenset({"p1", "p2", "p3", "p4"})
    log.record("r", a)
    log.record("r", a)
    log.record("r", b)
    log.record("r", frozenset())
    log.record("q", frozenset({"中文-id"}))
    assert sorted(log.released("r"), key=len) == [frozenset(), a, b]
    assert SqlReleaseLog(engine).released("q") == [frozenset({"中文-id"})]
    assert log.released("nobody") == []
