"""``ResourceData``: the normative :class:`~healthmesh.analytics.data.NodeData` over FHIR R4
resources held in memory.

It defines what every cohort criterion and analysis variable means (with
:mod:`healthmesh.analytics.resource_fields` and :mod:`healthmesh.analytics.consent`); the SQL
implementation at the node is checked against it by ``tests/analytics/data_contract.py``, and
pooled-equality tests run federated algorithms over several of these.

Reading rules beyond :mod:`healthmesh.analytics.cohort`:

- Only current resources are given; a deleted resource is simply absent. Later versions of the
  same ``resourceType/id`` replace earlier ones.
- Criteria: a patient without ``birthDate`` matches no age criterion; an observation criterion
  without ``min``/``max`` matches any such Observation, with bounds only one whose
  ``valueQuantity.value`` is inside them (inclusive); an encounter's class is ``class.code``.
- Variables: only Observations with a numeric ``valueQuantity.value`` give values; ``first`` /
  ``last`` order by instant (undated first), ties by resource id. Survival: the start is the
  earliest dated matching Condition (undated ones are not read); ``deceasedBoolean`` true without
  a date makes the patient missing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from healthmesh.analytics import variables as V
from healthmesh.analytics.cohort import (
    AgeCriterion,
    Cohort,
    ConditionCriterion,
    Criterion,
    EncounterCriterion,
    MedicationCriterion,
    ObservationCriterion,
    SexCriterion,
    Variable,
)
from healthmesh.analytics.consent import refused_research
from healthmesh.analytics.data import CellKey, CrossMoments, Moments
from healthmesh.analytics.resource_fields import (
    Resource,
    age_years,
    entered_in_error,
    has_code,
    in_window,
    parse_date,
    patient_id,
    quantity_value,
    resource_date,
)

_CLINICAL = ("Condition", "Observation", "MedicationRequest", "MedicationDispense", "Encounter")


class ResourceData:
    """NodeData over an iterable of FHIR resources (dicts), indexed by patient once."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        latest: dict[tuple[str, str], Resource] = {}
        for res in resources:
            rtype, rid = res.get("resourceType"), res.get("id")
            if isinstance(rtype, str) and isinstance(rid, str):
                latest[(rtype, rid)] = res
        self._patients: dict[str, Resource] = {}
        self._by_patient: dict[str, dict[str, list[Resource]]] = defaultdict(
            lambda: defaultdict(list)
        )
        consents: list[Resource] = []
        for (rtype, rid), res in sorted(latest.items()):
            if rtype == "Patient":
                self._patients[rid] = res
            elif rtype == "Consent":
                consents.append(res)
            elif rtype in _CLINICAL and not entered_in_error(res):
                pid = patient_id(res)
                if pid is not None:
                    self._by_patient[pid][rtype].append(res)
        refused = refused_research(consents)
        self._eligible = sorted(pid for pid in self._patients if pid not in refused)
        # the data never change after construction: cohorts and values are cached by their JSON
        self._members: dict[str, frozenset[str]] = {}
        self._rows: dict[tuple[str, ...], list[list[V.Value]]] = {}

    # ---- what a patient has -------------------------------------------------------------

    def resources_of(self, pid: str, *types: str) -> list[Resource]:
        """The patient's (not-in-error) resources of the given types."""
        found = self._by_patient.get(pid)
        return [r for t in types for r in (found.get(t, []) if found else [])]

    def patient(self, pid: str) -> Resource:
        """The Patient resource."""
        return self._patients[pid]

    def _coded(self, pid: str, types: tuple[str, ...], crit: V.Coded) -> list[Resource]:
        return [
            r
            for r in self.resources_of(pid, *types)
            if has_code(r, crit.codes) and in_window(resource_date(r), crit.start, crit.end)
        ]

    def _matches(self, pid: str, crit: Criterion, ref: dt.date) -> bool:
        if isinstance(crit, ConditionCriterion):
            return bool(self._coded(pid, ("Condition",), crit))
        if isinstance(crit, MedicationCriterion):
            return bool(self._coded(pid, V.MEDICATION_TYPES, crit))
        if isinstance(crit, ObservationCriterion):
            for obs in self._coded(pid, ("Observation",), crit):
                if crit.min is None and crit.max is None:
                    return True
                value = quantity_value(obs)
                if value is not None and V.in_range(value, crit.min, crit.max):
                    return True
            return False
        if isinstance(crit, EncounterCriterion):
            return any(
                in_window(resource_date(e), crit.start, crit.end)
                and (not crit.classes or V.encounter_class(e) in crit.classes)
                for e in self.resources_of(pid, "Encounter")
            )
        if isinstance(crit, AgeCriterion):
            birth = parse_date(self._patients[pid].get("birthDate"))
            if birth is None:
                return False
            return V.in_range(age_years(birth, ref), crit.min, crit.max)
        if isinstance(crit, SexCriterion):
            return V.gender(self._patients[pid]) in crit.values
        raise TypeError(f"unknown criterion {type(crit).__name__}")

    # ---- NodeData -----------------------------------------------------------------------

    def members(self, cohort: Cohort) -> frozenset[str]:
        """Ids of the cohort's patients."""
        key = cohort.model_dump_json()
        if key not in self._members:
            ref = cohort.reference_date
            self._members[key] = frozenset(
                pid
                for pid in self._eligible
                if all(self._matches(pid, c, ref) for c in cohort.include)
                and not any(self._matches(pid, c, ref) for c in cohort.exclude)
            )
        return self._members[key]

    def count(self, cohort: Cohort) -> int:
        """Number of the cohort's patients."""
        return len(self.members(cohort))

    def _values(self, cohort: Cohort, variables: Sequence[Variable]) -> list[list[V.Value]]:
        key = (cohort.model_dump_json(), *(v.model_dump_json() for v in variables))
        if key not in self._rows:
            pids = sorted(self.members(cohort))
            self._rows[key] = V.rows(self, pids, variables, cohort.reference_date)
        return self._rows[key]

    def crosstab(self, cohort: Cohort, variables: Sequence[Variable]) -> dict[CellKey, int]:
        """Counts by value combination (non-empty cells only; None = missing)."""
        V.check_crosstab(variables)
        cells: dict[CellKey, int] = defaultdict(int)
        for row in self._values(cohort, variables):
            cells[tuple(v for v in row if not isinstance(v, tuple))] += 1
        return dict(cells)

    def _numeric(self, cohort: Cohort, variable: Variable) -> list[float]:
        V.check_numeric(variable)
        return [v[0] for v in self._values(cohort, [variable]) if isinstance(v[0], float)]

    def moments(self, cohort: Cohort, variable: Variable) -> Moments:
        """n, sum, sum of squares, min, max of the non-missing values."""
        return V.moments_of(self._numeric(cohort, variable))

    def histogram(self, cohort: Cohort, variable: Variable, edges: Sequence[float]) -> list[int]:
        """Counts per bin [e_i, e_i+1), the last bin closed."""
        return V.histogram_of(self._numeric(cohort, variable), edges)

    def count_le(
        self, cohort: Cohort, variable: Variable, thresholds: Sequence[float]
    ) -> list[int]:
        """Number of non-missing values <= each threshold."""
        return V.count_le_of(self._numeric(cohort, variable), thresholds)

    def cross_moments(self, cohort: Cohort, variables: Sequence[Variable]) -> CrossMoments:
        """Sums and cross products over complete cases."""
        names, x = self.matrix(cohort, variables)
        return V.cross_moments_of(names, x)

    def matrix(
        self, cohort: Cohort, variables: Sequence[Variable]
    ) -> tuple[list[str], npt.NDArray[np.float64]]:
        """Complete-case design, rows by patient id, columns as ``cohort.columns``."""
        names = V.check_design(variables)
        rows = [V.expand(variables, r) for r in self._values(cohort, variables)]
        complete = [r for r in rows if r is not None]
        x = np.array(complete, dtype=np.float64).reshape(len(complete), len(names))
        return names, x
