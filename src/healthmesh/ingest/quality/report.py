"""The quality report: counts per check, scores per Kahn dimension, table and JSON forms.

Failures are identified by resource reference (``Observation/<id>``) only, never by value, so
a report can leave the institution (the hub's catalog publishes the scores).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from healthmesh.ingest.quality.checks import CHECKS, DIMENSIONS

if TYPE_CHECKING:
    import datetime as dt

    from healthmesh.fhir.store import FhirStore

EXAMPLES = 5


@dataclass
class CheckResult:
    """Outcome of one check over an institution's data."""

    tested: int = 0
    failed: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def pass_rate(self) -> float | None:
        """Share of tested items that passed (``None`` when nothing was tested)."""
        return None if self.tested == 0 else 1 - self.failed / self.tested


@dataclass
class QualityReport:
    """All check results of one institution."""

    institution: str
    assessed_on: str
    results: dict[str, CheckResult] = field(default_factory=dict)
    resources: dict[str, int] = field(default_factory=dict)

    def record(self, check: str, ok: bool, ref: str) -> None:
        """Count one tested item (and keep a few failing references as examples)."""
        result = self.results.setdefault(check, CheckResult())
        result.tested += 1
        if not ok:
            result.failed += 1
            if len(result.examples) < EXAMPLES:
                result.examples.append(ref)

    def scores(self) -> dict[str, float | None]:
        """Pass rate per dimension (items pooled over its checks) and overall (mean)."""
        out: dict[str, float | None] = {}
        for dim in DIMENSIONS:
            tested = sum(r.tested for c, r in self.results.items() if CHECKS[c].dimension == dim)
            failed = sum(r.failed for c, r in self.results.items() if CHECKS[c].dimension == dim)
            out[dim] = None if tested == 0 else round(1 - failed / tested, 6)
        known = [v for v in out.values() if v is not None]
        out["overall"] = round(sum(known) / len(known), 6) if known else None
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSON document written by ``healthmesh quality report``."""
        return {
            "institution": self.institution,
            "assessed_on": self.assessed_on,
            "framework": "Kahn et al. 2016 (completeness, conformance, plausibility)",
            "resources": self.resources,
            "scores": self.scores(),
            "checks": [
                {
                    "id": cid,
                    "dimension": CHECKS[cid].dimension,
                    "category": CHECKS[cid].category,
                    "resource_type": CHECKS[cid].resource_type,
                    "description": CHECKS[cid].description,
                    "tested": r.tested,
                    "failed": r.failed,
                    "pass_rate": None if r.pass_rate is None else round(r.pass_rate, 6),
                    "failing_examples": r.examples,
                }
                for cid, r in sorted(self.results.items(), key=lambda kv: list(CHECKS).index(kv[0]))
            ],
        }


def render_table(report: QualityReport) -> str:
    """A fixed-width table of the checks and the dimension scores."""
    lines = [
        f"Data quality of {report.institution} ({report.assessed_on})",
        f"{'dimension':<13}{'category':<14}{'check':<32}{'tested':>9}{'failed':>8}{'pass':>9}",
    ]
    for row in report.to_json()["checks"]:
        rate = "-" if row["pass_rate"] is None else f"{100 * row['pass_rate']:.2f}%"
        lines.append(
            f"{row['dimension']:<13}{row['category']:<14}{row['id']:<32}"
            f"{row['tested']:>9}{row['failed']:>8}{rate:>9}"
        )
    scores = report.scores()
    lines.append(
        "scores: "
        + ", ".join(f"{k} {'-' if v is None else f'{100 * v:.2f}%'}" for k, v in scores.items())
    )
    return "\n".join(lines)


def _stream(store: FhirStore, res_type: str) -> Iterator[dict[str, Any]]:
    from sqlalchemy import select

    from healthmesh.fhir.store import schema

    table = schema.resource
    query = (
        select(table.c.content)
        .where(
            table.c.res_type == res_type,
            table.c.deleted == False,  # noqa: E712
        )
        .execution_options(yield_per=2000)
    )
    with store.db.read() as conn:
        for (content,) in conn.execute(query):
            if content is not None:
                yield orjson.loads(bytes(content))


def assess_store(store: FhirStore, institution: str, today: dt.date | None = None) -> QualityReport:
    """Assess every resource of a node's store."""
    from healthmesh.ingest.quality.assess import ASSESSED_TYPES, assess

    def others() -> Iterator[dict[str, Any]]:
        for res_type in ASSESSED_TYPES[1:]:
            yield from _stream(store, res_type)

    report = assess(_stream(store, "Patient"), others(), institution=institution, today=today)
    for res_type in ASSESSED_TYPES:
        report.resources[res_type] = store.count(res_type)
    return report


def dumps(report: QualityReport) -> str:
    """The report as indented JSON text."""
    return json.dumps(report.to_json(), ensure_ascii=False, indent=1)
