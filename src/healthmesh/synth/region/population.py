"""The people of the synthetic region: names, births, identity numbers, addresses, risks.

Ages follow the 2020 census pyramid, surnames their corpus frequency, districts their census
population. Every person is invented; identity numbers are valid GB 11643 numbers with the
division code of the district at the time of birth (legacy codes included).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from itertools import accumulate

from healthmesh.identity.idnumber import make_id_number
from healthmesh.identity.names import surname_pinyin
from healthmesh.synth.region.config import RegionConfig
from healthmesh.synth.region.tables import (
    ETHNICITY_SHARES,
    GIVEN_CHARS,
    STREETS,
    District,
    reference,
)


@dataclass
class Person:
    """One invented resident and the truth about them."""

    pid: str
    sex: str  # GB/T 2261.1: "1" male, "2" female
    birth: dt.date
    surname: str
    given: str
    surname_py: str
    given_py: str
    id_number: str
    ethnicity: str
    phone: str
    district: str
    address: str
    moved_on: dt.date | None  # the day the person moved, None if never
    new_district: str | None
    new_address: str | None
    bmi: float
    smoker: bool
    hypertension_onset: dt.date | None
    diabetes_onset: dt.date | None
    opt_out: bool

    @property
    def name(self) -> str:
        """Full name in hanzi."""
        return self.surname + self.given

    def age_on(self, day: dt.date) -> int:
        """Age in whole years on ``day``."""
        before = (day.month, day.day) < (self.birth.month, self.birth.day)
        return day.year - self.birth.year - int(before)

    def district_on(self, day: dt.date) -> str:
        """District of residence on ``day``."""
        if self.moved_on is not None and day >= self.moved_on and self.new_district:
            return self.new_district
        return self.district

    def address_on(self, day: dt.date) -> str:
        """Address on ``day``."""
        if self.moved_on is not None and day >= self.moved_on and self.new_address:
            return self.new_address
        return self.address


def _address(rng: random.Random, district: District) -> str:
    street = rng.choice(STREETS)
    return (
        f"四川省成都市{district.name}{street}{rng.randint(1, 399)}号"
        f"{rng.randint(1, 30)}栋{rng.randint(1, 4)}单元{rng.randint(1, 32)}{rng.randint(1, 4):02d}"
    )


_POOLS = {
    sex: [g for g in GIVEN_CHARS if g[2] in (lean, "u")] for sex, lean in (("1", "m"), ("2", "f"))
}


def _given(rng: random.Random, sex: str) -> tuple[str, str]:
    pool = _POOLS[sex]
    count = 1 if rng.random() < 0.3 else 2
    chars = [rng.choice(pool) for _ in range(count)]
    return "".join(c[0] for c in chars), "".join(c[1] for c in chars)


def _risk_onset(
    rng: random.Random, prob: float, birth: dt.date, start: dt.date, days: int
) -> dt.date | None:
    """An onset date: most before the simulation starts (prevalent), some during it."""
    if rng.random() >= prob:
        return None
    if rng.random() < 0.85:
        earliest = max(birth + dt.timedelta(days=365 * 25), start - dt.timedelta(days=365 * 15))
        span = (start - earliest).days
        return earliest + dt.timedelta(days=rng.randrange(span)) if span > 0 else start
    return start + dt.timedelta(days=rng.randrange(days))


def make_population(config: RegionConfig) -> list[Person]:
    """Draw ``config.people`` persons, deterministic for ``config.seed``."""
    rng = config.rng("population")
    ref = reference()
    surnames = [s for s, _ in ref.surnames]
    surname_cw = list(accumulate(w for _, w in ref.surnames))
    pinyin = {s: surname_pinyin(s) for s in surnames}
    groups = list(ref.age_groups)
    group_cw = list(accumulate(m + f for _, _, m, f in groups))
    districts = list(ref.districts)
    district_cw = list(accumulate(d.population for d in districts))
    ethnicities = [e for e, _ in ETHNICITY_SHARES]
    ethnicity_cw = list(accumulate(w for _, w in ETHNICITY_SHARES))
    people: list[Person] = []
    sequences: dict[tuple[str, dt.date], int] = {}
    for n in range(config.people):
        low, high, male, female = rng.choices(groups, cum_weights=group_cw)[0]
        sex = "1" if rng.random() < male / (male + female) else "2"
        age_days = rng.randint(low * 365, high * 365 + 364)
        birth = config.start - dt.timedelta(days=age_days)
        surname = rng.choices(surnames, cum_weights=surname_cw)[0]
        given, given_py = _given(rng, sex)
        home = rng.choices(districts, cum_weights=district_cw)[0]
        issued = home.code
        # numbers were first issued in 1985; a number keeps the code of the year of issue
        if home.legacy_code and home.legacy_until and max(birth.year, 1985) < home.legacy_until:
            issued = home.legacy_code
        key = (issued, birth)
        seq = sequences.get(key, rng.randrange(0, 40) * 2)
        sequences[key] = seq + 2
        sequence = (seq + (1 if sex == "1" else 0)) % 1000
        age = (config.start - birth).days / 365.25
        bmi = max(15.0, rng.gauss(22.0 + min(age, 60) * 0.06, 3.2)) if age >= 18 else 17.5
        smoker = age >= 18 and rng.random() < (0.45 if sex == "1" else 0.03)
        htn_p = 0.0 if age < 25 else min(0.75, 0.02 + 0.009 * (age - 25) + 0.02 * (bmi - 24))
        dm_p = 0.0 if age < 30 else min(0.4, 0.01 + 0.003 * (age - 30) + 0.015 * (bmi - 24))
        htn = _risk_onset(rng, max(htn_p, 0.0), birth, config.start, config.days)
        dm = _risk_onset(rng, max(dm_p, 0.0), birth, config.start, config.days)
        moved = rng.random() < 0.12
        moved_on = config.start + dt.timedelta(days=rng.randrange(config.days)) if moved else None
        new_home = rng.choice([d for d in districts if d.code != home.code]) if moved else None
        people.append(
            Person(
                pid=f"P{n + 1:06d}",
                sex=sex,
                birth=birth,
                surname=surname,
                given=given,
                surname_py=pinyin[surname],
                given_py=given_py,
                id_number=make_id_number(issued, birth, sequence),
                ethnicity=rng.choices(ethnicities, cum_weights=ethnicity_cw)[0],
                phone=f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
                district=home.code,
                address=_address(rng, home),
                moved_on=moved_on,
                new_district=new_home.code if new_home else None,
                new_address=_address(rng, new_home) if new_home else None,
                bmi=round(bmi, 1),
                smoker=smoker,
                hypertension_onset=htn,
                diabetes_onset=dm,
                opt_out=rng.random() < config.opt_out_rate,
            )
        )
    return people
