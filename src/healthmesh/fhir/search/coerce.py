"""Value normalisation shared by indexing (write side) and search (query side).

- strings: :func:`normalize_string` (NFKD, accents stripped, case-folded, whitespace collapsed);
- dates: :func:`date_range` turns a FHIR ``date``/``dateTime``/``instant`` into a half-open
  ``[low, high)`` range of POSIX seconds (UTC) at the value's precision; :func:`parse_date_param`
  does the same for a search value. A ``dateTime`` with a time but no timezone (invalid in
  resources, allowed in searches) is taken as UTC;
- numbers: :func:`number_range` and :func:`parse_number_param` give the implicit precision
  range (``100`` -> ``[99.5, 100.5)``, ``1e2`` -> ``[50, 150)``);
- prefixes: :func:`split_prefix` and :func:`range_matches` implement the R4 prefix semantics
  (``eq ne gt lt ge le sa eb ap``) on ranges, as an in-memory twin of the store's SQL.

Why hand-written: ``datetime.fromisoformat`` neither keeps the precision of partial dates
(``2013``, ``2013-01``) nor gives the end of the implied range, and it is slower than the
regex + ordinal arithmetic here on the hot write path.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from healthmesh.errors import InvalidInput

#: Sentinels for open Period ends (POSIX seconds), far outside any real date.
DATE_MIN = -1e12
DATE_MAX = 1e12
#: Sentinels for open numeric ranges (Range without low/high, comparators).
NUM_MIN = -1e300
NUM_MAX = 1e300
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

_EPOCH = date(1970, 1, 1).toordinal()
_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


class InvalidSearchValue(InvalidInput):
    """A search value could not be parsed (the message never echoes the value)."""


@lru_cache(maxsize=65536)
def normalize_string(text: str) -> str:
    """Normalise text for string search: accents stripped, case-folded, spaces collapsed.

    >>> normalize_string("  Zoë   CHALMERS ")
    'zoe chalmers'
    >>> normalize_string("张 三")
    '张 三'
    """
    if text.isascii():
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def _month_start(year: int, month: int) -> int:
    return date(year, month, 1).toordinal() - _EPOCH


@lru_cache(maxsize=65536)  # Synthea repeats timestamps across an encounter's resources
def date_range(text: str, *, search: bool = False) -> tuple[float, float] | None:
    """``[low, high)`` in POSIX seconds for a FHIR date/dateTime/instant, or None if invalid.

    >>> date_range("2013")
    (1356998400.0, 1388534400.0)
    >>> date_range("2013-01-14T10:00:00+01:00")
    (1358154000.0, 1358154001.0)
    """
    m = _DATE.fullmatch(text)
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    year = int(y)
    try:
        if mo is None:
            high = _month_start(year + 1, 1) * 86400.0 if year < 9999 else DATE_MAX
            return _month_start(year, 1) * 86400.0, high
        month = int(mo)
        if d is None:
            nxt = _month_start(year + 1, 1) if month == 12 else _month_start(year, month + 1)
            return _month_start(year, month) * 86400.0, nxt * 86400.0
        days = date(year, month, int(d)).toordinal() - _EPOCH
    except ValueError:
        return None
    if hh is None:
        return days * 86400.0, (days + 1) * 86400.0
    if mi is None and not search:
        return None  # resources always carry minutes with an hour
    hour, minute = int(hh), int(mi or 0)
    second = int(ss or 0)
    if hour > 23 or minute > 59 or second > 60:
        return None
    low = days * 86400.0 + hour * 3600 + minute * 60 + second
    if frac:
        low += float(frac)
        width = 10.0 ** -(len(frac) - 1)
    elif ss is not None:
        width = 1.0
    elif mi is not None:
        width = 60.0
    else:
        width = 3600.0
    if tz and tz != "Z":
        offset = (int(tz[1:3]) * 60 + int(tz[4:6])) * 60
        low -= offset if tz[0] == "+" else -offset
    return low, low + width


def parse_date_param(text: str) -> tuple[float, float]:
    """Parse a search date value (no prefix; see :func:`split_prefix`) into ``[low, high)``.

    Accepts ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``, ``YYYY-MM-DDThh[:mm[:ss[.fff]]]`` with an
    optional ``Z``/``±hh:mm`` zone (a ``+`` decoded to a space from a URL is accepted).

    >>> parse_date_param("2013-01")
    (1356998400.0, 1359676800.0)
    """
    text = text.strip()
    if len(text) > 19 and text[-6] == " ":
        text = text[:-6] + "+" + text[-5:]
    got = date_range(text, search=True)
    if got is None:
        raise InvalidSearchValue("invalid date search value")
    return got


def number_range(value: int | float | Decimal) -> tuple[float, float, float]:
    """``(low, high, value)`` with the implicit precision of a stored number.

    Integers have unit precision; a float's precision is that of its shortest repr
    (JSON ``1.50`` has already become ``1.5`` when parsed, so ``[1.45, 1.55)``).

    >>> number_range(100)
    (99.5, 100.5, 100.0)
    """
    if isinstance(value, bool):
        raise TypeError("boolean is not a number")
    if isinstance(value, int):
        return value - 0.5, value + 0.5, float(value)
    if isinstance(value, Decimal):
        return _decimal_range(value)
    return _float_range(value)


@lru_cache(maxsize=16384)  # one value is often indexed by several parameters
def _float_range(value: float) -> tuple[float, float, float]:
    return _decimal_range(Decimal(repr(value)))


def _decimal_range(dec: Decimal) -> tuple[float, float, float]:
    exp = dec.as_tuple().exponent
    if not isinstance(exp, int):
        raise InvalidSearchValue("number is not finite")
    half = Decimal(5).scaleb(exp - 1)
    low, high = float(dec - half), float(dec + half)
    if high <= low:  # more digits than a double holds: keep the range non-empty
        high = math.nextafter(low, math.inf)
    return low, high, float(dec)


def parse_number_param(text: str) -> tuple[float, float, float]:
    """Parse a search number (no prefix) into ``(low, high, value)``.

    >>> parse_number_param("100")
    (99.5, 100.5, 100.0)
    >>> parse_number_param("1e2")
    (50.0, 150.0, 100.0)
    """
    try:
        dec = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidSearchValue("invalid number search value") from None
    if not dec.is_finite():
        raise InvalidSearchValue("invalid number search value")
    return _decimal_range(dec)


def parse_quantity_param(
    text: str,
) -> tuple[tuple[float, float, float], str | None, str | None]:
    """Parse ``number[|system[|code]]`` into ``((low, high, value), system, code)``.

    Empty system/code parts are None (``5.4||mg`` matches unit code or unit text ``mg``).

    >>> parse_quantity_param("5.4|http://unitsofmeasure.org|mg")
    ((5.35, 5.45, 5.4), 'http://unitsofmeasure.org', 'mg')
    """
    parts = re.split(r"(?<!\\)\|", text, maxsplit=2)
    number = parse_number_param(parts[0])
    system = parts[1].replace("\\|", "|") or None if len(parts) > 1 else None
    code = parts[2].replace("\\|", "|") or None if len(parts) > 2 else None
    return number, system, code


def split_prefix(text: str) -> tuple[str, str]:
    """Split a comparison prefix off a number/date/quantity value (default ``eq``).

    >>> split_prefix("ge2013-01"), split_prefix("2013"), split_prefix("lt-5")
    (('ge', '2013-01'), ('eq', '2013'), ('lt', '-5'))
    """
    head, rest = text[:2], text[2:]
    if head in PREFIXES and rest[:1] and (rest[0].isdigit() or rest[0] in "-."):
        return head, rest
    return "eq", text


def range_matches(prefix: str, q_low: float, q_high: float, t_low: float, t_high: float) -> bool:
    """Whether a target range ``[t_low, t_high)`` matches a search range under ``prefix``.

    R4 semantics: ``eq`` the search range contains the target; ``gt``/``lt`` the target
    reaches above/below the search range; ``ge``/``le`` either of those or ``eq``;
    ``sa``/``eb`` the target starts after/ends before the search range; ``ap`` the target
    overlaps the search range widened by 10% of its width on each side.

    >>> range_matches("ge", *parse_date_param("2013"), *parse_date_param("2014-05"))
    True
    """
    contained = q_low <= t_low and t_high <= q_high
    if prefix == "eq":
        return contained
    if prefix == "ne":
        return not contained
    if prefix == "gt":
        return t_high > q_high
    if prefix == "lt":
        return t_low < q_low
    if prefix == "ge":
        return t_high > q_high or contained
    if prefix == "le":
        return t_low < q_low or contained
    if prefix == "sa":
        return t_low >= q_high
    if prefix == "eb":
        return t_high <= q_low
    if prefix == "ap":
        widen = 0.1 * (q_high - q_low)
        return t_low < q_high + widen and q_low - widen < t_high
    raise InvalidSearchValue("unknown comparison prefix")
