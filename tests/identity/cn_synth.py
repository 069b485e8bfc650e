"""A small generator of Chinese test identities for linkage tests (until the synthetic region
exists): a hospital list and a clinic list sharing most persons, with realistic errors."""

from __future__ import annotations

import csv
import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

from opencc import OpenCC

from healthmesh.identity.idnumber import make_id_number
from healthmesh.identity.names import standardise_name

GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌"
    "慧宇浩晨欣怡婷雪琳佳颖子轩梓涵一诺思雨博文俊杰嘉豪海燕春梅金凤德福"
)
COMPOUND = ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容"]
STREETS = [
    "人民",
    "解放",
    "建设",
    "中山",
    "和平",
    "新华",
    "胜利",
    "文化",
    "光明",
    "长江",
    "黄河",
    "青年",
]


@dataclass
class Person:
    pid: int
    name: str
    sex: str
    birth: dt.date
    county_code: str
    address: str
    id_number: str
    phone: str


def _load_surnames(shared: Path) -> tuple[list[str], list[float]]:
    path = shared / "cn_reference/names/wainshine/chinese_family_name_1k.csv"
    names, weights = [], []
    with open(path, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            names.append(row["surname"])
            weights.append(float(row["tf"]))
    return names, weights


def _load_counties(shared: Path) -> list[tuple[str, str]]:
    path = shared / "cn_reference/divisions/divisions_current_mca2024.csv"
    out = []
    with open(path, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["level"] == "county" and row["name"] not in ("市辖区",):
                addr = row["province_name"] + (row["prefecture_name"] or "") + row["name"]
                out.append((row["code"], addr))
    return out


def make_people(shared: Path, n: int, seed: int = 7) -> list[Person]:
    rng = random.Random(seed)
    surnames, weights = _load_surnames(shared)
    counties = _load_counties(shared)
    people = []
    for pid in range(n):
        sur = rng.choice(COMPOUND) if rng.random() < 0.01 else rng.choices(surnames, weights)[0]
        given = "".join(rng.choice(GIVEN_CHARS) for _ in range(rng.choice((1, 2, 2, 2))))
        sex = rng.choice("12")
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(90 * 365))
        code, county_addr = rng.choice(counties)
        seq = rng.randrange(500) * 2 + (1 if sex == "1" else 0)
        address = f"{county_addr}{rng.choice(STREETS)}路{rng.randrange(1, 300)}号"
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        people.append(
            Person(
                pid, sur + given, sex, birth, code, address, make_id_number(code, birth, seq), phone
            )
        )
    return people


def _typo_digit(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) - 1)
    return text[:i] + str((int(text[i]) + rng.randrange(1, 10)) % 10) + text[i + 1 :]


def hospital_record(p: Person) -> dict[str, str | None]:
    return {
        "id": f"H{p.pid}",
        "name": p.name,
        "sex": "男" if p.sex == "1" else "女",
        "birth_date": p.birth.isoformat(),
        "id_number": p.id_number,
        "phone": p.phone,
        "address": p.address,
    }


def clinic_record(
    p: Person, rng: random.Random, s2t: OpenCC, counties: list[tuple[str, str]]
) -> dict[str, str | None]:
    rec = hospital_record(p)
    rec["id"] = f"C{p.pid}"
    r = rng.random()
    if r < 0.25:
        rec["name"] = s2t.convert(p.name)
    elif r < 0.45:
        std = standardise_name(p.name)
        rec["name"] = f"{std.surname.upper()} {std.given.capitalize()}"
    elif r < 0.52 and len(p.name) > 1:
        chars = list(p.name)
        chars[-1] = rng.choice(GIVEN_CHARS)
        rec["name"] = "".join(chars)
    r = rng.random()
    if r < 0.35:
        rec["id_number"] = None
    elif r < 0.42:
        rec["id_number"] = _typo_digit(rng, p.id_number)
    if rng.random() < 0.05:
        rec["birth_date"] = _typo_digit(rng, p.birth.strftime("%Y%m%d"))
    elif rng.random() < 0.3:
        rec["birth_date"] = f"{p.birth.year}年{p.birth.month}月{p.birth.day}日"
    r = rng.random()
    if r < 0.2:
        rec["phone"] = None
    elif r < 0.35:
        rec["phone"] = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
    elif r < 0.6:
        rec["phone"] = "+86 " + p.phone[:3] + "-" + p.phone[3:7] + "-" + p.phone[7:]
    if rng.random() < 0.2:
        _code, county_addr = rng.choice(counties)
        rec["address"] = f"{county_addr}{rng.choice(STREETS)}路{rng.randrange(1, 300)}号"
    if rng.random() < 0.1:
        rec["sex"] = None
    return rec


def hospital_and_clinic(
    shared: Path, n: int, *, overlap: float = 0.8, seed: int = 11
) -> tuple[list[dict[str, str | None]], list[dict[str, str | None]], set[tuple[str, str]]]:
    """Hospital records of ``n`` persons and clinic records of ``overlap * n`` of them plus
    ``(1 - overlap) * n`` others; returns (hospital, clinic, true links)."""
    rng = random.Random(seed)
    people = make_people(shared, int(n * (2 - overlap)), seed)
    counties = _load_counties(shared)
    s2t = OpenCC("s2t")
    hosp = [hospital_record(p) for p in people[:n]]
    shared_n = int(n * overlap)
    clinic_people = people[n - shared_n :]
    clinic = [clinic_record(p, rng, s2t, counties) for p in clinic_people]
    rng.shuffle(clinic)
    truth = {(f"H{p.pid}", f"C{p.pid}") for p in people[n - shared_n : n]}
    return hosp, clinic, truth
