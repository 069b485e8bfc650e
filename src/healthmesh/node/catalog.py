"""The node's data-catalog entry: metadata only, published to the hub for discovery.

What it says: resource counts by type, the months each type's data spans, the codes held for
at least ``min_patients`` patients (with a display), the institution's data-quality scores
when an assessment exists, and the data classification level. Every count is banded
(:func:`band`) and nothing about fewer than ``min_patients`` patients (default 10) appears:
small counts are left out, date ranges run from the first to the last month holding at least
``min_patients`` resources, and code counts exclude patients who refused research use.

:func:`catalog_entry` is the pure JSON shape (tested on its own); :func:`collect` computes the
figures with SQL aggregates over the FHIR store's search indexes (JSON read only for one
resource per listed code, to give its display as written); :func:`build_catalog` does both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, select

from healthmesh.errors import InvalidInput
from healthmesh.fhir.store import FhirStore, schema
from healthmesh.ingest.quality import QualityReport
from healthmesh.node.analytics.cohort_sql import CohortSql
from healthmesh.node.analytics.resources import DATE_MIN, DATES
from healthmesh.node.analytics.sqlfuncs import epoch_ymd

R, TOK, REF, DATE = schema.resource, schema.idx_token, schema.idx_reference, schema.idx_date

#: resource type -> its coded-concept search parameter listed in the catalog
CODE_PARAMS = {
    "Condition": "code",
    "Observation": "code",
    "MedicationRequest": "code",
    "MedicationDispense": "code",
    "Procedure": "code",
    "DiagnosticReport": "code",
    "Immunization": "vaccine-code",
}
MIN_PATIENTS = 10
MAX_CODES = 2000


def band(n: int, minimum: int = MIN_PATIENTS) -> int | None:
    """A count as published: None below ``minimum``; else rounded to 10 below 1,000, to 100
    below 10,000, then to two significant figures (never rounded below ``minimum``).

    >>> [band(n) for n in (3, 10, 14, 15, 987, 4_321, 123_456)]
    [None, 10, 10, 20, 990, 4300, 120000]
    """
    if n < minimum:
        return None
    step = 10 if n < 1000 else 100 if n < 10_000 else 10 ** (len(str(n)) - 2)
    return max(minimum, int((n + step // 2) // step * step))


@dataclass
class Figures:
    """Raw figures of a store (never published as they are)."""

    resource_counts: dict[str, int] = field(default_factory=dict)
    #: type -> (year*100 + month, resources that month)
    months: dict[str, dict[int, int]] = field(default_factory=dict)
    #: (type, system, code) -> (distinct patients, display)
    codes: dict[tuple[str, str, str], tuple[int, str | None]] = field(default_factory=dict)
    patients: int = 0


def _month(yyyymm: int) -> str:
    return f"{yyyymm // 100:04d}-{yyyymm % 100:02d}"


def _scores(quality: QualityReport | Mapping[str, Any] | None) -> dict[str, float | None] | None:
    if quality is None:
        return None
    if isinstance(quality, QualityReport):
        return quality.scores()
    scores = quality.get("scores", quality)
    if not isinstance(scores, Mapping):
        raise InvalidInput("quality: a report or a mapping of dimension scores")
    return {str(k): None if v is None else round(float(v), 4) for k, v in scores.items()}


def catalog_entry(
    figures: Figures,
    *,
    institution: str,
    classification: int,
    quality: QualityReport | Mapping[str, Any] | None = None,
    min_patients: int = MIN_PATIENTS,
    generated: dt.date | None = None,
) -> dict[str, Any]:
    """The published catalog entry (pure): banded counts, thresholded codes and months."""
    if not 1 <= classification <= 4:
        raise InvalidInput("classification level is 1 (general) to 4 (core)")
    if min_patients < 5:
        raise InvalidInput("the catalog threshold may not be below 5 patients")
    counts = {
        t: b for t, n in sorted(figures.resource_counts.items()) if (b := band(n, min_patients))
    }
    ranges: dict[str, dict[str, str]] = {}
    for rtype, months in sorted(figures.months.items()):
        held = sorted(m for m, n in months.items() if n >= min_patients)
        if held and rtype in counts:
            ranges[rtype] = {"from": _month(held[0]), "to": _month(held[-1])}
    codes = [
        {
            "resource_type": rtype,
            "system": system or None,
            "code": code,
            "display": display,
            "patients": band(n, min_patients),
        }
        for (rtype, system, code), (n, display) in figures.codes.items()
        if n >= min_patients
    ]
    codes.sort(key=lambda c: (-int(c["patients"] or 0), c["resource_type"], c["code"]))
    return {
        "institution": institution,
        "generated": (generated or dt.datetime.now(dt.UTC).date()).isoformat(),
        "classification": classification,
        "min_patients": min_patients,
        "patients": band(figures.patients, min_patients),
        "resource_counts": counts,
        "date_ranges": ranges,
        "codes": codes[:MAX_CODES],
        "quality": _scores(quality),
    }


def _display(content: bytes | None, field_name: str, system: str, code: str) -> str | None:
    if content is None:
        return None
    concept = orjson.loads(bytes(content)).get(field_name)
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code") == code and (coding.get("system") or "") == system:
            shown = coding.get("display")
            return str(shown)[:200] if shown else None
    return None


def collect(store: FhirStore, *, min_patients: int = MIN_PATIENTS) -> Figures:
    """The raw figures of a store, by SQL aggregates over its indexes."""
    out = Figures()
    cohort = CohortSql(store)
    with store.db.read() as conn:
        live = R.c.deleted == False  # noqa: E712
        for rtype, n in conn.execute(
            select(R.c.res_type, func.count()).where(live).group_by(R.c.res_type)
        ):
            out.resource_counts[str(rtype)] = int(n)
        out.patients = out.resource_counts.get("Patient", 0)
        for rtype, spec in DATES.items():
            month = epoch_ymd(DATE.c.low) // 100
            rows = conn.execute(
                select(month, func.count())
                .where(DATE.c.pid == cohort.res.pid(rtype, spec.param), DATE.c.low > DATE_MIN)
                .group_by(month)
            ).all()
            if rows:
                out.months[rtype] = {int(m): int(n) for m, n in rows}
        refused = cohort.refused()
        for rtype, param in CODE_PARAMS.items():
            if not out.resource_counts.get(rtype):
                continue
            ref = REF.alias()
            patients = func.count(ref.c.tid.distinct())
            found = conn.execute(
                select(TOK.c.system, TOK.c.code, patients, func.min(TOK.c.lid))
                .join(ref, ref.c.lid == TOK.c.lid)
                .where(
                    TOK.c.pid == cohort.res.pid(rtype, param),
                    TOK.c.code.is_not(None),
                    ref.c.pid == cohort.res.pid(rtype, "subject"),
                    ref.c.ttype == "Patient",
                    ref.c.tid.not_in(refused),
                )
                .group_by(TOK.c.system, TOK.c.code)
                .having(patients >= min_patients)
            ).all()
            field_name = "medicationCodeableConcept" if rtype.startswith("Medication") else "code"
            if rtype == "Immunization":
                field_name = "vaccineCode"
            for system, code, n, lid in found:
                content = conn.execute(select(R.c.content).where(R.c.lid == lid)).scalar()
                shown = _display(content, field_name, system or "", code)
                out.codes[(rtype, system or "", code)] = (int(n), shown)
    return out


def build_catalog(
    store: FhirStore,
    *,
    institution: str,
    classification: int = 2,
    quality: QualityReport | Mapping[str, Any] | None = None,
    min_patients: int = MIN_PATIENTS,
) -> dict[str, Any]:
    """The node's catalog entry, computed from its store (see the module docstring)."""
    figures = collect(store, min_patients=min_patients)
    return catalog_entry(
        figures,
        institution=institution,
        classification=classification,
        quality=quality,
        min_patients=min_patients,
    )
