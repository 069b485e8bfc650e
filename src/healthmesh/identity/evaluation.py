"""Measuring linkage against a synthetic region's truth (benchmarks and tests only).

:func:`region_patients` reads a generated region the way its nodes would hold it: every
institution's exports through the shipped ingestion adapters, each Patient folded with the
ingestion pipeline's own update rule (:func:`healthmesh.ingest.batchwrite.decide`: A08
updates, A40 merges) — the store's content without its indexing. :func:`truth_of` ties each
node Patient to its person via ``truth/records.csv``; :func:`pairwise_scores` is precision,
recall and F1 over record pairs of two clusterings.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from healthmesh.identity.fhir_patient import quasi_identifiers

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class PairwiseScores:
    """Pairwise precision, recall and F1 of a clustering against the true one."""

    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int


def _pairs(labels: Counter[Any]) -> int:
    return sum(v * (v - 1) // 2 for v in labels.values())


def pairwise_scores(predicted: Mapping[K, Hashable], truth: Mapping[K, Hashable]) -> PairwiseScores:
    """Scores over the records of ``truth`` (record -> cluster label in each mapping).

    >>> s = pairwise_scores({1: "a", 2: "a", 3: "b"}, {1: "x", 2: "x", 3: "x"})
    >>> s.precision, round(s.recall, 3), s.true_pairs
    (1.0, 0.333, 3)
    """
    keys = list(truth)
    missing = [k for k in keys if k not in predicted]
    if missing:
        raise KeyError(f"{len(missing)} records have no predicted cluster")
    both = _pairs(Counter((predicted[k], truth[k]) for k in keys))
    pred = _pairs(Counter(predicted[k] for k in keys))
    true = _pairs(Counter(truth[k] for k in keys))
    p = both / pred if pred else 1.0
    r = both / true if true else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return PairwiseScores(p, r, f1, true, pred)


def _adapter(path: Path, institution: str) -> Any:
    from healthmesh.synth.region.ingest import _adapter as region_adapter

    return region_adapter(path, institution)


def region_patients(region: Path, institution: str) -> dict[str, dict[str, Any]]:
    """Patient id -> Patient as the institution's node holds it after ingesting its exports."""
    from healthmesh.ingest.adapter import Converted
    from healthmesh.ingest.batchwrite import decide
    from healthmesh.synth.region.ingest import institution_files

    patients: dict[str, dict[str, Any]] = {}
    for path in institution_files(region, institution):
        if path.suffix in (".dcm", ".ndjson"):  # images and consents hold no new Patients
            continue
        for outcome in _adapter(path, institution).convert(path.read_bytes(), source=path.name):
            if not isinstance(outcome, Converted):
                continue
            for res in outcome.resources:
                if res.get("resourceType") == "Patient":
                    _, patients[res["id"]] = decide(res, patients.get(res["id"]))
    return patients


def truth_of(
    region: Path, institution: str, patients: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """Patient id -> true person id, from ``truth/records.csv``.

    The local record number is the identifier of system ``urn:healthmesh:id:<institution>``.
    A CDC keeps one Patient per report card: its local records are numbered in the order
    persons first appear, so cards with identical reported identities are numbered alike.
    """
    truth: dict[tuple[str, str], str] = {}
    with (region / "truth" / "records.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            truth[(row["institution"], row["local_id"])] = row["person_id"]
    system = f"urn:healthmesh:id:{institution}"
    seen: dict[tuple[Any, ...], str] = {}
    out: dict[str, str] = {}
    for pid, patient in patients.items():
        local = next(
            (
                str(i.get("value"))
                for i in patient.get("identifier") or []
                if i.get("system") == system
            ),
            None,
        )
        if local is None:
            q = quasi_identifiers(patient, "")
            key = tuple(sorted((k, v or "") for k, v in q.items()))
            local = seen.setdefault(key, f"{institution}-{len(seen) + 1:07d}")
        person = truth.get((institution, local))
        if person is None:
            raise KeyError("a node Patient has no truth record")
        out[pid] = person
    return out
