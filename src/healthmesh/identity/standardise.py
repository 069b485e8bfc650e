"""Standardise a raw patient record (as a node holds it) into the fields the linkers compare.

Output fields, all strings or None: ``surname``, ``given`` (pinyin), ``birth_date``
(YYYYMMDD), ``birth_year``, ``sex`` (GB/T 2261.1 ``1``/``2``), ``id_number`` (validated,
18 digits), ``phone``, ``province``/``city``/``county`` (GB/T 2260 codes) and ``street``.
Birth date and sex fall back to what a valid identity number encodes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from healthmesh.identity.divisions import DivisionTable
from healthmesh.identity.idnumber import try_parse_id_number
from healthmesh.identity.names import standardise_name, to_simplified
from healthmesh.identity.phone import normalise_phone

_SEX = {"1": "1", "m": "1", "male": "1", "男": "1", "2": "2", "f": "2", "female": "2", "女": "2"}
_DATE = re.compile(r"^(\d{4})\D?(\d{1,2})\D?(\d{1,2})")


def standardise_date(raw: str | None) -> str | None:
    """``1990-1-2``, ``1990/01/02``, ``19900102``, ``1990年1月2日`` -> ``19900102``."""
    if not raw:
        return None
    m = _DATE.match(raw.strip())
    if not m:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3])).strftime("%Y%m%d")
    except ValueError:
        return None


def standardise_record(
    raw: Mapping[str, str | None], table: DivisionTable | None = None
) -> dict[str, str | None]:
    """Standardise one record with keys ``name`` (or ``surname``/``given``), ``birth_date``,
    ``sex``, ``id_number``, ``phone`` and ``address``; other keys (like ``id``) are kept.

    Example:
        >>> r = standardise_record({"name": "張偉", "id_number": "11010519491231002x"})
        >>> r["surname"], r["given"], r["birth_date"], r["sex"]
        ('zhang', 'wei', '19491231', '2')
    """
    table = table or DivisionTable.load()
    out: dict[str, str | None] = {k: v for k, v in raw.items() if k not in {"name", "address"}}
    if raw.get("surname") or raw.get("given"):
        name = standardise_name(surname=raw.get("surname"), given=raw.get("given"))
    else:
        name = standardise_name(raw.get("name") or "")
    out["surname"], out["given"] = name.surname or None, name.given or None
    parsed_id = try_parse_id_number(raw.get("id_number"))
    if parsed_id and not table.code_known(parsed_id.division_code):
        parsed_id = None  # a well-formed number with a region code that never existed
    out["id_number"] = parsed_id.number if parsed_id else None
    birth = standardise_date(raw.get("birth_date"))
    if birth is None and parsed_id:
        birth = parsed_id.birth_date.strftime("%Y%m%d")
    out["birth_date"] = birth
    out["birth_year"] = birth[:4] if birth else None
    out["birth_md"] = birth[4:] if birth else None
    sex = _SEX.get((raw.get("sex") or "").strip().lower())
    out["sex"] = sex or (parsed_id.sex if parsed_id else None)
    out["phone"] = normalise_phone(raw.get("phone"))
    address = to_simplified(raw.get("address") or "")
    parsed = table.parse_address(address) if address else None
    out["province"] = parsed.province if parsed else None
    out["city"] = parsed.city if parsed else None
    out["county"] = parsed.county if parsed else None
    out["street"] = ("".join(parsed.rest.split()) or None) if parsed else None
    return out
