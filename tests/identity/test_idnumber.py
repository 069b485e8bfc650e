"""Resident identity numbers: check digit, 15-digit upgrade, decoding, refusal of bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthmesh.identity.idnumber import (
    InvalidIdNumber,
    check_character,
    make_id_number,
    parse_id_number,
    try_parse_id_number,
    upgrade15,
)


def test_standard_example_from_gb11643() -> None:
    rid = parse_id_number("11010519491231002X")
    assert rid.division_code == "110105"
    assert rid.birth_date == dt.date(1949, 12, 31)
    assert rid.sex == "2"


def test_lower_case_x_spaces_and_fullwidth_digits_are_accepted() -> None:
    assert parse_id_number(" 110105 19491231 002x").number == "11010519491231002X"
    assert parse_id_number("１１０１０５１９４９１２３１００２Ｘ").number == "11010519491231002X"


def test_fifteen_digit_numbers_upgrade() -> None:
    assert upgrade15("110105491231002") == "11010519491231002X"
    assert parse_id_number("110105491231002").upgraded_from_15


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("11010519491231002", "18 characters"),
        ("110105194912310021", "check digit"),
        ("11010519491331002" + check_character("11010519491331002"), "birth date"),
        ("11010528001231002" + check_character("11010528001231002"), "out of range"),
    ],
)
def test_invalid_numbers_are_refused_without_echoing_them(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIdNumber) as info:
        parse_id_number(raw)
    assert reason in info.value.message
    assert raw not in info.value.message
    assert try_parse_id_number(raw) is None


@given(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)),
    st.integers(0, 999),
    st.integers(0, 16),
    st.integers(1, 9),
)
def test_every_single_digit_error_is_detected(
    born: dt.date, seq: int, pos: int, delta: int
) -> None:
    number = make_id_number("510122", born, seq)
    assert parse_id_number(number).birth_date == born
    wrong = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1 :]
    assert check_character(wrong[:17]) != wrong[17]
