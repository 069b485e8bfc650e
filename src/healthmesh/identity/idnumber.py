"""Mainland-China resident identity numbers (GB 11643-1999): check digit, birth date, region.

The 18-digit number is a 6-digit GB/T 2260 division code (the county at the time the number
was issued, often abolished since), an 8-digit birth date, a 3-digit sequence whose last digit
is odd for men and even for women, and an ISO 7064 MOD 11-2 check character (``0-9`` or ``X``).
First-generation 15-digit numbers (``YYMMDD`` births in the 1900s, no check digit) convert to 18
digits. Hand-written because the rule is twelve lines and no maintained package covers the
historical division codes; :mod:`healthmesh.identity.divisions` supplies those.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from healthmesh.errors import InvalidInput

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK = "10X98765432"
_SHAPE18 = re.compile(r"^\d{17}[\dX]$")
_SHAPE15 = re.compile(r"^\d{15}$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")


class InvalidIdNumber(InvalidInput):
    """A resident identity number failed validation (message never repeats the number)."""


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits.

    >>> check_character("11010519491231002")
    'X'
    """
    if len(first17) != 17 or not first17.isdigit():
        raise InvalidIdNumber("check digit needs exactly 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def clean(raw: str) -> str:
    """Strip spaces/dashes, map full-width digits and lower-case x to the canonical form."""
    text = raw.translate(_FULLWIDTH).upper()
    return re.sub(r"[\s\-]", "", text)


def upgrade15(number15: str) -> str:
    """Convert a first-generation 15-digit number to 18 digits (century 19, new check digit).

    >>> upgrade15("110105491231002")
    '11010519491231002X'
    """
    if not _SHAPE15.match(number15):
        raise InvalidIdNumber("a first-generation number has 15 digits")
    body = number15[:6] + "19" + number15[6:]
    return body + check_character(body)


@dataclass(frozen=True)
class ResidentId:
    """A validated 18-digit resident identity number and what it encodes."""

    number: str
    division_code: str
    birth_date: dt.date
    sex: str  # "1" male, "2" female (GB/T 2261.1)
    upgraded_from_15: bool = False

    @property
    def province_code(self) -> str:
        """The two-digit province part of the division code."""
        return self.division_code[:2]


def parse_id_number(raw: str, *, today: dt.date | None = None) -> ResidentId:
    """Validate a resident identity number and decode it.

    Checks the shape, the MOD 11-2 check character and that the birth date is a real date no
    later than ``today`` and after 1880. Division codes are checked separately
    (:func:`healthmesh.identity.divisions.DivisionTable.code_known`) because they need the
    historical table.

    Raises:
        InvalidIdNumber: with a reason that does not contain the number.

    >>> parse_id_number("11010519491231002X").birth_date
    datetime.date(1949, 12, 31)
    """
    text = clean(raw)
    upgraded = False
    if _SHAPE15.match(text):
        text = upgrade15(text)
        upgraded = True
    if not _SHAPE18.match(text):
        raise InvalidIdNumber("identity number must have 18 characters (17 digits + 0-9/X)")
    if check_character(text[:17]) != text[17]:
        raise InvalidIdNumber("identity number check digit does not match")
    try:
        born = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError as exc:
        raise InvalidIdNumber("identity number has an impossible birth date") from exc
    limit = today or dt.date.today()
    if born > limit or born.year < 1880:
        raise InvalidIdNumber("identity number birth date out of range")
    sex = "1" if int(text[16]) % 2 == 1 else "2"
    return ResidentId(text, text[:6], born, sex, upgraded)


def try_parse_id_number(raw: str | None) -> ResidentId | None:
    """Like :func:`parse_id_number` but returns ``None`` for missing or invalid numbers."""
    if not raw:
        return None
    try:
        return parse_id_number(raw)
    except InvalidIdNumber:
        return None


def make_id_number(division_code: str, birth: dt.date, sequence: int) -> str:
    """Compose a valid 18-digit number (used by synthetic generators and tests).

    >>> make_id_number("110105", dt.date(1949, 12, 31), 2)
    '11010519491231002X'
    """
    if not (len(division_code) == 6 and division_code.isdigit()) or not 0 <= sequence < 1000:
        raise InvalidIdNumber("division code must be 6 digits and sequence 0..999")
    body = f"{division_code}{birth:%Y%m%d}{sequence:03d}"
    return body + check_character(body)
