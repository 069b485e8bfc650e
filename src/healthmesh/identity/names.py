"""Name standardisation for linkage: hanzi -> pinyin with surname readings, traditional ->
simplified, compound surnames, and romanised names written in either order.

pypinyin gives the everyday reading of a character, which is wrong for many surnames
(单 is *shan*, not *dan*); it has no surname mode, so the surname readings and the compound
surname list below are ours (public knowledge, kept short). opencc converts traditional
characters to simplified ones first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin

# Surname readings that differ from pypinyin's everyday reading.
SURNAME_READINGS: dict[str, str] = {
    "单": "shan",
    "曾": "zeng",
    "解": "xie",
    "仇": "qiu",
    "区": "ou",
    "朴": "piao",
    "乐": "yue",
    "查": "zha",
    "覃": "qin",
    "盖": "ge",
    "召": "shao",
    "缪": "miao",
    "翟": "zhai",
    "秘": "bi",
    "种": "chong",
    "繁": "po",
    "黑": "he",
    "句": "gou",
    "员": "yun",
    "宓": "mi",
    "洗": "xian",
    "冼": "xian",
    "折": "she",
    "隗": "wei",
    "谌": "chen",
    "柏": "bai",
    "过": "guo",
    "尉": "yu",
    "万": "wan",
    "重": "chong",
    "华": "hua",
    "任": "ren",
    "燕": "yan",
    "纪": "ji",
    "沈": "shen",
    "薄": "bo",
    "卜": "bu",
    "朝": "chao",
    "都": "du",
    "阚": "kan",
    "贲": "ben",
    "蕃": "pi",
    "乜": "nie",
    "曲": "qu",
    "石": "shi",
}
SURNAME_READINGS_COMPOUND: dict[str, str] = {
    "尉迟": "yuchi",
    "万俟": "moqi",
    "单于": "chanyu",
    "长孙": "zhangsun",
    "乐正": "yuezheng",
}
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "轩辕",
        "令狐",
        "钟离",
        "端木",
        "西门",
        "南宫",
        "独孤",
        "万俟",
        "闻人",
        "澹台",
        "公冶",
        "宗政",
        "濮阳",
        "淳于",
        "单于",
        "太叔",
        "申屠",
        "仲孙",
        "鲜于",
        "闾丘",
        "司空",
        "亓官",
        "司寇",
        "子车",
        "颛孙",
        "巫马",
        "公西",
        "漆雕",
        "乐正",
        "壤驷",
        "公良",
        "拓跋",
        "夹谷",
        "宰父",
        "谷梁",
        "段干",
        "百里",
        "东郭",
        "南门",
        "呼延",
        "羊舌",
        "微生",
        "梁丘",
        "左丘",
        "东门",
        "第五",
        "赫连",
        "呼延",
        "归海",
        "墨哈",
    ]
)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NOT_LETTER = re.compile(r"[^a-z ]+")


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def has_hanzi(text: str) -> bool:
    """True when ``text`` contains a CJK ideograph."""
    return bool(_HAN.search(text))


@lru_cache(maxsize=200_000)
def to_simplified(text: str) -> str:
    """Traditional -> simplified characters (opencc ``t2s``)."""
    return str(_t2s().convert(text))


def split_surname(hanzi: str) -> tuple[str, str]:
    """Split a hanzi full name into (surname, given name), honouring compound surnames.

    >>> split_surname("欧阳修")
    ('欧阳', '修')
    >>> split_surname("张伟")
    ('张', '伟')
    """
    name = "".join(hanzi.split()).replace("·", "")
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[:1], name[1:]


def _plain(text: str) -> list[str]:
    return list(lazy_pinyin(text, style=Style.NORMAL, v_to_u=False, errors="ignore"))


def surname_pinyin(surname: str) -> str:
    """Pinyin of a hanzi surname with the surname reading (``单`` -> ``shan``)."""
    if surname in SURNAME_READINGS_COMPOUND:
        return SURNAME_READINGS_COMPOUND[surname]
    parts = [SURNAME_READINGS.get(ch) or "".join(_plain(ch)) for ch in surname]
    return "".join(parts)


def normalise_roman(text: str) -> str:
    """Lower-case ASCII letters and single spaces; ü/yu after l and n become ``v``.

    >>> normalise_roman("LYU Wei")
    'lv wei'
    >>> normalise_roman("Lü-Xiǎo")
    'lv xiao'
    """
    decomposed = unicodedata.normalize("NFKD", text).replace("u\u0308", "v").replace("U\u0308", "v")
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    ascii_text = ascii_text.replace("-", " ").replace("'", "")
    ascii_text = re.sub(r"\b([ln])(?:yu|u:)", r"\1v", ascii_text)
    return " ".join(_NOT_LETTER.sub(" ", ascii_text).split())


@dataclass(frozen=True)
class StandardName:
    """A person's name in the comparable form: pinyin surname and given name, no spaces."""

    surname: str
    given: str

    @property
    def full(self) -> str:
        """Surname then given name, space separated."""
        return f"{self.surname} {self.given}".strip()


def standardise_name(
    full: str | None = None, *, surname: str | None = None, given: str | None = None
) -> StandardName:
    """Standardise a Chinese or romanised name to pinyin (surname, given name).

    Either pass ``full`` (hanzi ``"張偉"``, or pinyin ``"Zhang Wei"`` / ``"WEI ZHANG"``) or
    the parts. Romanised full names are taken surname-first unless the last token is a known
    compound or the caller passes the parts; order differences are left to the comparison
    (which also compares the swapped order).

    >>> standardise_name("單雄信")
    StandardName(surname='shan', given='xiongxin')
    >>> standardise_name(surname="Zhang", given="Xiao-Ming")
    StandardName(surname='zhang', given='xiaoming')
    """
    if full is not None and surname is None and given is None:
        if has_hanzi(full):
            sur, giv = split_surname(to_simplified(full))
            return StandardName(surname_pinyin(sur), "".join(_plain(giv)))
        tokens = normalise_roman(full).split()
        if not tokens:
            return StandardName("", "")
        return StandardName(tokens[0], "".join(tokens[1:]))
    sur_raw, giv_raw = surname or "", given or ""
    if has_hanzi(sur_raw):
        sur = surname_pinyin("".join(to_simplified(sur_raw).split()))
    else:
        sur = normalise_roman(sur_raw).replace(" ", "")
    if has_hanzi(giv_raw):
        giv = "".join(_plain(to_simplified(giv_raw)))
    else:
        giv = normalise_roman(giv_raw).replace(" ", "")
    return StandardName(sur, giv)
