"""The packaged GB/T 2260 table against the public reference lists, and address parsing."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from healthmesh.identity.divisions import DivisionTable
from healthmesh.identity.standardise import standardise_date, standardise_record


def _rows(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with open(path, encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_current_code_is_known(shared_data: Path) -> None:
    table = DivisionTable.load()
    rows = _rows(shared_data / "cn_reference/divisions/divisions_current_mca2024.csv")
    assert len(rows) > 3000
    assert all(table.code_known(r["code"], 2024) for r in rows)


def test_historical_codes_by_year(shared_data: Path) -> None:
    table = DivisionTable.load()
    assert table.code_known("510102", 1985)
    assert not table.code_known("510102", 1995)
    assert table.code_known("510122", 2000)
    assert not table.code_known("510122", 2020)
    assert not table.code_known("130171")  # NBS development zone, never GB/T 2260
    history = _rows(
        shared_data / "cn_reference/divisions/areacodes_history_1981_2024.csv", "utf-8-sig"
    )
    assert all(table.code_known(r["代码"]) for r in history)


def test_addresses_parse_to_their_county(shared_data: Path) -> None:
    table = DivisionTable.load()
    rows = [
        r
        for r in _rows(shared_data / "cn_reference/divisions/divisions_current_mca2024.csv")
        if r["level"] == "county"
    ]
    sample = random.Random(3).sample(rows, 600)
    hits = 0
    for r in sample:
        text = r["province_name"] + (r["prefecture_name"] or "") + r["name"] + "幸福路1号"
        parsed = table.parse_address(text)
        hits += parsed.county == r["code"] and parsed.rest == "幸福路1号"
    assert hits / len(sample) >= 0.99


def test_standardise_record_uses_id_number_as_fallback() -> None:
    rec = standardise_record(
        {
            "id": "7",
            "name": "歐陽 娜",
            "id_number": "11010519491231002x",
            "address": "北京市朝阳区建国路88号",
        }
    )
    assert rec["surname"] == "ouyang"
    assert rec["given"] == "na"
    assert rec["birth_date"] == "19491231"
    assert rec["sex"] == "2"
    assert rec["county"] == "110105"
    assert rec["street"] == "建国路88号"
    assert standardise_date("1990年1月2日") == "19900102"
    assert standardise_date("1990-02-30") is None
