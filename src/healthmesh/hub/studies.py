"""Studies at the hub: a researcher's request (purpose, computations, variables, cohort,
target institutions), validated when submitted, and each institution's decision.

The hub only *records* decisions: each node decides for itself, keeps its decision locally
and publishes it signed; a node computes only what its own record approves (see
:mod:`healthmesh.node.studies`). Parameters of a computation may name the study's variables
by name (``"outcome": "diabetes"``); :func:`resolve_params` replaces names by definitions and
puts the study's cohort in, so that a node sees exactly the variables it approved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.analytics.sdk import Algorithm
from healthmesh.db import apply_migrations
from healthmesh.errors import Forbidden, InvalidInput, NotFound
from healthmesh.hub import tables as t
from healthmesh.ledger.phi import random_id

#: parameter keys whose string (or list of strings) values name study variables
VARIABLE_PARAMS = ("variable", "variables", "outcome", "covariates", "survival", "by")
STATES = ("pending", "approved", "rejected")
_NAME = r"^[a-z][a-z0-9_]{0,39}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Computation(_Model):
    """One computation of a study: a built-in algorithm and its parameters."""

    name: str = Field(pattern=_NAME)
    algorithm: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


class StudyRequest(_Model):
    """What a researcher submits."""

    title: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=4000)
    computations: list[Computation] = Field(min_length=1, max_length=50)
    variables: list[Variable] = Field(default_factory=list, max_length=100)
    cohort: Cohort = Field(default_factory=Cohort)
    institutions: list[str] = Field(min_length=1, max_length=5000)

    @field_validator("computations")
    @classmethod
    def _unique_computations(cls, v: list[Computation]) -> list[Computation]:
        if len({c.name for c in v}) != len(v):
            raise ValueError("computation names must be unique")
        return v

    @field_validator("variables")
    @classmethod
    def _unique_variables(cls, v: list[Variable]) -> list[Variable]:
        if len({x.name for x in v}) != len(v):
            raise ValueError("variable names must be unique")
        return v

    @field_validator("institutions")
    @classmethod
    def _unique_institutions(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("institutions must be unique")
        return v

    def computation(self, name: str) -> Computation:
        for c in self.computations:
            if c.name == name:
                return c
        raise NotFound(f"the study has no computation {name!r}")


def parse_request(body: Mapping[str, Any]) -> StudyRequest:
    """Validate a submitted study body; InvalidInput names the offending field."""
    try:
        return StudyRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"invalid study: {loc}: {err['msg']}", location=loc) from None


def resolve_params(request: StudyRequest, computation: Computation) -> dict[str, Any]:
    """The parameters as the algorithm receives them: the study's cohort unless the
    computation gives its own, and variable names replaced by their definitions."""
    declared = {v.name: v.model_dump(mode="json") for v in request.variables}
    params = dict(computation.params)
    params.setdefault("cohort", request.cohort.model_dump(mode="json"))

    def one(value: Any, key: str) -> Any:
        if isinstance(value, str):
            if value not in declared:
                raise InvalidInput(
                    f"computation {computation.name!r}: {key} names an undeclared variable"
                )
            return declared[value]
        return value

    for key in VARIABLE_PARAMS:
        if key in params:
            value = params[key]
            params[key] = (
                [one(v, key) for v in value] if isinstance(value, list) else one(value, key)
            )
    return params


def protocol_digest(request: StudyRequest) -> str:
    """``sha256:`` of the request's canonical JSON (what the institutions approve)."""
    text = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Decision:
    """An institution's decision on a study as the hub recorded it."""

    institution: str
    state: str
    reason: str | None = None
    computations: tuple[str, ...] = ()
    decided_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "institution": self.institution,
            "state": self.state,
            "reason": self.reason,
            "computations": list(self.computations),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }


@dataclass(frozen=True)
class Study:
    study_id: str
    researcher: str
    request: StudyRequest
    protocol_digest: str
    created_at: datetime
    decisions: dict[str, Decision] = field(default_factory=dict)

    def approved_for(self, computation: str) -> list[str]:
        """Institutions whose recorded decision approves ``computation``."""
        return [
            d.institution
            for d in self.decisions.values()
            if d.state == "approved" and computation in d.computations
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.study_id,
            "researcher": self.researcher,
            **self.request.model_dump(mode="json"),
            "protocol_digest": self.protocol_digest,
            "created": self.created_at.isoformat(),
            "decisions": [d.as_dict() for d in self.decisions.values()],
        }


AlgorithmLookup = Callable[[str], Algorithm]


def builtin_algorithm(name: str) -> Algorithm:
    """A built-in algorithm by name (:mod:`healthmesh.analytics.registry`)."""
    from healthmesh.analytics.registry import get

    try:
        return get(name)
    except (KeyError, NotFound):
        raise InvalidInput(f"unknown algorithm {name!r}") from None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class StudyStore:
    """Studies and decisions in SQL (SQLite or PostgreSQL, component ``hub_studies``)."""

    def __init__(self, engine: sa.Engine, *, algorithms: AlgorithmLookup = builtin_algorithm):
        self.engine = engine
        self.algorithms = algorithms
        apply_migrations(engine, t.COMPONENT, t.MIGRATIONS)

    def validate(self, request: StudyRequest) -> None:
        """Each computation's algorithm exists and accepts its resolved parameters."""
        for comp in request.computations:
            algorithm = self.algorithms(comp.algorithm)
            try:
                algorithm.validate(resolve_params(request, comp))
            except InvalidInput as exc:
                raise InvalidInput(f"computation {comp.name!r}: {exc.message}") from None

    def submit(
        self, researcher: str, request: StudyRequest, *, known: Iterable[str] | None = None
    ) -> Study:
        """Validate and store a study; every target institution starts ``pending``.

        ``known``: the institutions that may take part (active at the registry)."""
        if known is not None:
            allowed = set(known)
            unknown = [i for i in request.institutions if i not in allowed]
            if unknown:
                raise InvalidInput(f"{len(unknown)} target institution(s) are not registered")
        self.validate(request)
        study_id = random_id("st-")
        now = datetime.now(UTC)
        digest = protocol_digest(request)
        with self.engine.begin() as conn:
            conn.execute(
                t.studies.insert().values(
                    study_id=study_id,
                    researcher=researcher,
                    title=request.title,
                    request=json.dumps(request.model_dump(mode="json")),
                    protocol_digest=digest,
                    created_at=now,
                )
            )
            conn.execute(
                t.decisions.insert(),
                [
                    {
                        "study_id": study_id,
                        "institution": i,
                        "state": "pending",
                        "computations": "[]",
                    }
                    for i in request.institutions
                ],
            )
        return self.get(study_id)

    def record_decision(
        self,
        study_id: str,
        institution: str,
        state: str,
        *,
        computations: Iterable[str] = (),
        reason: str | None = None,
    ) -> Decision:
        """Record what an institution decided (it publishes this, signed, to the hub)."""
        if state not in STATES[1:]:
            raise InvalidInput("decision must be approved or rejected")
        study = self.get(study_id)
        if institution not in study.decisions:
            raise Forbidden("this institution is not a target of the study")
        names = sorted(set(computations)) if state == "approved" else []
        for name in names:
            study.request.computation(name)
        if state == "approved" and not names:
            raise InvalidInput("an approval names at least one computation")
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(
                t.decisions.update()
                .where(t.decisions.c.study_id == study_id)
                .where(t.decisions.c.institution == institution)
                .values(
                    state=state,
                    reason=(reason or None) and reason[:500],
                    computations=json.dumps(names),
                    decided_at=now,
                )
            )
        return Decision(institution, state, reason, tuple(names), now)

    def get(self, study_id: str) -> Study:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.studies).where(t.studies.c.study_id == study_id)).first()
            if row is None:
                raise NotFound("no such study")
            rows = conn.execute(
                sa.select(t.decisions)
                .where(t.decisions.c.study_id == study_id)
                .order_by(t.decisions.c.institution)
            ).all()
        decisions = {
            r.institution: Decision(
                r.institution,
                r.state,
                r.reason,
                tuple(json.loads(r.computations)),
                _utc(r.decided_at),
            )
            for r in rows
        }
        return Study(
            row.study_id,
            row.researcher,
            StudyRequest.model_validate(json.loads(row.request)),
            row.protocol_digest,
            _utc(row.created_at) or row.created_at,
            decisions,
        )

    def list(self, researcher: str | None = None) -> list[dict[str, Any]]:
        """Summaries (id, researcher, title, created), newest first; one researcher's only
        when ``researcher`` is given."""
        query = sa.select(
            t.studies.c.study_id,
            t.studies.c.researcher,
            t.studies.c.title,
            t.studies.c.created_at,
        ).order_by(t.studies.c.created_at.desc())
        if researcher is not None:
            query = query.where(t.studies.c.researcher == researcher)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "id": r.study_id,
                "researcher": r.researcher,
                "title": r.title,
                "created": (_utc(r.created_at) or r.created_at).isoformat(),
            }
            for r in rows
        ]
