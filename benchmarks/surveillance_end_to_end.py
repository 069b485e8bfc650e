"""End to end on the synthetic region: node data -> protected counts -> hub -> alerts.

Each institution's visits and pharmacy sales from ``healthmesh.synth.region`` are written as
FHIR R4 resources (Patient, Encounter, Condition, Observation, MedicationDispense) standing in
for the node's FHIR store; the node computes daily counts per district and signal and
suppresses cells below the threshold; the hub pools them, runs EARS C1-C3 (daily) and
Noufaily-Farrington (weekly) on the second year, stores alerts, and we compare the ILI alarms
with the labelled outbreaks. Prints timings and the detection table.

    .venv/bin/python benchmarks/surveillance_end_to_end.py [--people 20000] [--threshold 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from healthmesh.db import make_engine
from healthmesh.surveillance.detectors import EarsC, FarringtonFlexible
from healthmesh.surveillance.hub import CountRow, alerts_from, combine, run_detectors
from healthmesh.surveillance.signals import Protection, daily_counts, protect
from healthmesh.surveillance.signals.syndromes import ICD10, LOINC
from healthmesh.surveillance.store import AlertStore
from healthmesh.synth.region.config import RegionConfig
from healthmesh.synth.region.region import simulate

SEX = {"1": "male", "2": "female"}


def to_fhir(timeline: Any) -> dict[str, list[dict[str, Any]]]:
    """FHIR R4 resources per institution (stand-in for each node's store)."""
    per: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for n, v in enumerate(timeline.visits):
        inst, pid = v.institution, v.person.pid
        if (inst, pid) not in seen:
            seen.add((inst, pid))
            per[inst].append({"resourceType": "Patient", "id": pid,
                              "gender": SEX.get(v.person.sex, "unknown"),
                              "birthDate": v.person.birth.isoformat(),
                              "address": [{"district": v.person.district}]})
        eid = f"e{n}"
        ref = {"reference": f"Patient/{pid}"}
        per[inst].append({"resourceType": "Encounter", "id": eid, "subject": ref,
                          "period": {"start": v.start.isoformat()},
                          "type": [{"text": "发热门诊" if v.kind == "fever" else v.kind}]})
        for code in v.diagnoses:
            per[inst].append({"resourceType": "Condition", "subject": ref,
                              "encounter": {"reference": f"Encounter/{eid}"},
                              "recordedDate": v.start.date().isoformat(),
                              "code": {"coding": [{"system": ICD10, "code": code}]}})
        for r in v.results:
            if isinstance(r.value, float | int):
                per[inst].append({"resourceType": "Observation", "subject": ref,
                                  "encounter": {"reference": f"Encounter/{eid}"},
                                  "effectiveDateTime": v.start.isoformat(),
                                  "code": {"coding": [{"system": LOINC, "code": r.loinc}]},
                                  "valueQuantity": {"value": r.value, "code": r.unit}})
    for k, s in enumerate(timeline.sales):
        if s.member is None:
            continue
        per[s.pharmacy].append({"resourceType": "MedicationDispense", "id": f"d{k}",
                                "status": "completed",
                                "subject": {"reference": f"Patient/{s.member.pid}"},
                                "whenHandedOver": s.at.isoformat(),
                                "medicationCodeableConcept": {"coding": [
                                    {"system": "http://www.whocc.no/atc", "code": s.drug}]}})
    return per


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--threshold", type=int, default=3)
    ap.add_argument("--protection", choices=["suppress", "noise", "none"], default="suppress")
    args = ap.parse_args()
    cfg = RegionConfig(people=args.people)
    t0 = time.perf_counter()
    _people, _insts, tl = simulate(cfg)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    stores = to_fhir(tl)
    t_fhir = time.perf_counter() - t0
    n_res = sum(len(v) for v in stores.values())
    t0 = time.perf_counter()
    rows: list[CountRow] = []
    suppressed = 0
    for inst, resources in stores.items():
        counts = daily_counts(resources)
        cells: Counter[tuple[dt.date, str, str]] = Counter()
        for key, c in counts.items():
            cells[(key.date, key.district, key.signal)] += c
        released = protect(cells, Protection(args.protection, threshold=args.threshold),
                           seed=len(rows))
        suppressed += sum(v is None for v in released.values())
        rows += [CountRow(inst, d, dist, sig, v) for (d, dist, sig), v in released.items()]
    t_node = time.perf_counter() - t0
    t0 = time.perf_counter()
    daily = combine([r for r in rows if r.signal == "ili"], start=cfg.start, end=cfg.end)
    weekly = combine([r for r in rows if r.signal == "ili"], weekly=True, start=cfg.start,
                     end=cfg.end)
    second_year = list(range(366, len(daily.periods) + 1))
    res_d = run_detectors(daily, {"ears_c1": EarsC("C1"), "ears_c2": EarsC("C2"),
                                  "ears_c3": EarsC("C3")}, second_year)
    wk_range = list(range(58, len(weekly.periods) + 1))
    res_w = run_detectors(weekly, {"noufaily": FarringtonFlexible.noufaily(b=1, w=3)},
                          wk_range)
    alerts = alerts_from(daily, res_d) + alerts_from(weekly, res_w)
    with tempfile.TemporaryDirectory() as tmp:
        store = AlertStore(make_engine(Path(tmp) / "alerts.db"))
        store.add(alerts)
        n_stored = len(store.find(limit=100000))
    t_hub = time.perf_counter() - t0
    print(f"region: {args.people} people, {len(stores)} institutions, {cfg.days} days; "
          f"{n_res} FHIR resources; protection {args.protection} (threshold "
          f"{args.threshold}: {suppressed} of {len(rows)} cells suppressed)")
    print(f"time: simulate {t_sim:.1f}s (not ours), to FHIR {t_fhir:.1f}s, node counts+protect "
          f"{t_node:.1f}s, hub pool+detect+store {t_hub:.1f}s; {n_stored} alerts stored")
    print(f"{'outbreak':10s} {'district':8s} {'start':10s} {'end':10s} {'extra':>5s}  "
          + "  ".join(f"{n:>14s}" for n in ("ears_c1", "ears_c2", "ears_c3", "noufaily")))
    by = defaultdict(list)
    for a in alerts:
        by[(a.detector, a.district)].append(a.period)
    for ob in tl.outbreaks:
        cells = []
        for det in ("ears_c1", "ears_c2", "ears_c3", "noufaily"):
            slack = dt.timedelta(days=6 if det == "noufaily" else 0)
            hits = sorted(p for p in by[(det, ob.district)] if ob.start - slack <= p <= ob.end)
            cells.append(f"+{(hits[0] - ob.start).days}d" if hits else "missed")
        in_range = ob.start >= cfg.start + dt.timedelta(days=365)
        print(f"{ob.id:10s} {ob.district:8s} {ob.start} {ob.end} {ob.extra_cases:5d}  "
              + "  ".join(f"{c:>14s}" for c in cells) + ("" if in_range else "  (year 1)"))
    for det in ("ears_c1", "ears_c2", "ears_c3", "noufaily"):
        outside = sum(1 for a in alerts if a.detector == det and a.district != "ALL" and not any(
            ob.district == a.district and ob.start - dt.timedelta(6) <= a.period <= ob.end
            for ob in tl.outbreaks))
        print(f"{det}: {outside} district alarms outside labelled outbreaks")


if __name__ == "__main__":
    main()
