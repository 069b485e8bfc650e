"""THE shared NodeData contract suite: every NodeData implementation must pass it.

Use it by subclassing :class:`NodeDataContract` in a ``Test...`` class and providing a ``make``
fixture returning ``make(resources) -> NodeData`` (resources are loaded in order; a later version
of the same ``resourceType/id`` replaces the earlier one). Optionally override the
``make_deleted`` fixture, ``make_deleted(resources, deleted) -> NodeData`` where ``deleted`` are
``Type/id`` references deleted after loading (the default drops them before ``make``)::

    class TestSqliteNodeData(NodeDataContract):
        @pytest.fixture
        def make(self, tmp_path):
            return lambda resources: load_into_sqlite(tmp_path, resources)

Expected values are worked out by hand from ``contract_resources.py`` (comments say how).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from healthmesh.analytics.cohort import Cohort
from healthmesh.analytics.data import NodeData
from healthmesh.errors import InvalidInput

from .contract_resources import AGES, ATC, ELIGIBLE, GLUCOSE, HBA1C, ICD10, RESOURCES

Make = Callable[[list[dict[str, Any]]], NodeData]
MakeDeleted = Callable[[list[dict[str, Any]], Sequence[str]], NodeData]


def cohort(include: list[dict[str, Any]] | None = None, exclude: list[dict[str, Any]] | None = None, **kw: Any) -> Cohort:
    return Cohort.model_validate({"include": include or [], "exclude": exclude or [], **kw})


def var(**kw: Any) -> Any:
    from pydantic import TypeAdapter

    from healthmesh.analytics.cohort import Variable

    return TypeAdapter(Variable).validate_python(kw)


E11 = {"kind": "condition", "codes": [f"{ICD10}|E11*"]}
AGE = var(kind="age", name="age")
SEX = var(kind="sex", name="sex")
T2D = var(kind="condition", name="t2d", codes=[f"{ICD10}|E11*"])
METFORMIN = var(kind="medication", name="metformin", codes=[f"{ATC}|A10BA02"])
SURV = var(kind="survival", name="surv", start_codes=[f"{ICD10}|E11*"], censor_date="2025-12-31")


def hba1c(pick: str) -> Any:
    return var(kind="observation", name="hba1c", codes=[HBA1C], pick=pick)


class NodeDataContract:
    """Abstract: subclasses provide the ``make`` fixture."""

    @pytest.fixture
    def make(self) -> Make:
        raise NotImplementedError("provide a make fixture")

    @pytest.fixture
    def make_deleted(self, make: Make) -> MakeDeleted:
        def build(resources: list[dict[str, Any]], deleted: Sequence[str]) -> NodeData:
            gone = set(deleted)
            return make([r for r in resources if f"{r['resourceType']}/{r['id']}" not in gone])

        return build

    @pytest.fixture
    def data(self, make: Make) -> NodeData:
        return make(RESOURCES)

    # ---- cohorts: consent ----------------------------------------------------------------

    def test_everyone_but_refusers(self, data: NodeData) -> None:
        assert data.members(cohort()) == ELIGIBLE
        assert data.count(cohort()) == 10

    def test_refusers_never_counted_even_when_matching(self, data: NodeData) -> None:
        # p06 and p08 have E11 conditions but refused research use
        assert data.members(cohort([E11])) == {"p01", "p02", "p07", "p10", "p12"}

    # ---- conditions ----------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("codes", "expected"),
        [
            ([f"{ICD10}|E11"], {"p12"}),  # exact; c04 (refuted) ignored
            (["E11"], {"p04", "p12"}),  # bare code: any system (c04b local)
            (["|E11"], {"p04", "p12"}),
            ([f"{ICD10}|E11*"], {"p01", "p02", "p07", "p10", "p12"}),
            (["E11.*"], {"p01", "p02", "p07", "p10"}),
            ([f"{ICD10}|I10", "http://example.org/local|E11"], {"p03", "p05", "p04"}),
            (["http://example.org/other|E11*"], set()),
        ],
    )
    def test_condition_codes(self, data: NodeData, codes: list[str], expected: set[str]) -> None:
        assert data.members(cohort([{"kind": "condition", "codes": codes}])) == expected

    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            ("2019-01-01", "2020-12-31", {"p01", "p02"}),  # c02 dated by recordedDate
            ("2021-01-01", None, {"p07"}),
            (None, "2018-01-01", {"p12"}),  # inclusive end
            ("2022-02-02", "2022-02-02", {"p07"}),  # date as written (+08:00), not UTC
            (None, "2022-02-01", {"p01", "p02", "p12"}),
        ],
    )
    def test_condition_window(self, data: NodeData, start: str | None, end: str | None, expected: set[str]) -> None:
        crit = {**E11, "start": start, "end": end}
        assert data.members(cohort([crit])) == expected  # p10's undated one never in a window

    def test_partial_date_is_first_day(self, data: NodeData) -> None:
        crit = {"kind": "condition", "codes": [f"{ICD10}|I10"], "start": "2021-01-01", "end": "2021-01-01"}
        assert data.members(cohort([crit])) == {"p03"}

    # ---- medications, observations, encounters --------------------------------------------

    @pytest.mark.parametrize(
        ("codes", "start", "end", "expected"),
        [
            ([f"{ATC}|A10BA02"], None, None, {"p01", "p05"}),  # request + dispense; m07 in error
            ([f"{ATC}|A10*"], None, None, {"p01", "p05"}),
            (["C09*"], None, None, {"p03"}),
            ([f"{ATC}|A10BA02"], "2022-01-01", "2022-12-31", {"p05"}),
            ([f"{ATC}|A10BA02"], "2020-03-02", "2020-03-02", {"p01"}),
        ],
    )
    def test_medication(self, data: NodeData, codes: list[str], start: str | None, end: str | None, expected: set[str]) -> None:
        crit = {"kind": "medication", "codes": codes, "start": start, "end": end}
        assert data.members(cohort([crit])) == expected

    @pytest.mark.parametrize(
        ("extra", "expected"),
        [
            ({}, {"p01", "p02", "p07"}),
            ({"min": 8.0}, {"p01", "p02"}),
            ({"max": 6.0}, set()),  # o07's first version (5.0) was replaced by 6.5
            ({"max": 6.5}, {"p01", "p07"}),  # o01c undated counts without a window
            ({"min": 7.1, "max": 7.1}, {"p01"}),
            ({"start": "2022-01-01", "end": "2022-12-31"}, {"p01", "p07"}),
            ({"start": "2020-02-02", "end": "2020-02-02"}, {"p02"}),  # dated by issued
        ],
    )
    def test_observation(self, data: NodeData, extra: dict[str, Any], expected: set[str]) -> None:
        crit = {"kind": "observation", "codes": [HBA1C], **extra}
        assert data.members(cohort([crit])) == expected

    def test_observation_in_error_and_non_numeric(self, data: NodeData) -> None:
        glucose = {"kind": "observation", "codes": [GLUCOSE]}
        assert data.members(cohort([glucose])) == {"p03", "p11"}  # o11c (string) counts unbounded
        assert data.members(cohort([{**glucose, "min": 95}])) == set()  # o03a in error
        assert data.members(cohort([{**glucose, "min": 100}])) == set()
        assert data.members(cohort([{**glucose, "start": "2024-02-01", "min": 0}])) == set()

    @pytest.mark.parametrize(
        ("extra", "expected"),
        [
            ({}, {"p01", "p05", "p10"}),  # e03 in error; e10 undated
            ({"start": "2020-01-01", "end": "2022-12-31"}, {"p01", "p05"}),
            ({"classes": ["IMP"]}, {"p05"}),
            ({"classes": ["AMB", "EMER"]}, {"p01", "p10"}),
            ({"start": "2022-05-01", "classes": ["IMP", "AMB"]}, {"p05"}),
        ],
    )
    def test_encounter(self, data: NodeData, extra: dict[str, Any], expected: set[str]) -> None:
        assert data.members(cohort([{"kind": "encounter", **extra}])) == expected

    # ---- age, sex, exclusion ----------------------------------------------------------------

    @pytest.mark.parametrize(
        ("extra", "ref", "expected"),
        [
            ({"min": 60}, "2026-01-01", {"p01", "p02", "p10", "p12"}),
            ({"max": 30}, "2026-01-01", {"p05", "p11"}),
            ({"min": 66, "max": 66}, "2026-01-01", {"p02"}),  # birthday on the reference date
            ({"min": 45, "max": 45}, "2025-03-01", {"p03"}),  # 29 February birthday
            ({"min": 45, "max": 45}, "2025-02-28", set()),
            ({}, "2026-01-01", ELIGIBLE - {"p04"}),  # no birthDate matches no age criterion
        ],
    )
    def test_age(self, data: NodeData, extra: dict[str, Any], ref: str, expected: set[str]) -> None:
        assert data.members(cohort([{"kind": "age", **extra}], reference_date=ref)) == expected

    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            (["female"], {"p01", "p03", "p11"}),
            (["male"], {"p02", "p04", "p07", "p09", "p12"}),
            (["unknown"], {"p05"}),  # missing gender
            (["other", "unknown"], {"p05", "p10"}),
        ],
    )
    def test_sex(self, data: NodeData, values: list[str], expected: set[str]) -> None:
        assert data.members(cohort([{"kind": "sex", "values": values}])) == expected

    def test_include_and_exclude(self, data: NodeData) -> None:
        metformin = {"kind": "medication", "codes": ["A10*"]}
        assert data.members(cohort([E11], [metformin])) == {"p02", "p07", "p10", "p12"}
        assert data.members(cohort([], [{"kind": "age", "min": 0}])) == {"p04"}
        assert data.members(cohort([E11, {"kind": "sex", "values": ["male"]}])) == {"p02", "p07", "p12"}
        assert data.count(cohort([E11], [E11])) == 0

    def test_deleted_resources_do_not_count(self, make_deleted: MakeDeleted) -> None:
        data = make_deleted(RESOURCES, ["Patient/p12", "Condition/c01", "Consent/k07b"])
        # p12 gone, p01 lost its condition, p07's permit gone so its deny stands
        assert data.members(cohort([E11])) == {"p02", "p10"}
        assert data.count(cohort()) == 8

    # ---- variables -------------------------------------------------------------------------

    def test_crosstab_one_and_two_variables(self, data: NodeData) -> None:
        assert data.crosstab(cohort(), [SEX]) == {("female",): 3, ("male",): 5, (None,): 2}
        assert data.crosstab(cohort(), [SEX, T2D]) == {
            ("female", 1.0): 1, ("female", 0.0): 2, ("male", 1.0): 3, ("male", 0.0): 2,
            (None, 0.0): 1, (None, 1.0): 1,
        }
        levels = var(kind="sex", name="sex", levels=["female", "male", "other", "unknown"])
        assert data.crosstab(cohort([E11]), [levels, METFORMIN]) == {
            ("female", 1.0): 1, ("male", 0.0): 3, ("other", 0.0): 1,
        }

    def test_crosstab_numeric_and_missing(self, data: NodeData) -> None:
        got = data.crosstab(cohort([E11]), [hba1c("last"), T2D, METFORMIN])
        assert got == {(8.2, 1.0, 1.0): 1, (9.0, 1.0, 0.0): 1, (6.5, 1.0, 0.0): 1, (None, 1.0, 0.0): 2}

    def test_crosstab_refuses_bad_variables(self, data: NodeData) -> None:
        with pytest.raises(InvalidInput):
            data.crosstab(cohort(), [SURV])
        with pytest.raises(InvalidInput):
            data.crosstab(cohort(), [])
        with pytest.raises(InvalidInput):
            data.crosstab(cohort(), [SEX, T2D, METFORMIN, AGE])

    def test_moments_of_age(self, data: NodeData) -> None:
        m = data.moments(cohort(), AGE)
        ages = list(AGES.values())
        assert m.n == 9
        assert m.total == pytest.approx(473)
        assert m.total_sq == pytest.approx(sum(a * a for a in ages))
        assert (m.min, m.max) == (25, 80)

    @pytest.mark.parametrize(
        ("pick", "p01"),
        [("last", 8.2), ("first", 6.5), ("mean", (7.1 + 8.2 + 6.5) / 3), ("min", 6.5), ("max", 8.2)],
    )
    def test_observation_pick(self, data: NodeData, pick: str, p01: float) -> None:
        m = data.moments(cohort(), hba1c(pick))
        assert m.n == 3  # p01, p02, p07
        assert m.total == pytest.approx(p01 + 9.0 + 6.5, rel=1e-12)
        assert m.total_sq == pytest.approx(p01**2 + 81.0 + 6.5**2, rel=1e-12)

    def test_observation_order_by_instant_and_window(self, data: NodeData) -> None:
        # o11a (2024-01-01T23:00-05:00) is later than o11b (2024-01-02T02:00Z)
        last = data.moments(cohort([{"kind": "sex", "values": ["female"]}]), var(kind="observation", name="g", codes=[GLUCOSE]))
        assert (last.n, last.total) == (2, pytest.approx(90 + 5.0))
        first = var(kind="observation", name="g", codes=[GLUCOSE], pick="first")
        assert data.moments(cohort(), first).total == pytest.approx(90 + 6.0)
        window = var(kind="observation", name="g", codes=[GLUCOSE], start="2024-01-02", end="2024-01-02")
        m = data.moments(cohort(), window)
        assert (m.n, m.total) == (1, pytest.approx(6.0))

    def test_binary_moments(self, data: NodeData) -> None:
        m = data.moments(cohort(), METFORMIN)
        assert (m.n, m.total, m.total_sq) == (10, pytest.approx(2), pytest.approx(2))

    def test_empty_cohort(self, data: NodeData) -> None:
        none = cohort([{"kind": "age", "min": 200}])
        m = data.moments(none, AGE)
        assert (m.n, m.total, m.min, m.max) == (0, 0, None, None)
        assert data.crosstab(none, [SEX]) == {}
        assert data.histogram(none, AGE, [0, 100]) == [0]
        names, x = data.matrix(none, [AGE, SEX])
        assert names == ["age", "sex_male"] and x.shape == (0, 2)
        assert data.cross_moments(none, [AGE]).n == 0

    def test_moments_refuse_non_numeric(self, data: NodeData) -> None:
        for v in (SEX, SURV):
            with pytest.raises(InvalidInput):
                data.moments(cohort(), v)

    @pytest.mark.parametrize(
        ("edges", "expected"),
        [([0, 30, 60, 80], [2, 3, 4]), ([30, 60], [3]), ([0, 25, 26], [0, 2]), ([81, 90], [0])],
    )
    def test_histogram(self, data: NodeData, edges: list[float], expected: list[int]) -> None:
        assert data.histogram(cohort(), AGE, edges) == expected

    @pytest.mark.parametrize("edges", [[1], [], [5, 5], [3, 2], [0, math.inf]])
    def test_histogram_bad_edges(self, data: NodeData, edges: list[float]) -> None:
        with pytest.raises(InvalidInput):
            data.histogram(cohort(), AGE, edges)

    def test_count_le(self, data: NodeData) -> None:
        assert data.count_le(cohort(), AGE, [25, 26, 49.5, 100, 0]) == [1, 2, 4, 9, 0]
        assert data.count_le(cohort(), hba1c("last"), [6.5, 8.2]) == [1, 2]

    def test_matrix_complete_cases_in_id_order(self, data: NodeData) -> None:
        names, x = data.matrix(cohort(), [AGE, hba1c("last")])
        assert names == ["age", "hba1c"]
        np.testing.assert_allclose(x, [[75, 8.2], [66, 9.0], [50, 6.5]])
        names, x = data.matrix(cohort(), [SEX, T2D])
        assert names == ["sex_male", "t2d"]
        np.testing.assert_array_equal(x, [[0, 1], [1, 1], [0, 0], [1, 0], [1, 1], [1, 0], [0, 0], [1, 1]])

    def test_survival(self, data: NodeData) -> None:
        names, x = data.matrix(cohort(), [SURV])
        assert names == ["surv_time", "surv_event"]
        censor = dt.date(2025, 12, 31)
        expected = [
            [(censor - dt.date(2020, 3, 1)).days, 0],  # p01 alive
            [(dt.date(2023, 6, 1) - dt.date(2019, 5, 5)).days, 1],  # p02 died
            [(censor - dt.date(2022, 2, 2)).days, 0],  # p07 died after the censor date
        ]  # p10: undated start; p12: deceasedBoolean without a date
        np.testing.assert_array_equal(x, expected)
        early = var(kind="survival", name="s", start_codes=[f"{ICD10}|I10"], censor_date="2022-01-01")
        _, y = data.matrix(cohort(), [early])  # p05 starts after the censor date: missing
        np.testing.assert_array_equal(y, [[365, 0]])

    def test_cross_moments_agree_with_matrix(self, data: NodeData) -> None:
        variables = [AGE, SEX, T2D, METFORMIN]
        cm = data.cross_moments(cohort(), variables)
        names, x = data.matrix(cohort(), variables)
        assert cm.names == names == ["age", "sex_male", "t2d", "metformin"]
        assert cm.n == x.shape[0] == 7  # p04 no age, p05 and p10 no listed sex
        np.testing.assert_allclose(cm.sums, x.sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(cm.products, x.T @ x, rtol=1e-12)

    def test_design_refuses_duplicate_columns(self, data: NodeData) -> None:
        with pytest.raises(InvalidInput):
            data.matrix(cohort(), [AGE, AGE])
        with pytest.raises(InvalidInput):
            data.cross_moments(cohort(), [])
