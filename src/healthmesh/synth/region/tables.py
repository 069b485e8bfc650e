"""Reference tables of the synthetic region: derived public tables plus our own small lists.

``reference.json`` (surnames, the 2020 age pyramid, district populations and legacy codes) is
derived from public data by ``tests/synth/derive_tables.py``; see ``_data/NOTICE.txt``. The
lists below (given-name characters, streets, homophones) are our own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

#: common given-name characters: (hanzi, pinyin, sex lean: "m", "f" or "u")
GIVEN_CHARS: tuple[tuple[str, str, str], ...] = (
    ("伟", "wei", "m"), ("强", "qiang", "m"), ("磊", "lei", "m"), ("军", "jun", "m"),
    ("勇", "yong", "m"), ("杰", "jie", "m"), ("涛", "tao", "m"), ("斌", "bin", "m"),
    ("超", "chao", "m"), ("明", "ming", "m"), ("刚", "gang", "m"), ("平", "ping", "u"),
    ("辉", "hui", "m"), ("鹏", "peng", "m"), ("华", "hua", "u"), ("飞", "fei", "m"),
    ("鑫", "xin", "u"), ("波", "bo", "m"), ("宇", "yu", "m"), ("浩", "hao", "m"),
    ("凯", "kai", "m"), ("健", "jian", "m"), ("俊", "jun", "m"), ("帆", "fan", "u"),
    ("建", "jian", "m"), ("国", "guo", "m"), ("志", "zhi", "m"), ("文", "wen", "u"),
    ("博", "bo", "m"), ("峰", "feng", "m"), ("芳", "fang", "f"), ("娜", "na", "f"),
    ("敏", "min", "f"), ("静", "jing", "f"), ("丽", "li", "f"), ("艳", "yan", "f"),
    ("娟", "juan", "f"), ("霞", "xia", "f"), ("秀", "xiu", "f"), ("玲", "ling", "f"),
    ("桂", "gui", "f"), ("英", "ying", "f"), ("红", "hong", "f"), ("梅", "mei", "f"),
    ("琳", "lin", "f"), ("婷", "ting", "f"), ("雪", "xue", "f"), ("慧", "hui", "f"),
    ("佳", "jia", "u"), ("欣", "xin", "f"), ("颖", "ying", "f"), ("倩", "qian", "f"),
    ("晶", "jing", "f"), ("燕", "yan", "f"), ("萍", "ping", "f"), ("洁", "jie", "f"),
    ("晓", "xiao", "u"), ("小", "xiao", "u"), ("思", "si", "u"), ("雨", "yu", "f"),
    ("子", "zi", "u"), ("梓", "zi", "u"), ("涵", "han", "f"), ("轩", "xuan", "m"),
    ("怡", "yi", "f"), ("诗", "shi", "f"), ("嘉", "jia", "u"), ("成", "cheng", "m"),
)
#: homophone or look-alike substitutions a registration clerk makes
HOMOPHONES: dict[str, str] = {
    "伟": "玮", "明": "鸣", "丽": "莉", "静": "婧", "华": "花", "军": "君", "杰": "洁",
    "涛": "滔", "芳": "方", "红": "宏", "燕": "艳", "峰": "锋", "磊": "蕾", "霞": "侠",
    "斌": "彬", "建": "健", "平": "萍", "琳": "林", "婷": "亭", "波": "博", "浩": "皓",
    "欣": "馨", "晶": "菁", "宇": "雨", "慧": "惠", "文": "雯", "梅": "玫", "俊": "骏",
}
STREETS: tuple[str, ...] = (
    "人民南路", "人民北路", "建设路", "春熙路", "蜀都大道", "一环路", "二环路", "府青路",
    "玉林路", "科华路", "红星路", "太升路", "光华大道", "天府大道", "金沙路", "营门口路",
    "驷马桥路", "双林路", "沙湾路", "抚琴路", "龙泉街", "东升街", "华阳大道", "新都大道",
)
#: GB 3304 ethnicity codes with an approximate share in Chengdu (汉族 dominant, 藏/彝/羌 next)
ETHNICITY_SHARES: tuple[tuple[str, float], ...] = (
    ("01", 0.955), ("04", 0.012), ("07", 0.010), ("33", 0.006), ("03", 0.006),
    ("15", 0.003), ("06", 0.003), ("11", 0.002), ("08", 0.002), ("97", 0.001),
)


@dataclass(frozen=True)
class District:
    """A district of the region with its census population and replaced (legacy) code."""

    code: str
    name: str
    population: int
    legacy_code: str | None
    legacy_until: int | None  # the first year the legacy code was no longer issued


@dataclass(frozen=True)
class Reference:
    """The derived public tables."""

    surnames: tuple[tuple[str, float], ...]
    age_groups: tuple[tuple[int, int, int, int], ...]  # (low, high, male, female)
    districts: tuple[District, ...]


def _age_bounds(label: str) -> tuple[int, int]:
    if label.endswith("+"):
        low = int(label[:-1])
        return low, low + 14
    if "-" in label:
        first, last = label.split("-")
        return int(first), int(last)
    return int(label), int(label)


@lru_cache(maxsize=1)
def reference() -> Reference:
    """The packaged reference tables (cached)."""
    text = resources.files(__package__).joinpath("_data/reference.json").read_text("utf-8")
    raw = json.loads(text)
    ages = tuple((*_age_bounds(str(a)), int(m), int(f)) for a, m, f in raw["age_sex"])
    districts = tuple(
        District(
            d["code"],
            d["name"],
            int(d["population"]),
            d["legacy"][0] if d["legacy"] else None,
            int(d["legacy"][1]) if d["legacy"] else None,
        )
        for d in raw["districts"]
    )
    return Reference(tuple((s, float(t)) for s, t in raw["surnames"]), ages, districts)
