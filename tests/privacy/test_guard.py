"""The release guard: every rule refuses what it must, with the rule's name and no data, and
lets through what it may."""

from __future__ import annotations

from typing import Any

import pytest

from healthmesh.analytics.local import run_local
from healthmesh.analytics.memory_data import ResourceData
from healthmesh.analytics.registry import BUILTINS
from healthmesh.errors import DisclosureRisk, InvalidInput
from healthmesh.privacy import Guard, MemoryBudgetStore, MemoryReleaseLog, PrivacyPolicy, Spent

from ..analytics.contract_resources import ICD10, condition, patient


def guard(policy: PrivacyPolicy | None = None, *, task: str = "t1", log: Any = None, budget: Any = None, researcher: str = "r1") -> Guard:
    return Guard(
        policy or PrivacyPolicy(),
        researcher=researcher,
        study="s1",
        task_id=task,
        log=log if log is not None else MemoryReleaseLog(),
        budget=budget if budget is not None else MemoryBudgetStore(),
    )


def ids(n: int, start: int = 0) -> frozenset[str]:
    return frozenset(f"p{i:03d}" for i in range(start, start + n))


# ---- minimum cell size --------------------------------------------------------------------


@pytest.mark.parametrize(("size", "ok"), [(0, True), (1, False), (4, False), (5, True), (500, True)])
def test_cohort_min_cell(size: int, ok: bool) -> None:
    g = guard()
    if ok:
        g.cohort(ids(size))
    else:
        with pytest.raises(DisclosureRisk, match=r"^min-cell-size") as err:
            g.cohort(ids(size))
        assert "p0" not in err.value.message


def test_cells_rule_and_configured_minimum() -> None:
    g = guard()
    g.cells([0, 5, 120], what="histogram bin")
    with pytest.raises(DisclosureRisk, match=r"^min-cell-size: a histogram bin count"):
        g.cells([10, 3, 0], what="histogram bin")
    g3 = guard(PrivacyPolicy(min_cell=3))
    assert g3.min_cell == 3
    g3.cells([3, 4], what="cell")
    with pytest.raises(DisclosureRisk):
        g3.cells([2], what="cell")


# ---- GLM ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "p", "ok"), [(100, 33, True), (100, 34, False), (10, 3, True), (10, 4, False)])
def test_glm_parameters(n: int, p: int, ok: bool) -> None:
    g = guard()
    if ok:
        g.glm(n, p)
    else:
        with pytest.raises(DisclosureRisk, match=r"^glm-parameters"):
            g.glm(n, p)


# ---- differencing ----------------------------------------------------------------------------


def test_differencing_rule() -> None:
    log = MemoryReleaseLog()
    g = guard(log=log)
    g.cohort(ids(50))
    g.cohort(ids(50))  # the same cohort again: nothing new learnt
    g.cohort(ids(45))  # differs by 5: allowed
    with pytest.raises(DisclosureRisk, match=r"^differencing") as err:
        g.cohort(ids(49))  # differs from the first by 1 (and from the third by 4)
    assert "p0" not in err.value.message
    with pytest.raises(DisclosureRisk, match=r"^differencing"):
        g.cohort(ids(50) | {"x1", "x2"})  # additions count too
    # another researcher's history does not count; a later task of the same researcher does
    guard(log=log, researcher="r2").cohort(ids(49))
    with pytest.raises(DisclosureRisk, match=r"^differencing"):
        guard(log=log, task="t2").cohort(ids(49))
    guard(PrivacyPolicy(differencing=False), log=log).cohort(ids(48))


def _hospital() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(40):
        pid = f"h{i:02d}"
        # the target, h07, is the only diabetic born in 1961
        out.append(patient(pid, "female" if i % 2 else "male", "1961-04-04" if i == 7 else f"{1950 + i % 10}-06-01"))
        if i % 3 == 1:
            out.append(condition(f"{pid}-c", pid, ICD10, "E11.9", onsetDateTime="2020-01-01"))
    return out


def test_differencing_attack_refused() -> None:
    """Count diabetics, then diabetics not born in 1961: the difference would reveal whether the
    one patient born in 1961 has diabetes. The second count is refused at the node."""
    data = {"hospital": ResourceData(_hospital())}
    log, budget = MemoryReleaseLog(), MemoryBudgetStore()

    def factory(task: str) -> Any:
        return lambda node: guard(task=task, log=log, budget=budget)

    diabetics = {"include": [{"kind": "condition", "codes": [f"{ICD10}|E11*"]}]}
    first = run_local(BUILTINS["count"], {"cohort": diabetics}, data, guard_factory=factory("t1"))
    assert first.result["n"] == 13 and first.refused == {}
    minus_one = {**diabetics, "exclude": [{"kind": "age", "min": 64, "max": 64}], "reference_date": "2026-01-01"}
    with pytest.raises(DisclosureRisk, match=r"^differencing: no node released"):
        run_local(BUILTINS["count"], {"cohort": minus_one}, data, guard_factory=factory("t2"))
    # also refused when hidden in the criteria of one count job
    with pytest.raises(DisclosureRisk, match="differencing"):
        run_local(BUILTINS["count"], {"cohort": diabetics, "criteria": [{"kind": "sex", "values": ["male", "female"]}, {"kind": "age", "min": 65}]}, data, guard_factory=factory("t3"))


# ---- differential privacy and budgets ------------------------------------------------------


def dp_policy(**dp: Any) -> PrivacyPolicy:
    return PrivacyPolicy.parse({"dp": {"epsilon": 0.25, "epsilon_cap": 1.0, **dp}})


def test_without_dp_releases_are_exact_and_free() -> None:
    budget = MemoryBudgetStore()
    g = guard(budget=budget)
    assert g.release_counts([3, 7]) == [3.0, 7.0]
    assert g.release_sums([1.5], bound=10) == [1.5]
    assert g.release_count(12) == 12.0
    assert budget.spent("r1", "s1") == Spent()


def test_dp_release_is_noised_and_charged() -> None:
    budget = MemoryBudgetStore()
    g = guard(dp_policy(), budget=budget)
    draws = g.release_counts([1000] * 50, sensitivity=50)  # one release, one charge
    assert budget.spent("r1", "s1").epsilon == pytest.approx(0.25)
    assert all(d == round(d) for d in draws) and len(set(draws)) > 5  # scale 200
    g.release_count(1000)
    g.release_count(1000)
    assert budget.spent("r1", "s1").epsilon == pytest.approx(0.75)
    g.release_sums([10.0, 20.0], bound=5)  # the fourth quarter
    with pytest.raises(DisclosureRisk, match=r"^privacy-budget"):
        g.release_counts([1000, 2000])  # a fifth would pass the cap
    with pytest.raises(DisclosureRisk, match=r"^privacy-budget"):
        g.release_count(1)
    assert budget.spent("r1", "s1").epsilon == pytest.approx(1.0)


def test_same_task_is_not_charged_twice() -> None:
    budget = MemoryBudgetStore()
    for _ in range(3):  # the task re-delivered and recomputed
        g = guard(dp_policy(), task="task-42", budget=budget)
        g.release_count(100)
        g.release_counts([1, 2, 3], sensitivity=3)
    assert budget.spent("r1", "s1").epsilon == pytest.approx(0.5)
    guard(dp_policy(), task="task-43", budget=budget).release_count(100)
    assert budget.spent("r1", "s1").epsilon == pytest.approx(0.75)


def test_gaussian_charges_delta() -> None:
    budget = MemoryBudgetStore()
    g = guard(dp_policy(mechanism="gaussian", delta=4e-6, delta_cap=1e-5), budget=budget)
    g.release_count(50)
    g.release_count(50)
    assert budget.spent("r1", "s1") == Spent(pytest.approx(0.5), pytest.approx(8e-6))  # type: ignore[arg-type]
    with pytest.raises(DisclosureRisk, match=r"^privacy-budget"):
        g.release_count(50)  # delta would pass its cap first


def test_dp_sums_need_a_bound() -> None:
    budget = MemoryBudgetStore()
    g = guard(dp_policy(), budget=budget)
    with pytest.raises(InvalidInput):
        g.release_sums([1.0], bound=float("inf"))
    assert budget.spent("r1", "s1") == Spent()


def test_dp_moments_through_the_federation() -> None:
    """With DP at the node, moments need a bound; released figures are noisy, near the truth."""
    data = {"hospital": ResourceData(_hospital())}
    budget = MemoryBudgetStore()
    policy = PrivacyPolicy.parse({"dp": {"epsilon": 1.0, "epsilon_cap": 10.0}})
    factory = lambda node: guard(policy, task="m1", budget=budget)  # noqa: E731
    age = {"kind": "age", "name": "age"}
    with pytest.raises(InvalidInput):
        run_local(BUILTINS["moments"], {"variable": age}, data, guard_factory=factory)
    run = run_local(BUILTINS["moments"], {"variable": age, "bound": 120}, data, guard_factory=factory)
    assert abs(run.result["n"] - 40) < 40 and run.result["mean"] is not None
    assert budget.spent("r1", "s1").epsilon == pytest.approx(2.0)  # n and the sums


def test_exact_models_refused_where_dp_is_required() -> None:
    """A node whose policy requires DP refuses computations that have no DP form (GLM, KM,
    Cox): the rule is named, nothing is released and nothing is charged."""
    assert guard().exact("a GLM fit") is None
    strict = PrivacyPolicy.parse({"dp": {"epsilon": 0.5}})
    with pytest.raises(DisclosureRisk, match=r"^dp-required"):
        guard(strict).exact("a GLM fit")
    data = {"hospital": ResourceData(_hospital()), "clinic": ResourceData(_hospital())}
    budget = MemoryBudgetStore()
    factory = lambda node: guard(strict if node == "hospital" else None, task="g1", budget=budget)  # noqa: E731
    params = {
        "family": "binomial",
        "outcome": {"kind": "condition", "name": "diabetes", "codes": [f"{ICD10}|E11*"]},
        "covariates": [{"kind": "age", "name": "age"}],
    }
    run = run_local(BUILTINS["glm"], params, data, guard_factory=factory)
    assert run.refused == {"hospital": "dp-required"}
    assert run.result["n"] == 40  # the clinic alone
    assert budget.spent("r1", "s1").epsilon == 0


def test_external_charge_uses_the_policy_caps_once_per_task() -> None:
    """A loss accounted elsewhere (a DP training run) is charged against the node's caps."""
    budget = MemoryBudgetStore()
    policy = PrivacyPolicy.parse({"dp": {"epsilon": 0.5, "epsilon_cap": 2.0, "delta_cap": 5e-3}})
    guard(policy, task="fl1", budget=budget).charge(1.5, 1e-3)
    guard(policy, task="fl1", budget=budget).charge(1.5, 1e-3)  # re-delivered: not again
    assert budget.spent("r1", "s1") == Spent(1.5, 1e-3)
    with pytest.raises(DisclosureRisk, match="privacy-budget"):
        guard(policy, task="fl2", budget=budget).charge(1.0, 1e-3)
    assert budget.spent("r1", "s1") == Spent(1.5, 1e-3)
    with pytest.raises(DisclosureRisk, match="privacy-budget"):  # default caps: delta 1e-5
        guard(None, task="fl3").charge(0.5, 1e-3)
