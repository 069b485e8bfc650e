"""What happens to people in the region: visits with their findings, drug sales, case reports.

Events carry standard codes (ICD-10, LOINC, ATC); each institution's writer turns them into
its native format and its own local codes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from healthmesh.synth.region.population import Person


@dataclass(slots=True)
class Result:
    """A measurement: LOINC code, value (number, or "POS"/"NEG"), UCUM unit."""

    loinc: str
    value: float | str
    unit: str


@dataclass(slots=True)
class Prescription:
    """A drug ordered or sold: ATC code (or a local-only product), dose, unit, days."""

    drug: str  # ATC code, or a local product key such as "LHQW" (no ATC code)
    dose: float
    unit: str
    per_day: int
    days: int


@dataclass(slots=True)
class Visit:
    """One encounter of a person at an institution."""

    person: Person
    institution: str
    start: dt.datetime
    kind: str  # "fever", "acute", "chronic", "inpatient"
    diagnoses: list[str]
    results: list[Result] = field(default_factory=list)
    prescriptions: list[Prescription] = field(default_factory=list)
    length_of_stay: int = 0  # days, inpatients only
    imaging: str | None = None  # DICOM modality when an image study was made
    outbreak: str | None = None  # the labelled outbreak this ILI visit belongs to


@dataclass(slots=True)
class Sale:
    """A pharmacy sale (a member when the buyer showed a member card)."""

    pharmacy: str
    at: dt.datetime
    drug: str
    quantity: int
    member: Person | None
    outbreak: str | None = None


@dataclass(slots=True)
class CaseReport:
    """A notifiable-disease report card sent to the CDC (lab-confirmed influenza)."""

    person: Person
    reporter: str
    onset: dt.date
    diagnosed: dt.date
    icd10: str
    outbreak: str | None = None


@dataclass(frozen=True)
class Outbreak:
    """A labelled injected outbreak of influenza-like illness in one district."""

    id: str
    district: str
    start: dt.date
    end: dt.date
    extra_cases: int  # expected extra ILI cases over the whole outbreak


@dataclass
class Timeline:
    """Everything the region generated, in time order per list."""

    visits: list[Visit] = field(default_factory=list)
    sales: list[Sale] = field(default_factory=list)
    reports: list[CaseReport] = field(default_factory=list)
    outbreaks: list[Outbreak] = field(default_factory=list)
    ili_cases: list[tuple[dt.date, str, str, str]] = field(default_factory=list)
    #: injected data-quality defects by kind (the quality report must find them)
    defects: dict[str, int] = field(default_factory=dict)
