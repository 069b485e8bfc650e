"""Chronic disease (hypertension, type 2 diabetes), everyday acute visits and pharmacy sales.

Risk factors (age, BMI; see :mod:`population`) set who has hypertension or diabetes and since
when. Patients are followed up every one to three months, mostly at their community clinic,
with blood pressure, fasting glucose, HbA1c, lipids and creatinine, and monthly refills.
Controlled patients have lower readings than untreated ones, so risk models have signal.
"""

from __future__ import annotations

import datetime as dt
import random

import numpy as np

from healthmesh.synth.region.config import RegionConfig
from healthmesh.synth.region.events import Prescription, Result, Sale, Timeline, Visit
from healthmesh.synth.region.population import Person
from healthmesh.synth.region.services import Services

HTN_DRUGS = (("C08CA01", 5.0), ("C09AA02", 10.0), ("C09CA01", 50.0), ("C03AA03", 25.0))
DM_DRUGS = (("A10BA02", 500.0, 3), ("A10BB09", 80.0, 1))
#: everyday reasons to see a doctor: (ICD-10, drug ATC or None, imaging modality or None)
ACUTE = (
    ("J06.9", "N02BE01", None),
    ("J20.9", "R05CB01", None),
    ("A09.9", None, None),
    ("K29.7", "A02BC01", "US"),
    ("M54.5", "M01AE01", "MR"),
    ("N39.0", "J01CA04", None),
    ("Z00.0", None, None),
)
BACKGROUND_DRUGS = ("R06AX13", "A02BC01", "J01CA04", "N02BE01", "M01AE01", "R05DA09")


def _chronic_results(
    rng: random.Random, p: Person, treated: bool, at_hospital: bool, first: bool
) -> list[Result]:
    out: list[Result] = []
    if p.hypertension_onset is not None:
        shift = -12.0 if treated else 0.0
        sbp = rng.gauss(150 + shift + (p.bmi - 24) * 0.8, 12)
        dbp = rng.gauss(92 + shift / 2, 8)
        out += [Result("8480-6", round(sbp), "mm[Hg]"), Result("8462-4", round(dbp), "mm[Hg]")]
    if p.diabetes_onset is not None:
        glucose = rng.gauss(7.2 if treated else 9.5, 1.3)
        out.append(Result("14771-0", round(max(glucose, 3.5), 1), "mmol/L"))
        if at_hospital:
            out.append(
                Result("4548-4", round(max(rng.gauss(7.0 if treated else 8.6, 0.9), 4.5), 1), "%")
            )
    if at_hospital and (first or rng.random() < 0.3):
        out.append(Result("14647-2", round(rng.gauss(5.2, 0.9), 2), "mmol/L"))
        out.append(Result("14682-9", round(rng.gauss(80, 15)), "umol/L"))
        out.append(Result("39156-5", p.bmi, "kg/m2"))
        out.append(Result("72166-2", "SMOKER" if p.smoker else "NONSMOKER", ""))
    return out


def _chronic_prescriptions(p: Person) -> list[Prescription]:
    out: list[Prescription] = []
    key = int(p.pid[1:])
    if p.hypertension_onset is not None:
        drug, dose = HTN_DRUGS[key % len(HTN_DRUGS)]
        out.append(Prescription(drug, dose, "mg", 1, 30))
    if p.diabetes_onset is not None:
        drug, dose, per_day = DM_DRUGS[key % len(DM_DRUGS)]
        out.append(Prescription(drug, dose, "mg", per_day, 30))
    return out


def simulate_chronic(
    config: RegionConfig, people: list[Person], services: Services, tl: Timeline
) -> None:
    """Follow-up visits, labs, refills (some bought at pharmacies) for chronic patients."""
    rng = config.rng("chronic")
    for p in people:
        onsets = [d for d in (p.hypertension_onset, p.diabetes_onset) if d is not None]
        if not onsets or min(onsets) > config.end:
            continue
        day = max(min(onsets), config.start) + dt.timedelta(days=rng.randrange(40))
        first = min(onsets) >= config.start
        while day <= config.end:
            district = p.district_on(day)
            at_hospital = first or rng.random() < 0.22
            inst = services.home("hospital" if at_hospital else "clinic", district, p.pid)
            at = dt.datetime.combine(day, dt.time(rng.randint(8, 16), rng.randrange(60)))
            dx = [
                c
                for c, o in (("I10", p.hypertension_onset), ("E11.9", p.diabetes_onset))
                if o is not None and o <= day
            ]
            if dx:
                results = _chronic_results(rng, p, not first, at_hospital, first)
                tl.visits.append(
                    Visit(p, inst.id, at, "chronic", dx, results, _chronic_prescriptions(p))
                )
                if services.has("pharmacy") and rng.random() < 0.15:
                    shop = services.pick("pharmacy", district, p.pid, rng)
                    for presc in _chronic_prescriptions(p):
                        sold = at + dt.timedelta(days=rng.randint(1, 20))
                        tl.sales.append(Sale(shop.id, sold, presc.drug, 1, p))
            first = False
            day += dt.timedelta(days=rng.randint(25, 95))


def simulate_acute(
    config: RegionConfig, people: list[Person], services: Services, tl: Timeline
) -> None:
    """Everyday acute visits (0.6 per person-year), 70 % at clinics, and background sales."""
    rng = config.rng("acute")
    nprng = np.random.default_rng(config.rng("acute-counts").getrandbits(63))
    counts = nprng.poisson(0.6 * config.days / 365.0, size=len(people))
    for p, n in zip(people, counts.tolist(), strict=True):
        for _ in range(n):
            day = config.start + dt.timedelta(days=rng.randrange(config.days))
            dx, drug, modality = rng.choice(ACUTE)
            kind = "hospital" if rng.random() < 0.3 else "clinic"
            inst = services.pick(kind, p.district_on(day), p.pid, rng)
            at = dt.datetime.combine(day, dt.time(rng.randint(8, 16), rng.randrange(60)))
            presc = [Prescription(drug, 1, "box", 1, 7)] if drug else []
            results = [Result("8310-5", round(rng.gauss(36.7, 0.3), 1), "Cel")]
            visit = Visit(p, inst.id, at, "acute", [dx], results, presc)
            if kind == "hospital" and modality and rng.random() < 0.2:
                visit.imaging = modality
            tl.visits.append(visit)
    shops = services.by_kind.get("pharmacy", [])
    per_day = 12.0 * config.people / 20_000
    for t in range(config.days):
        day = config.start + dt.timedelta(days=t)
        for shop in shops:
            for _ in range(int(nprng.poisson(per_day))):
                at = dt.datetime.combine(day, dt.time(rng.randint(8, 21), rng.randrange(60)))
                tl.sales.append(Sale(shop.id, at, rng.choice(BACKGROUND_DRUGS), 1, None))


def inject_defects(config: RegionConfig, tl: Timeline) -> None:
    """Plant the data-quality defects a quality report must find, and count them.

    A few negative lab values and glucose values written in mg/dL under the mmol/L code
    (unit that does not fit the code); future birth dates come from the clinics' registries.
    """
    rng = config.rng("defects")
    for visit in tl.visits:
        for r in visit.results:
            if isinstance(r.value, str) or r.loinc == "8310-5":
                continue
            u = rng.random()
            if u < 0.0008:
                r.value = -float(r.value)
                tl.defects["negative_value"] = tl.defects.get("negative_value", 0) + 1
            elif r.loinc == "14771-0" and u < 0.004:
                r.value, r.unit = round(float(r.value) * 18.0), "mg/dL"
                tl.defects["unit_mismatch"] = tl.defects.get("unit_mismatch", 0) + 1
