"""Ready-made linkage specifications: Western-style person records (the FEBRL layout) and
standardised Chinese patient records (see :mod:`healthmesh.identity.standardise`)."""

from __future__ import annotations

import pandas as pd

from healthmesh.identity.blocking_keys import soundex
from healthmesh.identity.engine.comparisons import (
    Comparison,
    EditDistance,
    Exact,
    JaroWinkler,
    NamePair,
    Spec,
)

FEBRL_COLUMNS = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)


def prepare_febrl(frame: pd.DataFrame) -> pd.DataFrame:
    """Trim, lower-case and null-fill a FEBRL-layout frame; ``rec_id`` becomes ``id``."""
    out = pd.DataFrame({"id": frame["rec_id"].astype(str).str.strip()})
    for col in FEBRL_COLUMNS:
        values = frame[col].astype("string").str.strip().str.lower()
        out[col] = values.where(values.notna() & (values != ""), None).astype(object)
    out["dob_year"] = out["date_of_birth"].map(lambda v: v[:4] if isinstance(v, str) else None)
    out["soundex_given"] = out["given_name"].map(
        lambda v: soundex(v) if isinstance(v, str) else None
    )
    return out


def febrl_spec(*, with_ssn: bool = True) -> Spec:
    """Blocking and comparisons for FEBRL-layout records."""
    comparisons: list[Comparison] = [
        NamePair("given_name", "surname"),
        JaroWinkler("given_name", (0.92, 0.8)),
        JaroWinkler("surname", (0.92, 0.8)),
        EditDistance("date_of_birth", (1, 2)),
        Exact("street_number"),
        JaroWinkler("address_1", (0.9, 0.8)),
        JaroWinkler("address_2", (0.9,)),
        JaroWinkler("suburb", (0.9,)),
        EditDistance("postcode", (1,)),
        Exact("state"),
    ]
    blocking: list[tuple[str, ...]] = [
        ("given_name", "surname"),
        ("surname", "date_of_birth"),
        ("given_name", "date_of_birth"),
        ("postcode", "given_name"),
        ("postcode", "surname"),
        ("date_of_birth", "postcode"),
        ("address_1", "street_number"),
        ("surname",),
        ("date_of_birth",),
        ("soundex_given", "dob_year"),
        ("postcode", "street_number"),
    ]
    if with_ssn:
        comparisons.append(EditDistance("soc_sec_id", (1, 2)))
        blocking.append(("soc_sec_id",))
    return Spec(comparisons, blocking)


def chinese_spec() -> Spec:
    """Blocking and comparisons for standardised Chinese patient records."""
    return Spec(
        [
            NamePair("given", "surname"),
            JaroWinkler("given", (0.92, 0.8)),
            JaroWinkler("surname", (0.9,)),
            EditDistance("birth_date", (1, 2)),
            Exact("sex"),
            EditDistance("id_number", (1, 2)),
            EditDistance("phone", (1,)),
            Exact("county"),
            JaroWinkler("street", (0.9, 0.7)),
        ],
        [
            ("surname", "birth_date"),
            ("given", "birth_date"),
            ("id_number",),
            ("phone",),
            ("surname", "given"),
            ("county", "birth_date"),
        ],
    )
