"""Name standardisation (pinyin, surname readings, traditional, compound) and phones."""

from __future__ import annotations

import pytest

from healthmesh.identity.names import normalise_roman, split_surname, standardise_name
from healthmesh.identity.phone import normalise_phone


@pytest.mark.parametrize(
    ("raw", "surname", "given"),
    [
        ("张伟", "zhang", "wei"),
        ("張偉", "zhang", "wei"),
        ("单田芳", "shan", "tianfang"),
        ("曾国藩", "zeng", "guofan"),
        ("解缙", "xie", "jin"),
        ("仇英", "qiu", "ying"),
        ("区家麟", "ou", "jialin"),
        ("朴槿惠", "piao", "jinhui"),
        ("覃海", "qin", "hai"),
        ("欧阳修", "ouyang", "xiu"),
        ("諸葛亮", "zhuge", "liang"),
        ("尉迟恭", "yuchi", "gong"),
        ("吕布", "lv", "bu"),
        ("LYU Bu", "lv", "bu"),
        ("Zhang Xiao-Ming", "zhang", "xiaoming"),
    ],
)
def test_names_become_comparable_pinyin(raw: str, surname: str, given: str) -> None:
    std = standardise_name(raw)
    assert (std.surname, std.given) == (surname, given)


def test_parts_and_compound_split() -> None:
    assert split_surname("司马光") == ("司马", "光")
    assert split_surname("马光") == ("马", "光")
    assert standardise_name(surname="單", given="田芳").surname == "shan"
    assert normalise_roman("Nǚ  Wá") == "nv wa"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138-0013-8000", "13800138000"),
        ("0086 13800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("(010) 6512-3456", "01065123456"),
        ("１３８００１３８０００", "13800138000"),
        ("12800138000", None),
        ("", None),
        (None, None),
    ],
)
def test_phones(raw: str | None, expected: str | None) -> None:
    assert normalise_phone(raw) == expected
