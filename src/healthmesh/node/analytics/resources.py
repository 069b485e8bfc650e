"""SQL for "the resources of a type that match codes and a date window", over the store's
search indexes, and for the patients they are about.

The reading rules are those of :mod:`healthmesh.analytics.resource_fields` (normative):

- codes: token rows of the type's ``code`` parameter (``Condition.code``, ``Observation.code``,
  ``medicationCodeableConcept``); ``system|code``, ``system|prefix*``, ``|code`` / bare code;
- patient: reference rows of ``subject`` (``patient`` for Consent) to ``Patient/<id>`` written
  relative (absolute URLs are not followed, as in the reference implementation);
- resources recorded in error are left out (``status`` / ``verification-status`` tokens);
- date: the calendar date *as written* (the institution's local date). The date index holds
  UTC instants, so the index decides every resource whose instant lies more than the widest
  zone offsets (+14 h / -12 h) inside or outside the window; only resources within those
  hours of a window edge, or whose date the index cannot show (a partial date, or
  ``issued``/``recordedDate`` used when ``effectiveDateTime``/``onsetDateTime`` is absent),
  have their JSON read, for that one element. A point ``effective``/``onset`` index row is
  taken as the ``dateTime`` (an ``effectiveInstant`` or a one-day ``Period`` would be read
  as one too: the reference reads neither; such data is not produced by our adapters).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, or_, select, union_all
from sqlalchemy.sql.expression import ColumnElement

from healthmesh.fhir.store import FhirStore, schema
from healthmesh.node.analytics.sqlfuncs import json_text, prefix_match

Extra = Callable[[Any], list[ColumnElement[bool]]]
R = schema.resource
TOK = schema.idx_token
REF = schema.idx_reference
DATE = schema.idx_date

DAY = 86400.0
EARLY = 14 * 3600.0  # a local date starts at most 14 h before its UTC midnight (UTC+14)
LATE = 12 * 3600.0  # ... and at most 12 h after it (UTC-12)
DATE_MIN = -1e12  # open period start in the index (see fhir.search.coerce)


@dataclass(frozen=True)
class DateSpec:
    """Where a type's analysis date lives: the index parameter and the JSON elements."""

    param: str
    elements: tuple[str, ...]  # dotted JSON paths, in order of preference
    #: only index rows at most a day wide are the element itself (others: Period, partial)
    point_only: bool


DATES: dict[str, DateSpec] = {
    "Condition": DateSpec("onset-date", ("onsetDateTime", "recordedDate"), True),
    "Observation": DateSpec("date", ("effectiveDateTime", "issued"), True),
    "MedicationRequest": DateSpec("authoredon", ("authoredOn",), False),
    "MedicationDispense": DateSpec("whenhandedover", ("whenHandedOver",), False),
    "Encounter": DateSpec("date", ("period.start",), False),
}

#: resource type -> (status-like parameter, codes that mean "recorded in error")
IN_ERROR: dict[str, tuple[str, tuple[str, ...]]] = {
    "Condition": ("verification-status", ("entered-in-error", "refuted")),
    "Observation": ("status", ("entered-in-error",)),
    "MedicationRequest": ("status", ("entered-in-error",)),
    "MedicationDispense": ("status", ("entered-in-error",)),
    "Encounter": ("status", ("entered-in-error",)),
}


def _seconds(day: dt.date) -> float:
    return (day - dt.date(1970, 1, 1)).days * DAY


def date_text(content: ColumnElement[Any], elements: Sequence[str]) -> ColumnElement[Any]:
    """The analysis date as ``YYYY-MM-DD`` text from the resource JSON (partial dates are
    their first day; NULL when none of ``elements`` is present)."""
    raw: ColumnElement[Any] = (
        json_text(content, elements[0])
        if len(elements) == 1
        else func.coalesce(*(json_text(content, e) for e in elements))
    )
    # "2024" -> "2024-01-01", "2024-03" -> "2024-03-01", longer -> its first ten characters
    return func.substr(raw + literal("-01-01"), 1, 10)


def _once(query: Any) -> Select[Any]:
    """``SELECT lid FROM`` a materialized CTE of ``query``: its JSON reads run once per
    statement, whatever join the planner makes of the ``IN`` that uses it (PostgreSQL may
    otherwise rescan a semi-join's inner side per outer row)."""
    cte = query.cte().prefix_with("MATERIALIZED")
    return select(cte.c.lid)


class ResourceSql:
    """Builders of index-driven subqueries over one store (parameter ids looked up once)."""

    def __init__(self, store: FhirStore) -> None:
        self.store = store

    def pid(self, res_type: str, code: str) -> int:
        """The index id of a search parameter (every R4 parameter has one)."""
        pid = self.store.params.pid(res_type, code)
        if pid is None:
            raise LookupError(f"the store does not index {res_type}.{code}")
        return pid

    # -- codes, errors, dates ---------------------------------------------------------------
    def code_condition(self, tok: Any, patterns: Sequence[str]) -> ColumnElement[bool]:
        """Token row ``tok`` matches one of the code patterns."""
        ors: list[ColumnElement[bool]] = []
        for pattern in patterns:
            system, _, code = pattern.rpartition("|")
            cond = prefix_match(tok.c.code, code[:-1]) if code.endswith("*") else tok.c.code == code
            ors.append(and_(cond, tok.c.system == system) if system else cond)
        return or_(*ors)

    def not_in_error(self, res_type: str, lid: Any) -> ColumnElement[bool]:
        """The resource ``lid`` is not recorded in error (nor a refuted Condition)."""
        param, codes = IN_ERROR[res_type]
        bad = TOK.alias()
        # uncorrelated: the (few) resources in error are listed once, not looked up per row
        cond: ColumnElement[bool] = lid.not_in(
            select(bad.c.lid).where(bad.c.pid == self.pid(res_type, param), bad.c.code.in_(codes))
        )
        return cond

    def in_window(
        self, res_type: str, lid: Any, low: Any, start: dt.date | None, end: dt.date | None
    ) -> ColumnElement[bool]:
        """The resource ``lid``, whose point date index row starts at ``low`` (None: decide
        by the JSON alone), has its calendar date in ``start..end`` (a bound given)."""
        r = R.alias()
        text = date_text(r.c.content, DATES[res_type].elements)
        inside = and_(
            text.is_not(None),
            *([text >= start.isoformat()] if start is not None else []),
            *([text <= end.isoformat()] if end is not None else []),
        )
        # one read of the JSON per undecided resource
        exact = select(case((inside, 1), else_=0)).where(r.c.lid == lid).scalar_subquery() == 1
        if low is None:
            return exact
        lo_s = _seconds(start) if start is not None else None
        hi_s = _seconds(end) + DAY if end is not None else None
        surely_in = and_(
            low.is_not(None),
            *([low >= lo_s + LATE] if lo_s is not None else []),
            *([low < hi_s - EARLY] if hi_s is not None else []),
        )
        out_terms = []
        if lo_s is not None:
            out_terms.append(low < lo_s - EARLY)
        if hi_s is not None:
            out_terms.append(low >= hi_s + LATE)
        surely_out = and_(low.is_not(None), or_(*out_terms))
        # CASE stops at the first true WHEN: the JSON is read only when the index cannot decide
        return case((surely_in, 1), (surely_out, 0), (exact, 1), else_=0) == 1

    def date_join(self, res_type: str, lid: Any) -> tuple[Any, ColumnElement[bool]]:
        """An alias of the date index and the ON clause joining a resource's date row."""
        spec = DATES[res_type]
        d = DATE.alias()
        on = [d.c.lid == lid, d.c.pid == self.pid(res_type, spec.param), d.c.low > DATE_MIN]
        if spec.point_only:
            on.append(d.c.high - d.c.low <= DAY)
        return d, and_(*on)

    # -- resources and their patients --------------------------------------------------------
    def matching(
        self,
        res_type: str,
        codes: Sequence[str] | None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        extra: Extra | None = None,
        within: Any = None,
    ) -> Select[Any]:
        """``(lid, patient)`` of the type's resources (not in error) with one of ``codes``
        (any when None), dated in the window, meeting ``extra(lid)``; with ``within`` (a
        cohort CTE), only of its patients.

        Driven by the subject references through their covering ``(pid, tid, ttype, lid)``
        index; every other test is an uncorrelated list of lids (codes, errors, dates), which
        the database builds once and probes in memory."""
        ref = REF.alias()
        lid = ref.c.lid
        subject = self.pid(res_type, "subject")
        absolute = REF.alias()
        conds: list[ColumnElement[bool]] = [
            ref.c.pid == subject,
            ref.c.ttype == "Patient",
            # absolute URLs are not followed (few: listed from the (pid, url) index)
            lid.not_in(
                select(absolute.c.lid).where(absolute.c.pid == subject, absolute.c.url.is_not(None))
            ),
            self.not_in_error(res_type, lid),
        ]
        coded = None
        if codes is not None:
            tok = TOK.alias()
            coded = select(tok.c.lid).where(
                tok.c.pid == self.pid(res_type, "code"), self.code_condition(tok, codes)
            )
            conds.append(lid.in_(coded))
        if start is not None or end is not None:
            conds.append(lid.in_(self.dated(res_type, start, end, coded)))
        if extra is not None:
            conds.extend(extra(lid))
        frm: Any = ref
        if within is not None:
            frm = frm.join(within, within.c.res_id == ref.c.tid)
        return select(lid.label("lid"), ref.c.tid.label("patient")).select_from(frm).where(*conds)

    def dated(
        self, res_type: str, start: dt.date | None, end: dt.date | None, among: Any = None
    ) -> Any:
        """Lids of the type's resources whose calendar date is in the window (``among``: a
        select of candidate lids, required for types dated by JSON when the index has no
        point row)."""
        spec = DATES[res_type]
        d = DATE.alias()
        conds = [
            d.c.pid == self.pid(res_type, spec.param),
            # only rows within the widest zone offsets of the window can match: a range the
            # (pid, low) index serves (one lower bound, so SQLite ranges on the window's)
            d.c.low >= _seconds(start) - EARLY if start is not None else d.c.low > DATE_MIN,
            *([d.c.low < _seconds(end) + DAY + LATE] if end is not None else []),
            *([d.c.high - d.c.low <= DAY] if spec.point_only else []),
        ]
        by_index = select(d.c.lid).where(
            *conds, self.in_window(res_type, d.c.lid, d.c.low, start, end)
        )
        if not spec.point_only:
            return _once(by_index)  # no date row: no date (the row is the element itself)
        # the rest have no point row: their date, if any, is in the JSON
        pd = DATE.alias()
        pointed = select(pd.c.lid).where(
            pd.c.pid == self.pid(res_type, spec.param),
            pd.c.low > DATE_MIN,
            pd.c.high - pd.c.low <= DAY,
        )
        if among is None:
            raise ValueError("a JSON-dated type needs candidate lids")
        cand = among.subquery()
        by_json = select(cand.c.lid).where(
            cand.c.lid.not_in(pointed), self.in_window(res_type, cand.c.lid, None, start, end)
        )
        return _once(union_all(by_index, by_json))

    def patients_with(
        self,
        res_types: Sequence[str],
        codes: Sequence[str] | None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        extra: Extra | None = None,
    ) -> Select[Any]:
        """Ids of patients with a matching resource of any of ``res_types``."""
        subs = [self.matching(t, codes, start, end, extra).subquery() for t in res_types]
        if len(subs) == 1:
            return select(subs[0].c.patient)
        u = union_all(*(select(s.c.patient) for s in subs)).subquery()
        return select(u.c.patient)
