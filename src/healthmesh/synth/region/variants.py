"""How each institution records the same person: its own id, and its own mistakes.

A person gets one local record per institution, made at the first contact: the address of
that day (people move), and the institution's habits and errors — homophone typos in hanzi,
nicknames, pinyin-only names, swapped identity-number digits, missing identity numbers at
clinics, day/month swaps, old phone numbers. ``truth/records.csv`` ties every local record
back to its person.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from healthmesh.synth.region.config import Institution
from healthmesh.synth.region.population import Person
from healthmesh.synth.region.tables import GIVEN_CHARS, HOMOPHONES

_PINYIN = {h: p for h, p, _ in GIVEN_CHARS}

#: per-kind error rates: missing id, swapped id digits, homophone typo, nickname,
#: pinyin-only name, day/month swap, missing phone, future birth year (a quality defect)
_RATES: dict[str, tuple[float, ...]] = {
    "hospital": (0.03, 0.01, 0.015, 0.0, 0.0, 0.004, 0.05, 0.0),
    "clinic": (0.35, 0.02, 0.03, 0.03, 0.0, 0.01, 0.10, 0.002),
    "cdc": (0.01, 0.005, 0.01, 0.0, 0.0, 0.002, 0.02, 0.0),
    "pharmacy": (1.0, 0.0, 0.02, 0.05, 0.0, 0.0, 0.0, 0.0),
}


@dataclass
class LocalRecord:
    """One institution's registration of a person (what it exports, errors included)."""

    local_id: str
    person: Person
    surname: str
    given: str
    surname_py: str
    given_py: str
    pinyin_only: bool
    id_number: str | None
    birth: dt.date
    sex: str
    phone: str | None
    address: str
    district: str
    errors: tuple[str, ...]

    @property
    def name(self) -> str:
        """The recorded full name (hanzi, or pinyin when only pinyin was taken)."""
        if self.pinyin_only:
            return f"{self.surname_py.upper()} {self.given_py.upper()}"
        return self.surname + self.given


def _swap_digits(number: str, rng: random.Random) -> str:
    i = rng.randrange(6, 16)  # inside birth date or sequence: the check digit then fails
    while number[i] == number[i + 1]:
        i = 6 + (i - 5) % 10
        if number[i] == number[i + 1]:
            return number[:17] + ("0" if number[17] != "0" else "1")
    return number[:i] + number[i + 1] + number[i] + number[i + 2 :]


def _homophone(given: str, rng: random.Random) -> str | None:
    spots = [i for i, ch in enumerate(given) if ch in HOMOPHONES]
    if not spots:
        return None
    i = rng.choice(spots)
    return given[:i] + HOMOPHONES[given[i]] + given[i + 1 :]


class Registry:
    """Local records of one institution, created on first contact."""

    def __init__(self, institution: Institution, rng: random.Random, pinyin_only: float) -> None:
        self.institution = institution
        self.rng = rng
        self.rates = _RATES[institution.kind]
        self.pinyin_only = pinyin_only
        self.records: dict[str, LocalRecord] = {}
        self.issued = 0
        #: duplicate registrations (a second number for a known person), merged or not
        self.extra: list[LocalRecord] = []
        self._unmerged: dict[str, LocalRecord] = {}

    def record(self, person: Person, day: dt.date, *, duplicate_rate: float = 0.0) -> LocalRecord:
        """The local record of ``person``, registering them on ``day`` if new.

        With ``duplicate_rate`` the desk sometimes fails to find a known patient and issues a
        second number (merged later by :meth:`pop_duplicate`, HL7 ADT^A40).
        """
        found = self.records.get(person.pid)
        if found is None:
            rec = self._register(person, day)
            self.records[person.pid] = rec
            return rec
        if (
            duplicate_rate
            and person.pid not in self._unmerged
            and self.rng.random() < duplicate_rate
        ):
            dup = self._register(person, day)
            dup.errors += ("duplicate_number",)
            self._unmerged[person.pid] = dup
            self.extra.append(dup)
            return dup
        return found

    def pop_duplicate(self, person: Person) -> LocalRecord | None:
        """An unmerged duplicate of ``person``, now found and merged (label updated)."""
        dup = self._unmerged.pop(person.pid, None)
        if dup is not None:
            dup.errors = (*(e for e in dup.errors if e != "duplicate_number"), "duplicate_merged")
        return dup

    def all(self) -> list[LocalRecord]:
        """Every record issued, duplicates included."""
        return [*self.records.values(), *self.extra]

    def update_address(self, rec: LocalRecord, day: dt.date) -> bool:
        """At a visit after a move, the desk records the new address; True if it changed."""
        person = rec.person
        if person.moved_on is None or day < person.moved_on:
            return False
        if rec.address == person.address_on(day):
            return False
        rec.address, rec.district = person.address_on(day), person.district_on(day)
        rec.errors = tuple(e for e in rec.errors if e != "address_outdated_after_move")
        rec.errors += ("address_updated_at_later_visit",)
        return True

    def _register(self, person: Person, day: dt.date) -> LocalRecord:
        rng, (miss_id, swap, typo, nick, _, dm_swap, miss_phone, future) = self.rng, self.rates
        errors: list[str] = []
        given, given_py = person.given, person.given_py
        if rng.random() < typo:
            changed = _homophone(given, rng)
            if changed:
                given = changed
                errors.append("homophone")
        if rng.random() < nick:
            given, given_py = "小" + person.given[-1], "xiao" + _last_syllable(person)
            errors.append("nickname")
        id_number: str | None = person.id_number
        if rng.random() < miss_id:
            id_number = None
            if self.institution.kind != "pharmacy":
                errors.append("missing_id")
        elif rng.random() < swap:
            id_number = _swap_digits(person.id_number, rng)
            errors.append("swapped_id_digits")
        birth = person.birth
        if birth.day <= 12 and birth.day != birth.month and rng.random() < dm_swap:
            birth = birth.replace(month=birth.day, day=birth.month)
            errors.append("day_month_swap")
        if rng.random() < future:
            birth = birth.replace(year=birth.year + 100) if birth.month != 2 else birth
            if birth != person.birth:
                errors.append("future_birth_date")
        phone: str | None = person.phone
        if rng.random() < miss_phone:
            phone = None
        if person.moved_on is not None and day < person.moved_on:
            errors.append("address_outdated_after_move")
        pinyin = rng.random() < self.pinyin_only
        if pinyin:
            errors.append("pinyin_only")
        self.issued += 1
        n = self.issued
        return LocalRecord(
            local_id=f"{self.institution.id}-{n:07d}",
            person=person,
            surname=person.surname,
            given=given,
            surname_py=person.surname_py,
            given_py=given_py,
            pinyin_only=pinyin,
            id_number=id_number,
            birth=birth,
            sex=person.sex,
            phone=phone,
            address=person.address_on(day),
            district=person.district_on(day),
            errors=tuple(errors),
        )


def _last_syllable(person: Person) -> str:
    return _PINYIN.get(person.given[-1], person.given_py)
