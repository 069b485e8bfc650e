"""Compile analysis variables to SQL columns over a cohort (one row per cohort patient).

Two layers: :func:`inner_columns` gives each variable's raw per-patient values as labelled
columns of a query over the cohort CTE (patient-level values by index lookups, resource-level
ones as aggregates restricted to the cohort's patients); :func:`value_column` and
:func:`design_columns` read that query as a subquery to give crosstab values or numeric design
columns (:func:`healthmesh.analytics.cohort.columns`). Value rules follow
:mod:`healthmesh.analytics.variables` (normative). Resource JSON is read only for the dates of
the Conditions that start a survival time and for ``deceasedDateTime`` of patients whose
index says they died (neither is a calendar date the index keeps), and for ``issued`` of an
observation without an ``effective`` date when ordering ``first``/``last``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, and_, case, cast, exists, func, literal, over, select
from sqlalchemy.sql.expression import ColumnElement

from healthmesh.analytics.cohort import (
    AgeVariable,
    ConditionVariable,
    MedicationVariable,
    ObservationVariable,
    SexVariable,
    SurvivalVariable,
    Variable,
)
from healthmesh.fhir.store import schema
from healthmesh.node.analytics.cohort_sql import KNOWN_SEXES, MEDICATION_TYPES
from healthmesh.node.analytics.resources import DATE, DATE_MIN, DAY, TOK, ResourceSql, date_text
from healthmesh.node.analytics.sqlfuncs import (
    binary_order,
    day_number,
    epoch_ymd,
    iso_epoch,
    json_text,
)

R = schema.resource
UNDATED = -1e300  # an observation without a date sorts first


def _f(expr: Any) -> ColumnElement[Any]:
    return cast(expr, Float)


def _age(res: ResourceSql, c: Any, ref: dt.date) -> ColumnElement[Any]:
    d = DATE.alias()
    low = (
        select(func.min(d.c.low))
        .where(d.c.lid == c.c.lid, d.c.pid == res.pid("Patient", "birthdate"))
        .scalar_subquery()
    )
    diff = literal(ref.year * 10000 + ref.month * 100 + ref.day) - epoch_ymd(low)
    # whole years = floor(diff / 10000) on YYYYMMDD numbers; SQL division truncates
    return case(
        (low.is_(None), None),
        (diff >= 0, _f(diff // 10000)),
        else_=_f(-((literal(9999) - diff) // 10000)),
    )


def _sex(res: ResourceSql, c: Any, levels: list[str]) -> ColumnElement[Any]:
    g = TOK.alias()
    code = (
        select(func.min(g.c.code))
        .where(
            g.c.lid == c.c.lid,
            g.c.pid == res.pid("Patient", "gender"),
            g.c.code.in_(KNOWN_SEXES),
        )
        .scalar_subquery()
    )
    value = func.coalesce(code, "unknown")
    return case((value.in_(levels), value), else_=None)


def _observations(res: ResourceSql, c: Any, v: ObservationVariable) -> Any:
    """``(patient, value)`` of the cohort's matching observations, one row per patient."""
    q = schema.idx_quantity.alias()
    m = res.matching("Observation", v.codes, v.start, v.end, within=c).subquery()
    vq = res.pid("Observation", "value-quantity")
    base = select(m.c.patient, m.c.lid, q.c.value).join(
        q, and_(q.c.lid == m.c.lid, q.c.pid == vq, q.c.value.is_not(None))
    )
    if v.pick in ("mean", "min", "max"):
        b = base.subquery()
        agg = (
            func.avg(b.c.value)
            if v.pick == "mean"
            else func.min(b.c.value)
            if v.pick == "min"
            else func.max(b.c.value)
        )
        return select(b.c.patient, agg.label("value")).group_by(b.c.patient).subquery()
    d, r = DATE.alias(), R.alias()
    point = (
        select(func.min(d.c.low))
        .where(
            d.c.lid == base.selected_columns.lid,
            d.c.pid == res.pid("Observation", "date"),
            d.c.low > DATE_MIN,
            d.c.high - d.c.low <= DAY,
        )
        .scalar_subquery()
    )
    elements = ("effectiveDateTime", "issued")
    raw = func.coalesce(*(json_text(r.c.content, e) for e in elements))
    # a date alone (or a partial one) is midnight UTC of its (first) day
    text = case((func.length(raw) <= 10, date_text(r.c.content, elements)), else_=raw)
    from_json = select(iso_epoch(text)).where(r.c.lid == base.selected_columns.lid)
    key = func.coalesce(point, from_json.scalar_subquery(), UNDATED)
    r2 = R.alias()
    rid = select(r2.c.res_id).where(r2.c.lid == base.selected_columns.lid).scalar_subquery()
    by_id = binary_order(rid)
    order = [key.desc(), by_id.desc()] if v.pick == "last" else [key.asc(), by_id.asc()]
    ranked = base.add_columns(
        over(func.row_number(), partition_by=base.selected_columns.patient, order_by=order).label(
            "rank"
        )
    ).subquery()
    return select(ranked.c.patient, ranked.c.value).where(ranked.c.rank == 1).subquery()


def _survival_start(res: ResourceSql, c: Any, v: SurvivalVariable) -> Any:
    m = res.matching("Condition", v.start_codes, within=c).subquery()
    r = R.alias()
    start = func.min(date_text(r.c.content, ("onsetDateTime", "recordedDate")))
    return (
        select(m.c.patient, start.label("start"))
        .join(r, r.c.lid == m.c.lid)
        .group_by(m.c.patient)
        .subquery()
    )


def inner_columns(
    res: ResourceSql, i: int, v: Variable, c: Any, ref: dt.date
) -> tuple[list[ColumnElement[Any]], list[tuple[Any, Any]]]:
    """Labelled raw columns of variable ``i`` over cohort CTE ``c``, and the subqueries to
    outer-join on ``patient = c.res_id``."""
    if isinstance(v, AgeVariable):
        return [_age(res, c, ref).label(f"v{i}")], []
    if isinstance(v, SexVariable):
        return [_sex(res, c, v.levels).label(f"v{i}")], []
    if isinstance(v, ConditionVariable | MedicationVariable):
        types = ["Condition"] if isinstance(v, ConditionVariable) else list(MEDICATION_TYPES)
        has = c.c.res_id.in_(res.patients_with(types, v.codes, v.start, v.end))
        return [case((has, 1.0), else_=0.0).label(f"v{i}")], []
    if isinstance(v, ObservationVariable):
        o = _observations(res, c, v)
        return [_f(o.c.value).label(f"v{i}")], [(o, o.c.patient == c.c.res_id)]
    if isinstance(v, SurvivalVariable):
        s = _survival_start(res, c, v)
        t = TOK.alias()
        dead = exists().where(
            t.c.lid == c.c.lid, t.c.pid == res.pid("Patient", "deceased"), t.c.code == "true"
        )
        pr = R.alias()
        death = select(date_text(pr.c.content, ("deceasedDateTime",))).where(pr.c.lid == c.c.lid)
        return [
            s.c.start.label(f"v{i}_start"),
            case((dead, 1), else_=0).label(f"v{i}_dead"),
            case((dead, death.scalar_subquery()), else_=None).label(f"v{i}_death"),
        ], [(s, s.c.patient == c.c.res_id)]
    raise TypeError(type(v).__name__)  # pragma: no cover - the Variable union is closed


def value_column(i: int, v: Variable, sub: Any) -> ColumnElement[Any]:
    """The one value of a non-survival variable (crosstab, moments)."""
    return sub.c[f"v{i}"]  # type: ignore[no-any-return]


def design_columns(
    i: int, v: Variable, sub: Any
) -> tuple[list[ColumnElement[Any]], ColumnElement[bool]]:
    """Numeric design columns of variable ``i`` and the condition that it is present."""
    if isinstance(v, SurvivalVariable):
        start, dead, death = sub.c[f"v{i}_start"], sub.c[f"v{i}_dead"], sub.c[f"v{i}_death"]
        censor = literal(v.censor_date.isoformat())
        died = and_(death.is_not(None), death <= censor)
        end = case((died, death), else_=censor)
        time = day_number(end) - day_number(start)
        present = and_(
            start.is_not(None),
            ~and_(dead == 1, death.is_(None)),
            end >= start,
        )
        return [_f(time), case((died, 1.0), else_=0.0)], present
    value = sub.c[f"v{i}"]
    if isinstance(v, SexVariable):
        return [case((value == lvl, 1.0), else_=0.0) for lvl in v.levels[1:]], value.is_not(None)
    return [value], value.is_not(None)
