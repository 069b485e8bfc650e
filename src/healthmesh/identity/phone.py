"""Phone numbers for linkage: mainland mobile and landline numbers to one canonical digit form.

Hand-written rather than ``phonenumbers`` because linkage only needs a stable comparison key
(country prefix, separators and the trunk ``0`` removed), not formatting or carrier data.
"""

from __future__ import annotations

import re

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")


def normalise_phone(raw: str | None) -> str | None:
    """Canonical digits of a phone number, or ``None`` when it is not a plausible number.

    Mobile numbers become their 11 digits; landlines keep the area code with its trunk 0.

    >>> normalise_phone("+86 138-0013-8000")
    '13800138000'
    >>> normalise_phone("(010) 6512 3456")
    '01065123456'
    >>> normalise_phone("12345") is None
    True
    """
    if not raw:
        return None
    digits = re.sub(r"\D", "", raw.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    if raw.strip().startswith("+") and digits.startswith("86"):
        digits = digits[2:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if _MOBILE.match(digits) or _LANDLINE.match(digits):
        return digits
    return None
