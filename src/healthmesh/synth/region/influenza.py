"""Seasonal influenza-like illness with labelled injected outbreaks by district.

Daily ILI cases per district are Poisson with a winter-peaked seasonal rate (a small summer
peak as in Sichuan) times the district's residents; each injected outbreak adds a
gamma-shaped surge of extra cases in one district. Every case may seek care at a hospital
fever clinic (with rapid antigen test, imaging, admission, a CDC report when positive), at a
community clinic, and/or buy sentinel drugs at a pharmacy, so all three streams respond.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from itertools import accumulate

import numpy as np

from healthmesh.synth.region.config import RegionConfig
from healthmesh.synth.region.events import (
    CaseReport,
    Outbreak,
    Prescription,
    Result,
    Sale,
    Timeline,
    Visit,
)
from healthmesh.synth.region.population import Person
from healthmesh.synth.region.services import Services

#: healthcare-relevant ILI episodes per person-year, averaged over the season curve
ANNUAL_RATE = 0.09
SENTINEL_DRUGS = (("N02BE01", 0.4), ("M01AE01", 0.25), ("LHQW", 0.25), ("R05DA09", 0.1))


def seasonal_rate(day: dt.date) -> float:
    """Expected ILI episodes per person on ``day`` (winter peak mid-January)."""
    doy = day.timetuple().tm_yday
    winter = math.exp(-((((doy - 20 + 182) % 365 - 182) / 32.0) ** 2))
    summer = math.exp(-(((doy - 200) / 20.0) ** 2))
    shape = 0.35 + 2.2 * winter + 0.5 * summer
    return ANNUAL_RATE / 365.0 * shape / 1.0


def plan_outbreaks(config: RegionConfig, districts: list[str]) -> list[Outbreak]:
    """Draw the labelled outbreaks: district, start, 21-35 days, extra case count."""
    rng = config.rng("outbreaks")
    drawn: list[tuple[dt.date, int, str, int]] = []
    if config.days < 60:
        return []
    for _ in range(config.outbreaks):
        length = rng.randint(21, 35)
        start = config.start + dt.timedelta(days=rng.randint(20, config.days - length - 1))
        extra = max(10, round(rng.randint(50, 100) * config.people / 20_000))
        drawn.append((start, length, rng.choice(districts), extra))
    drawn.sort()
    return [
        Outbreak(f"OB{n + 1:02d}", district, start, start + dt.timedelta(days=length - 1), extra)
        for n, (start, length, district, extra) in enumerate(drawn)
    ]


def _outbreak_curve(ob: Outbreak) -> list[float]:
    """Expected extra cases per day of the outbreak (gamma shape 3, peak in the first third)."""
    n = (ob.end - ob.start).days + 1
    scale = n / 8.0
    raw = [(t + 0.5) ** 2 * math.exp(-(t + 0.5) / scale) for t in range(n)]
    total = sum(raw)
    return [ob.extra_cases * r / total for r in raw]


def _age_weight(p: Person, day: dt.date) -> float:
    age = day.year - p.birth.year
    return 2.2 if age < 15 else 1.5 if age >= 65 else 1.0


def simulate_ili(
    config: RegionConfig, people: list[Person], services: Services, timeline: Timeline
) -> None:
    """Add ILI visits, sentinel sales and CDC reports to ``timeline``."""
    rng = config.rng("ili")
    nprng = np.random.default_rng(config.rng("ili-counts").getrandbits(63))
    residents: dict[str, list[Person]] = {}
    for p in people:
        residents.setdefault(p.district, []).append(p)
    districts = sorted(residents)
    timeline.outbreaks = plan_outbreaks(config, districts)
    extra: dict[tuple[str, int], tuple[float, str]] = {}
    for ob in timeline.outbreaks:
        offset = (ob.start - config.start).days
        for i, e in enumerate(_outbreak_curve(ob)):
            extra[(ob.district, offset + i)] = (e, ob.id)
    weights = {
        d: list(accumulate(_age_weight(p, config.start) for p in ps)) for d, ps in residents.items()
    }
    for t in range(config.days):
        day = config.start + dt.timedelta(days=t)
        base = seasonal_rate(day)
        for d in districts:
            pool = residents[d]
            n_base = int(nprng.poisson(base * len(pool)))
            e, ob_id = extra.get((d, t), (0.0, ""))
            n_extra = int(nprng.poisson(e)) if e > 0 else 0
            for k in range(n_base + n_extra):
                person = rng.choices(pool, cum_weights=weights[d])[0]
                label = ob_id if k >= n_base else None
                _care(rng, person, day, label, services, timeline, config)


def _care(
    rng: random.Random,
    person: Person,
    day: dt.date,
    outbreak: str | None,
    services: Services,
    tl: Timeline,
    config: RegionConfig,
) -> None:
    district = person.district_on(day)
    tl.ili_cases.append((day, district, person.pid, outbreak or ""))
    u = rng.random()
    seek = day + dt.timedelta(days=rng.choice((0, 1, 1, 2)))
    if seek > config.end:
        return
    temp = Result("8310-5", round(rng.uniform(37.8, 40.2), 1), "Cel")
    if u < 0.32:
        hosp = services.pick("hospital", district, person.pid, rng)
        at = dt.datetime.combine(seek, dt.time(rng.randrange(24), rng.randrange(60)))
        results = [temp, Result("6690-2", round(rng.uniform(3.5, 12.0), 1), "10*9/L")]
        results.append(Result("1988-5", round(rng.uniform(1.0, 40.0), 1), "mg/L"))
        dx, drugs = "J11.1", [Prescription("N02BE01", 500, "mg", 3, 3)]
        if rng.random() < 0.6:
            positive = rng.random() < (0.8 if outbreak else 0.5)
            results.append(Result("80382-5", "POS" if positive else "NEG", ""))
            if positive:
                dx, drugs = "J10.1", [Prescription("J05AH02", 75, "mg", 2, 5)]
        visit = Visit(person, hosp.id, at, "fever", [dx], results, drugs, outbreak=outbreak)
        if rng.random() < 0.15:
            visit.imaging = "DX"
        if rng.random() < 0.03:
            visit.kind, visit.length_of_stay = "inpatient", rng.randint(3, 10)
            visit.diagnoses = [dx, "J18.9"]
            visit.imaging = "CT"
            visit.prescriptions.append(Prescription("J01DC02", 1500, "mg", 2, 7))
        tl.visits.append(visit)
        if dx == "J10.1" and services.has("cdc"):
            cdc_delay = dt.timedelta(days=rng.randint(0, 2))
            tl.reports.append(CaseReport(person, hosp.id, day, seek + cdc_delay, dx, outbreak))
    elif u < 0.62:
        clinic = services.pick("clinic", district, person.pid, rng)
        at = dt.datetime.combine(seek, dt.time(rng.randint(8, 16), rng.randrange(60)))
        dx = "J11.1" if rng.random() < 0.6 else "J06.9"
        drug = "LHQW" if rng.random() < 0.4 else "N02BE01"
        presc = [Prescription(drug, 1400 if drug == "LHQW" else 500, "mg", 3, 3)]
        tl.visits.append(
            Visit(person, clinic.id, at, "fever", [dx], [temp], presc, outbreak=outbreak)
        )
    if services.has("pharmacy") and rng.random() < 0.45:
        shop = services.pick("pharmacy", district, person.pid, rng)
        at = dt.datetime.combine(day, dt.time(rng.randint(8, 21), rng.randrange(60)))
        drug = rng.choices([d for d, _ in SENTINEL_DRUGS], [w for _, w in SENTINEL_DRUGS])[0]
        member = person if rng.random() < 0.4 else None
        tl.sales.append(Sale(shop.id, at, drug, rng.randint(1, 2), member, outbreak))
