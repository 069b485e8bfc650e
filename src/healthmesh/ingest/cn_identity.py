"""Chinese identifiers: the 18-character resident identity number (GB 11643-1999) and
mainland mobile numbers, checked and normalised.

The check is small and exact (ISO 7064 MOD 11-2), so it is written here rather than pulled
from a package: the PyPI ones bundle division-code tables we do not need and are unmaintained.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^\d{17}[\dXx]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


@dataclass(frozen=True)
class ResidentIdCheck:
    """Outcome of checking a resident identity number. ``problem`` is public (no digits)."""

    value: str  # normalised: upper-case X
    valid: bool
    problem: str | None = None


def check_digit(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits.

    >>> check_digit("11010519491231002")
    'X'
    """
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def check_resident_id(value: str, *, today: dt.date | None = None) -> ResidentIdCheck:
    """Check shape, birth date and check digit of an 18-character resident identity number.

    >>> check_resident_id("11010519491231002x").valid
    True
    >>> check_resident_id("110105194912310021").problem
    'check digit does not match (GB 11643)'
    """
    v = value.strip().replace(" ", "").upper()
    if not _ID_SHAPE.match(v):
        return ResidentIdCheck(v, False, "not 17 digits and a check character")
    try:
        born = dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return ResidentIdCheck(v, False, "birth date part is not a date")
    if born.year < 1880 or born > (today or dt.date.today()):
        return ResidentIdCheck(v, False, "birth date part is out of range")
    if check_digit(v[:17]) != v[17]:
        return ResidentIdCheck(v, False, "check digit does not match (GB 11643)")
    return ResidentIdCheck(v, True)


def resident_id_birth_sex(value: str) -> tuple[str, str]:
    """Birth date (ISO) and FHIR gender encoded in a valid resident identity number.

    >>> resident_id_birth_sex("11010519491231002X")
    ('1949-12-31', 'female')
    """
    return f"{value[6:10]}-{value[10:12]}-{value[12:14]}", (
        "male" if int(value[16]) % 2 else "female"
    )


def normalise_mobile(value: str) -> str | None:
    """A mainland mobile number as ``+86`` and 11 digits, or None when it is not one.

    >>> normalise_mobile("+86 138-0013-8000"), normalise_mobile("010-12345678")
    ('+8613800138000', None)
    """
    digits = re.sub(r"[\s\-()]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return "+86" + digits if _MOBILE.match(digits) else None
