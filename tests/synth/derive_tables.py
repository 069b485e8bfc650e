"""Derive the small reference tables the synthetic region ships from ../shared/data.

Run ``python tests/synth/derive_tables.py`` to regenerate
``src/healthmesh/synth/region/_data/reference.json``; ``test_tables.py`` checks that the
shipped file equals a fresh derivation, so the product never reads ../shared at run time.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "src/healthmesh/synth/region/_data/reference.json"
#: the region: Chengdu's central and inner-ring districts
DISTRICTS = ("510104", "510105", "510106", "510107", "510108", "510112", "510114", "510116")
TOP_SURNAMES = 150


def derive(shared: Path) -> dict[str, object]:
    """Build the table dict from the public reference files."""
    ref = shared / "cn_reference"
    with (ref / "names/wainshine/chinese_family_name_1k.csv").open(encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: -float(r["tf"]))
    surnames = [[r["surname"], float(r["tf"])] for r in rows[:TOP_SURNAMES]]
    with (ref / "census2020/age_sex_national_2020.csv").open(encoding="utf-8") as fh:
        ages = [[r["age_group"], int(r["male"]), int(r["female"])] for r in csv.DictReader(fh)]
    with (ref / "census2020/county_census2020.csv").open(encoding="utf-8") as fh:
        census = {r["code"]: r for r in csv.DictReader(fh) if r["code"] in DISTRICTS}
    with (ref / "divisions/areacodes_history_1981_2024.csv").open(encoding="utf-8-sig") as fh:
        history = list(csv.DictReader(fh))
    districts = []
    for code in DISTRICTS:
        legacy = [
            [h["代码"], int(h["变更/弃用时间"])]
            for h in history
            if h["状态"] == "弃用" and h["新代码"].split(";")[0] == code
        ]
        districts.append(
            {
                "code": code,
                "name": census[code]["county"],
                "population": int(census[code]["pop_total"]),
                "legacy": legacy[0] if legacy else None,
            }
        )
    return {
        "licence": {
            "surnames": "wainshine/Chinese-Names-Corpus, Apache-2.0 (top surnames by frequency)",
            "age_sex": "leiii/census 2020 national age pyramid, MIT (c) Lei Dong 2022",
            "districts": "leiii/census (MIT) populations; yescallop/areacodes (CC0) legacy codes",
        },
        "surnames": surnames,
        "age_sex": ages,
        "districts": districts,
    }


def render(tables: dict[str, object]) -> str:
    """The canonical JSON text of the tables."""
    return json.dumps(tables, ensure_ascii=False, indent=1) + "\n"


if __name__ == "__main__":
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    OUT.write_text(render(derive(shared)), encoding="utf-8")
    print(f"wrote {OUT}")
