"""What a study may ask of a node's data: cohort definitions and analysis variables.

Pure models (pydantic), shared by the hub (validating a study), the node (compiling them to SQL
over its FHIR store) and the in-memory reference implementation used in tests.

Semantics (the reference implementation :mod:`healthmesh.analytics.memory_data` is normative):

- The unit of analysis is a **Patient** (not deleted). A cohort is the patients that satisfy
  every ``include`` criterion and no ``exclude`` criterion. Patients whose active ``Consent``
  denies research use are never part of any cohort (see :mod:`healthmesh.analytics.consent`).
- A code is ``"system|code"``; a trailing ``*`` matches by prefix (``"http://hl7.org/fhir/sid/icd-10|E11*"``);
  ``"|code"`` or a bare code matches any system.
- Dates are inclusive calendar dates; a resource matches a window when its date (Condition
  ``onsetDateTime`` else ``recordedDate``; Observation ``effectiveDateTime`` else ``issued``;
  MedicationRequest ``authoredOn``; MedicationDispense ``whenHandedOver``; Encounter
  ``period.start``) falls inside it. Resources without a date match only windows without bounds.
- Age is whole years between ``birthDate`` and the cohort's ``reference_date``.
- Sex is ``Patient.gender`` (``male``, ``female``, ``other``, ``unknown``; missing = ``unknown``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SEXES = ("female", "male", "other", "unknown")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_codes(codes: list[str]) -> list[str]:
    if not codes:
        raise ValueError("at least one code is required")
    for c in codes:
        code = c.split("|", 1)[-1]
        if not code or code == "*" or "*" in code[:-1]:
            raise ValueError(f"bad code pattern {c!r}: use system|code or system|prefix*")
    return codes


class _Coded(_Model):
    codes: list[str]
    start: dt.date | None = None
    end: dt.date | None = None

    _v = field_validator("codes")(_check_codes)


class ConditionCriterion(_Coded):
    """Has a Condition with one of ``codes`` (dated inside ``start``..``end`` when given)."""

    kind: Literal["condition"] = "condition"


class MedicationCriterion(_Coded):
    """Has a MedicationRequest or MedicationDispense with one of ``codes``."""

    kind: Literal["medication"] = "medication"


class ObservationCriterion(_Coded):
    """Has an Observation with one of ``codes`` whose ``valueQuantity.value`` is in range."""

    kind: Literal["observation"] = "observation"
    min: float | None = None
    max: float | None = None


class EncounterCriterion(_Model):
    """Has an Encounter in the window (optionally of one of ``classes``, v3 ActCode codes)."""

    kind: Literal["encounter"] = "encounter"
    start: dt.date | None = None
    end: dt.date | None = None
    classes: list[str] = Field(default_factory=list)


class AgeCriterion(_Model):
    """Age in whole years at the cohort's reference date within ``min``..``max`` (inclusive)."""

    kind: Literal["age"] = "age"
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class SexCriterion(_Model):
    kind: Literal["sex"] = "sex"
    values: list[Literal["female", "male", "other", "unknown"]]


Criterion = Annotated[
    ConditionCriterion
    | MedicationCriterion
    | ObservationCriterion
    | EncounterCriterion
    | AgeCriterion
    | SexCriterion,
    Field(discriminator="kind"),
]


class Cohort(_Model):
    """Patients meeting every ``include`` and no ``exclude`` criterion."""

    include: list[Criterion] = Field(default_factory=list)
    exclude: list[Criterion] = Field(default_factory=list)
    reference_date: dt.date = dt.date(2026, 1, 1)


# ---- analysis variables: one value per cohort patient --------------------------------------

_NAME = r"^[a-z][a-z0-9_]{0,39}$"


class AgeVariable(_Model):
    """Numeric: age in whole years at the cohort's reference date (missing without birthDate)."""

    kind: Literal["age"] = "age"
    name: str = Field(pattern=_NAME)


class SexVariable(_Model):
    """Categorical over ``levels`` (default female, male); other values are missing."""

    kind: Literal["sex"] = "sex"
    name: str = Field(pattern=_NAME)
    levels: list[str] = Field(default_factory=lambda: ["female", "male"])


class ConditionVariable(_Coded):
    """Binary 0/1: has such a Condition (in the window when given). Never missing."""

    kind: Literal["condition"] = "condition"
    name: str = Field(pattern=_NAME)


class MedicationVariable(_Coded):
    """Binary 0/1: has such a MedicationRequest or MedicationDispense. Never missing."""

    kind: Literal["medication"] = "medication"
    name: str = Field(pattern=_NAME)


class ObservationVariable(_Coded):
    """Numeric ``valueQuantity.value`` of such Observations: ``pick`` one per patient.

    ``last``/``first`` by the Observation's date (ties broken by resource id), or the
    ``mean``/``min``/``max`` of all. Missing when the patient has none.
    """

    kind: Literal["observation"] = "observation"
    name: str = Field(pattern=_NAME)
    pick: Literal["last", "first", "mean", "min", "max"] = "last"


class SurvivalVariable(_Model):
    """Time to death: two columns ``<name>_time`` (days, float) and ``<name>_event`` (0/1).

    Start is the earliest date of a Condition with one of ``start_codes`` (missing when none).
    End is ``Patient.deceasedDateTime`` (event 1) when on or before ``censor_date``, else
    ``censor_date`` (event 0). Patients with end before start are missing.
    """

    kind: Literal["survival"] = "survival"
    name: str = Field(pattern=_NAME)
    start_codes: list[str]
    censor_date: dt.date

    _v = field_validator("start_codes")(_check_codes)


Variable = Annotated[
    AgeVariable
    | SexVariable
    | ConditionVariable
    | MedicationVariable
    | ObservationVariable
    | SurvivalVariable,
    Field(discriminator="kind"),
]


def columns(variable: Variable) -> list[str]:
    """The column names a variable contributes to a numeric design (see ``NodeData.matrix``).

    Categorical variables contribute one 0/1 column per level after the first (the reference).
    """
    if isinstance(variable, SexVariable):
        return [f"{variable.name}_{lvl}" for lvl in variable.levels[1:]]
    if isinstance(variable, SurvivalVariable):
        return [f"{variable.name}_time", f"{variable.name}_event"]
    return [variable.name]


def is_categorical(variable: Variable) -> bool:
    return isinstance(variable, SexVariable)
