"""Search values to ranges and the FHIR comparison semantics on them (R4 search §3.1.1.4).

A target value is a half-open range ``[low, high)``; so is a search value (its implicit
precision). Prefix semantics are expressed on those ranges, so a single function serves
date, number and quantity parameters and can be tested from the specification's tables.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, not_, or_

from healthmesh.errors import InvalidInput


def number_range(text: str) -> tuple[float, float, float]:
    """Implicit range of a decimal search value: ``100`` -> [99.5, 100.5), ``1e2`` exact-ish.

    >>> number_range("100")
    (99.5, 100.5, 100.0)
    >>> number_range("5.40")
    (5.395, 5.405, 5.4)
    """
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise InvalidInput("not a number in a number/quantity search value") from None
    if not d.is_finite():
        raise InvalidInput("not a finite number in a search value")
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5) * Decimal(10) ** (exponent - 1)
    return float(d - half), float(d + half), float(d)


def range_condition(
    prefix: str,
    qlow: float,
    qhigh: float,
    low: Any,
    high: Any,
    *,
    now: float | None = None,
) -> Any:
    """SQL condition that a target range [low, high) satisfies ``prefix`` against [qlow, qhigh)."""
    contained = and_(low >= qlow, high <= qhigh)
    if prefix == "eq":
        return contained
    if prefix == "ne":
        return not_(contained)
    if prefix == "gt":
        return high > qhigh
    if prefix == "lt":
        return low < qlow
    if prefix == "ge":
        return or_(high > qhigh, contained)
    if prefix == "le":
        return or_(low < qlow, contained)
    if prefix == "sa":
        return low >= qhigh
    if prefix == "eb":
        return high <= qlow
    if prefix == "ap":
        ref = now if now is not None else time.time()
        gap = abs(ref - (qlow + qhigh) / 2) * 0.1
        return and_(low < qhigh + gap, high > qlow - gap)
    raise InvalidInput(f"unknown prefix {prefix}")


def value_condition(prefix: str, qlow: float, qhigh: float, qvalue: float, value: Any) -> Any:
    """Number/quantity comparison on the target's point value (spec: number search)."""
    if prefix == "eq":
        return and_(value >= qlow, value < qhigh)
    if prefix == "ne":
        return or_(value < qlow, value >= qhigh)
    if prefix in ("gt", "sa"):
        return value > qvalue
    if prefix in ("lt", "eb"):
        return value < qvalue
    if prefix == "ge":
        return value >= qvalue
    if prefix == "le":
        return value <= qvalue
    if prefix == "ap":
        gap = abs(qvalue) * 0.1
        return and_(value >= qvalue - gap, value <= qvalue + gap)
    raise InvalidInput(f"unknown prefix {prefix}")
