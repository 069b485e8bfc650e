"""Query-side coercions: date/number/quantity parsing, prefixes, string normalisation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from healthmesh.fhir.search import (
    InvalidSearchValue,
    normalize_string,
    parse_date_param,
    parse_number_param,
    parse_quantity_param,
    range_matches,
    split_prefix,
)


def ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[arg-type, misc]


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2013", ts(2013, 1, 1), ts(2014, 1, 1)),
        ("2012-02", ts(2012, 2, 1), ts(2012, 3, 1)),
        ("2012-02-29", ts(2012, 2, 29), ts(2012, 3, 1)),
        ("2013-01-14T10", ts(2013, 1, 14, 10), ts(2013, 1, 14, 11)),
        ("2013-01-14T10:00", ts(2013, 1, 14, 10), ts(2013, 1, 14, 10, 1)),
        ("2013-01-14T10:00:00Z", ts(2013, 1, 14, 10), ts(2013, 1, 14, 10, 0, 1)),
        ("2013-01-14T10:00:00+10:00", ts(2013, 1, 14, 0), ts(2013, 1, 14, 0, 0, 1)),
        (
            "2013-01-14T10:00:00 10:00",
            ts(2013, 1, 14, 0),
            ts(2013, 1, 14, 0, 0, 1),
        ),  # '+' lost in URL
        ("2013-01-14T10:00:00-03:30", ts(2013, 1, 14, 13, 30), ts(2013, 1, 14, 13, 30, 1)),
        ("2013-01-14T10:00:00.5Z", ts(2013, 1, 14, 10) + 0.5, ts(2013, 1, 14, 10) + 0.6),
    ],
)
def test_parse_date_param_precisions(text: str, low: float, high: float) -> None:
    got = parse_date_param(text)
    assert got[0] == pytest.approx(low) and got[1] == pytest.approx(high)


@pytest.mark.parametrize(
    "bad", ["", "13", "2013-13", "2013-02-30", "2013-01-14T25:00", "abc", "2013/01"]
)
def test_parse_date_param_rejects(bad: str) -> None:
    with pytest.raises(InvalidSearchValue) as err:
        parse_date_param(bad)
    assert bad not in err.value.message or not bad  # the value is never echoed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ge2013-01", ("ge", "2013-01")),
        ("lt2013", ("lt", "2013")),
        ("2013", ("eq", "2013")),
        ("ap100", ("ap", "100")),
        ("ne-5", ("ne", "-5")),
        ("sa2013", ("sa", "2013")),
        ("eb2013", ("eb", "2013")),
        ("le.5", ("le", ".5")),
        ("gtx", ("eq", "gtx")),
    ],
)
def test_split_prefix(text: str, expected: tuple[str, str]) -> None:
    assert split_prefix(text) == expected


Y2013 = parse_date_param("2013")


@pytest.mark.parametrize(
    ("prefix", "target", "expected"),
    [
        ("eq", "2013-05-01", True),
        ("eq", "2013", True),
        ("eq", "2014-01-01", False),
        ("ne", "2014-01-01", True),
        ("ne", "2013-06", False),
        ("gt", "2014-01-01", True),
        ("gt", "2013-12-31", False),
        ("lt", "2012-12-31", True),
        ("lt", "2013-01-01", False),
        ("ge", "2013-01-01", True),
        ("ge", "2012-12-31", False),
        ("le", "2013-12-31", True),
        ("le", "2014-01-01", False),
        ("sa", "2014-01-01", True),
        ("sa", "2013-12-31", False),
        ("eb", "2012-12-31", True),
        ("eb", "2013-01-01", False),
        ("ap", "2014-01-10", True),
        ("ap", "2014-03-01", False),
    ],
)
def test_range_matches_dates(prefix: str, target: str, expected: bool) -> None:
    assert range_matches(prefix, *Y2013, *parse_date_param(target)) is expected


def test_range_matches_periods() -> None:
    period = (ts(2012, 6, 1), ts(2013, 6, 1))  # overlaps the start of 2013
    assert range_matches("eq", *Y2013, *period) is False
    assert range_matches("lt", *Y2013, *period) is True
    assert range_matches("gt", *Y2013, *period) is False
    with pytest.raises(InvalidSearchValue):
        range_matches("xx", 0, 1, 0, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", (99.5, 100.5, 100.0)),
        ("100.00", (99.995, 100.005, 100.0)),
        ("1e2", (50.0, 150.0, 100.0)),
        ("0.5", (0.45, 0.55, 0.5)),
        ("-3", (-3.5, -2.5, -3.0)),
    ],
)
def test_parse_number_param(text: str, expected: tuple[float, float, float]) -> None:
    assert parse_number_param(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["", "abc", "1..2", "NaN", "inf"])
def test_parse_number_param_rejects(bad: str) -> None:
    with pytest.raises(InvalidSearchValue):
        parse_number_param(bad)


def test_number_prefixes() -> None:
    q = parse_number_param("100")
    assert range_matches("eq", *q[:2], 99.6, 99.7)
    assert not range_matches("eq", *q[:2], 100.5, 100.6)
    assert range_matches("gt", *q[:2], 100.5, 101.5)


def test_parse_quantity_param() -> None:
    assert parse_quantity_param("5.4|http://unitsofmeasure.org|mg") == (
        pytest.approx((5.35, 5.45, 5.4)),
        "http://unitsofmeasure.org",
        "mg",
    )
    assert parse_quantity_param("5.4||mg")[1:] == (None, "mg")
    assert parse_quantity_param("5")[1:] == (None, None)


@pytest.mark.parametrize(
    ("text", "norm"),
    [
        ("Chalmers", "chalmers"),
        ("  Peter   James ", "peter james"),
        ("Bénédicte du Marché", "benedicte du marche"),
        ("STRASSE Straße", "strasse strasse"),
        ("ＡＢＣ", "abc"),  # full-width folds (NFKD)
        ("王\u3000小明", "王 小明"),  # ideographic space collapses
    ],
)
def test_normalize_string(text: str, norm: str) -> None:
    assert normalize_string(text) == norm
