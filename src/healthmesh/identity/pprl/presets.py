"""Encoding schemas and blocking rules for the FEBRL layout and for Chinese patient records."""

from __future__ import annotations

from healthmesh.identity.pprl.bloom import EncodingSchema, FieldEncoding

FEBRL_BLOCKING: list[tuple[str, ...]] = [
    ("date_of_birth",),
    ("soundex_given", "dob_year"),
    ("surname", "postcode"),
]

CHINESE_BLOCKING: list[tuple[str, ...]] = [
    ("birth_date",),
    ("surname", "birth_year"),
    ("given", "birth_year"),
    ("phone",),
    ("surname", "given"),
    ("surname", "birth_md"),
]


def febrl_schema() -> EncodingSchema:
    """CLK schema for FEBRL-layout records (no social security number).

    Names share one key group and the two address lines another, so swapped fields agree.
    """
    return EncodingSchema(
        [
            FieldEncoding("given_name", "bigram", 15, "name"),
            FieldEncoding("surname", "bigram", 15, "name"),
            FieldEncoding("street_number", "bigram", 6),
            FieldEncoding("address_1", "bigram", 6, "address"),
            FieldEncoding("address_2", "bigram", 6, "address"),
            FieldEncoding("suburb", "bigram", 6),
            FieldEncoding("postcode", "bigram", 6),
            FieldEncoding("state", "whole", 4),
            FieldEncoding("date_of_birth", "date", 10),
        ]
    )


def chinese_schema() -> EncodingSchema:
    """CLK schema for standardised Chinese records (pinyin names, dates, divisions, phone)."""
    return EncodingSchema(
        [
            FieldEncoding("surname", "bigram", 10, "name"),
            FieldEncoding("given", "bigram", 10, "name"),
            FieldEncoding("birth_date", "date", 20),
            FieldEncoding("sex", "whole", 6),
            FieldEncoding("county", "whole", 8),
            FieldEncoding("city", "whole", 4),
            FieldEncoding("street", "bigram", 4),
            FieldEncoding("phone", "bigram", 5),
        ]
    )
