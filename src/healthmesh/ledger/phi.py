"""A last-line scan for clear patient identifiers in strings bound for the ledger.

The entry schemas already restrict every field to identifiers, digests and pseudonyms; this
scan additionally refuses strings containing an 18-digit (or legacy 15-digit) Chinese resident
identity number, a mainland mobile number, an e-mail address or a date of birth in
``YYYY-MM-DD`` form inside an identifier. It returns the *kind* found, never the value, so
callers can report it without leaking it.
"""

from __future__ import annotations

import re
import secrets

_ID18 = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(18|19|20)\d{2}(0[1-9]|1[0-2])\d{2}\d{3}[0-9Xx](?![0-9])"
)
_ID15 = re.compile(r"(?<![0-9])[1-9]\d{5}\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}(?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])(\+?86[- ]?)?1[3-9]\d{9}(?![0-9])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_HEX_RUN = re.compile(r"[0-9a-f]{32,}")
_DIGITS11 = re.compile(r"[0-9]{11}")

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id18_check_ok(number: str) -> bool:
    """Whether an 18-character resident ID number has a valid GB 11643 check digit.

    >>> id18_check_ok("11010519491231002X")
    True
    """
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == number[17].upper()


def find_identifier(text: str) -> str | None:
    """The kind of clear identifier found in ``text`` (or ``None``).

    Hex digests are skipped first, so a ``sha256:…`` value never trips the number patterns.

    >>> find_identifier("sha256:" + "1" * 64) is None
    True
    >>> find_identifier("patient 11010519491231002X")
    'resident identity number'
    """
    stripped = _HEX_RUN.sub(" ", text)
    # Every number pattern needs 11 consecutive digits and an address needs "@": one cheap
    # test rules out nearly all strings before the detailed patterns run.
    if _DIGITS11.search(stripped):
        if _ID18.search(stripped) or _ID15.search(stripped):
            return "resident identity number"
        if _MOBILE.search(stripped):
            return "phone number"
    if "@" in stripped and _EMAIL.search(stripped):
        return "e-mail address"
    return None


def random_id(prefix: str, nbytes: int = 8) -> str:
    """``prefix`` + ``nbytes`` random bytes in hex, never holding 11 decimal digits in a row.

    Study, job and training-run ids go into ledger entries, whose scan (:func:`find_identifier`)
    refuses an 11-digit run bounded by non-digits that reads as a mobile number. About one
    16-hex-digit token in 2,000 holds one ("job-a13812345678ff"); the entry was then refused and
    the action it recorded failed (a study run answered 400). A token with any run of 11 digits
    (one in 60) is drawn again, so a generated id can always be written.

    >>> tok = random_id("job-")
    >>> tok.startswith("job-") and len(tok) == 20 and find_identifier(tok) is None
    True
    """
    while True:
        token = secrets.token_hex(nbytes)
        if not _DIGITS11.search(token):
            return prefix + token

