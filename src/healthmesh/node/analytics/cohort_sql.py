"""Compile a :class:`~healthmesh.analytics.cohort.Cohort` to one SQL query of patients.

Each criterion becomes an uncorrelated ``IN (subquery)`` driven by the most selective index
(codes through the token index, ages through a birth-date range, sex through the gender
token), so the database reads only the index rows of matching resources, never resource JSON
except for the few dates the index cannot decide (see :mod:`.resources`) and the provision
type of active research Consents (not indexed). Research-consent refusals follow
:mod:`healthmesh.analytics.consent` and are applied to every cohort.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import CTE, Select, and_, exists, false, or_, select, true
from sqlalchemy.sql.expression import ColumnElement

from healthmesh.analytics.cohort import (
    AgeCriterion,
    Cohort,
    ConditionCriterion,
    Criterion,
    EncounterCriterion,
    MedicationCriterion,
    ObservationCriterion,
    SexCriterion,
)
from healthmesh.analytics.consent import RESEARCH_SCOPE
from healthmesh.fhir.store import schema
from healthmesh.node.analytics.resources import DATE, DAY, REF, TOK, ResourceSql
from healthmesh.node.analytics.sqlfuncs import json_text

R = schema.resource
MEDICATION_TYPES = ("MedicationRequest", "MedicationDispense")
KNOWN_SEXES = ("female", "male", "other")
NO_BIRTH = -1e15  # before any representable birth date


def _latest_on_or_before(year: int, month: int, day: int) -> dt.date | None:
    """The latest valid date not after (year, month, day); None before year 1."""
    if year < 1:
        return None
    if year > 9999:
        return dt.date.max
    while True:
        try:
            return dt.date(year, month, day)
        except ValueError:
            day -= 1  # 29 February in a common year


def _lid(patient: Any) -> ColumnElement[Any]:
    """The patient's lid as a value, not an index key: ``lid + 0`` keeps SQLite scanning the
    covering (res_type, res_id) index and probing the criterion's list, instead of fetching
    table rows (with their JSON) by rowid for every listed lid."""
    return patient.c.lid + 0  # type: ignore[no-any-return]


def _seconds(day: dt.date) -> float:
    return (day - dt.date(1970, 1, 1)).days * DAY


class CohortSql:
    """Builds the patient query of cohorts over one store."""

    def __init__(self, store: Any) -> None:
        self.res = ResourceSql(store)

    # -- consent -----------------------------------------------------------------------------
    def refused(self) -> Select[Any]:
        """Ids of patients refused by their research consents (latest decision wins; on equal
        dateTimes deny wins; an undated deny stands; an undated permit overrides nothing)."""
        res = self.res
        status, scope, ref = TOK.alias(), TOK.alias(), REF.alias()
        d, r = DATE.alias(), R.alias()
        kind = json_text(r.c.content, "provision.type")
        consents = (
            select(ref.c.tid.label("patient"), d.c.low.label("at"), kind.label("kind"))
            .select_from(
                ref.join(r, r.c.lid == ref.c.lid).outerjoin(
                    d, and_(d.c.lid == ref.c.lid, d.c.pid == res.pid("Consent", "date"))
                )
            )
            .where(
                ref.c.pid == res.pid("Consent", "patient"),
                ref.c.ttype == "Patient",
                ref.c.url.is_(None),
                ref.c.lid.in_(
                    select(status.c.lid).where(
                        status.c.pid == res.pid("Consent", "status"), status.c.code == "active"
                    )
                ),
                ref.c.lid.in_(
                    select(scope.c.lid).where(
                        scope.c.pid == res.pid("Consent", "scope"),
                        scope.c.system == RESEARCH_SCOPE[0],
                        scope.c.code == RESEARCH_SCOPE[1],
                    )
                ),
            )
            .cte("research_consent")
        )
        deny, permit = consents.alias("deny"), consents.alias("permit")
        later_permit = exists().where(
            permit.c.patient == deny.c.patient,
            permit.c.kind == "permit",
            deny.c.at.is_not(None),
            permit.c.at > deny.c.at,
        )
        return select(deny.c.patient).where(deny.c.kind == "deny", ~later_permit)

    # -- criteria ----------------------------------------------------------------------------
    def criterion(self, crit: Criterion, patient: Any, ref_date: dt.date) -> ColumnElement[bool]:
        """SQL condition on a Patient row (``patient``: the resource table alias)."""
        res = self.res
        if isinstance(crit, ConditionCriterion):
            sub = res.patients_with(["Condition"], crit.codes, crit.start, crit.end)
        elif isinstance(crit, MedicationCriterion):
            sub = res.patients_with(MEDICATION_TYPES, crit.codes, crit.start, crit.end)
        elif isinstance(crit, ObservationCriterion):
            sub = res.patients_with(
                ["Observation"], crit.codes, crit.start, crit.end, self._value_range(crit)
            )
        elif isinstance(crit, EncounterCriterion):
            sub = res.patients_with(
                ["Encounter"], None, crit.start, crit.end, self._classes(crit.classes)
            )
        elif isinstance(crit, AgeCriterion):
            return self._age(crit, patient, ref_date)
        elif isinstance(crit, SexCriterion):
            return self._sex(crit.values, patient)
        else:  # pragma: no cover - the Criterion union is closed
            raise TypeError(type(crit).__name__)
        cond: ColumnElement[bool] = patient.c.res_id.in_(sub)
        return cond

    def _value_range(self, crit: ObservationCriterion) -> Any:
        if crit.min is None and crit.max is None:
            return None
        qty = schema.idx_quantity
        pid = self.res.pid("Observation", "value-quantity")

        def extra(lid: Any) -> list[ColumnElement[bool]]:
            q = qty.alias()
            conds = [q.c.pid == pid, q.c.value.is_not(None)]
            if crit.min is not None:
                conds.append(q.c.value >= crit.min)
            if crit.max is not None:
                conds.append(q.c.value <= crit.max)
            return [lid.in_(select(q.c.lid).where(*conds))]

        return extra

    def _classes(self, classes: list[str]) -> Any:
        if not classes:
            return None
        pid = self.res.pid("Encounter", "class")

        def extra(lid: Any) -> list[ColumnElement[bool]]:
            t = TOK.alias()
            return [lid.in_(select(t.c.lid).where(t.c.pid == pid, t.c.code.in_(classes)))]

        return extra

    def _age(self, crit: AgeCriterion, patient: Any, ref: dt.date) -> ColumnElement[bool]:
        d = DATE.alias()
        conds: list[ColumnElement[bool]] = [d.c.pid == self.res.pid("Patient", "birthdate")]
        if crit.min is not None:  # age >= min  <=>  born on or before ref - min years
            bound = _latest_on_or_before(ref.year - crit.min, ref.month, ref.day)
            if bound is None:
                return false()
            conds.append(d.c.low < _seconds(bound) + DAY)
        if crit.max is not None:  # age <= max  <=>  born after ref - (max + 1) years
            bound = _latest_on_or_before(ref.year - crit.max - 1, ref.month, ref.day)
            conds.append(d.c.low >= (_seconds(bound) + DAY if bound else NO_BIRTH))
        cond: ColumnElement[bool] = _lid(patient).in_(select(d.c.lid).where(*conds))
        return cond

    def _sex(self, values: Sequence[str], patient: Any) -> ColumnElement[bool]:
        pid = self.res.pid("Patient", "gender")
        g = TOK.alias()
        known = [v for v in values if v in KNOWN_SEXES]
        ors: list[ColumnElement[bool]] = []
        if known:
            ors.append(
                _lid(patient).in_(select(g.c.lid).where(g.c.pid == pid, g.c.code.in_(known)))
            )
        if "unknown" in values:  # missing or unrecognised gender is "unknown"
            g2 = TOK.alias()
            ors.append(
                _lid(patient).not_in(
                    select(g2.c.lid).where(g2.c.pid == pid, g2.c.code.in_(KNOWN_SEXES))
                )
            )
        return or_(*ors) if ors else false()

    # -- the cohort ----------------------------------------------------------------------------
    def cohort(self, cohort: Cohort) -> CTE:
        """A CTE ``cohort(lid, res_id)`` of the cohort's patients."""
        p, gone = R.alias("p"), R.alias("gone")
        conds: list[ColumnElement[bool]] = [
            p.c.res_type == "Patient",
            # liveness as "not among the deleted" (few): the scan then needs only the
            # (res_type, res_id) index, which holds the lid too, and never the table rows
            p.c.lid.not_in(
                select(gone.c.lid).where(
                    gone.c.res_type == "Patient",
                    gone.c.deleted == True,  # noqa: E712
                )
            ),
            p.c.res_id.not_in(self.refused()),
        ]
        conds += [self.criterion(c, p, cohort.reference_date) for c in cohort.include]
        if cohort.exclude:
            conds.append(
                ~or_(*(self.criterion(c, p, cohort.reference_date) for c in cohort.exclude))
            )
        return (
            select(p.c.lid.label("lid"), p.c.res_id.label("res_id"))
            .where(and_(true(), *conds))
            .cte("cohort")
        )
