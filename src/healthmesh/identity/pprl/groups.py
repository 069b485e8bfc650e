"""Field-group encodings: one hardened Bloom filter per group of quasi-identifiers.

A record-level CLK (:mod:`.bloom`) mixes every field into one filter, so the hub cannot tell
a field that disagrees from one that is missing. Across a region that matters: a pharmacy
knows a member's name and phone only, a clinic often lacks the identity number, a hospital
has everything. Two sparse records then look alike (they share their absences) and a sparse
record looks unlike its own full record. With one filter per *group* — name, birth date and
sex, address, phone — the hub scores each group separately, treats a group missing on either
side as "no evidence", and weighs the groups by Fellegi-Sunter (:mod:`.fs_scoring`).

Hardening is the same per group: keyed random hashing, balancing (every present segment has
exactly half its bits set) and a keyed permutation per group. A group missing at the node is
sent as an all-zero segment, which no present group can produce, so presence is visible to
the hub — as it already is from the blocking tokens (0 = missing). Equal values give equal
segments; the hub could count them, but it already counts equal keyed blocking tokens of
(surname, given), birth date and phone, so the frequency information is not new. What a
group filter adds is similarity *within* a group (e.g. names that differ by one character),
the least a linkage that tolerates typos must reveal. See docs/linkage.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from healthmesh.identity.pprl.bloom import BloomEncoder, EncodingSchema, FieldEncoding


@dataclass(frozen=True)
class FieldGroup:
    """One segment: its fields (with hash counts) and its unbalanced filter length in bits."""

    name: str
    fields: tuple[FieldEncoding, ...]
    length: int = 256


@dataclass(frozen=True)
class GroupSchema:
    """The segments of a linkage project, in order (public: the hub needs the boundaries)."""

    groups: tuple[FieldGroup, ...]
    version: str = "hm-gclk-1"

    @property
    def segment_bytes(self) -> tuple[int, ...]:
        """Bytes of each balanced segment (2 x length bits)."""
        return tuple(2 * g.length // 8 for g in self.groups)

    @property
    def names(self) -> tuple[str, ...]:
        """Group names, in order."""
        return tuple(g.name for g in self.groups)


def chinese_groups() -> GroupSchema:
    """Groups for standardised Chinese records: name, birth date + sex, address, phone.

    Surname and given name share a key group inside the name segment, so a swap still agrees.
    """
    return GroupSchema(
        (
            FieldGroup(
                "name",
                (
                    FieldEncoding("surname", "bigram", 15, "name"),
                    FieldEncoding("given", "bigram", 15, "name"),
                ),
                512,
            ),
            FieldGroup(
                "birth",
                (FieldEncoding("birth_date", "date", 20), FieldEncoding("sex", "whole", 10)),
                256,
            ),
            FieldGroup(
                "address",
                (
                    FieldEncoding("county", "whole", 20),
                    FieldEncoding("city", "whole", 10),
                    FieldEncoding("street", "bigram", 10),
                ),
                512,
            ),
            FieldGroup("phone", (FieldEncoding("phone", "bigram", 10),), 256),
        )
    )


class GroupEncoder:
    """Encode records into concatenated, per-group balanced filters under a project secret.

    Example:
        >>> enc = GroupEncoder(b"k" * 32, chinese_groups())
        >>> rows = enc.encode_many([{"surname": "li", "phone": "+8613800138000"}])
        >>> rows.shape[1] == sum(chinese_groups().segment_bytes)
        True
        >>> [int(np.unpackbits(seg[0]).sum()) for seg in enc.split(rows)]
        [512, 0, 0, 256]
    """

    def __init__(self, secret: bytes, schema: GroupSchema) -> None:
        self.schema = schema
        self._encoders = [
            BloomEncoder(
                secret,
                EncodingSchema(
                    list(g.fields), length=g.length, version=f"{schema.version}:{g.name}"
                ),
            )
            for g in schema.groups
        ]

    def encode_many(self, records: Sequence[Mapping[str, str | None]]) -> NDArray[np.uint8]:
        """Packed rows: the segments of each record side by side (absent groups all zero)."""
        parts = []
        for group, enc in zip(self.schema.groups, self._encoders, strict=True):
            seg = enc.encode_many(records)
            present = np.fromiter(
                (any(rec.get(f.name) for f in group.fields) for rec in records),
                dtype=bool,
                count=len(records),
            )
            seg[~present] = 0
            parts.append(seg)
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(records), 0), np.uint8)

    def split(self, rows: NDArray[np.uint8]) -> NDArray[np.object_]:
        """Rows cut into their segments: an object array (groups,) of (records, bytes)."""
        return split_segments(rows, self.schema)


def split_segments(rows: NDArray[np.uint8], schema: GroupSchema) -> NDArray[np.object_]:
    """Cut packed rows into per-group arrays (what the hub does; it needs only the schema)."""
    bounds = np.cumsum((0, *schema.segment_bytes))
    if rows.shape[1] != bounds[-1]:
        raise ValueError("encoding width does not match the group schema")
    out = np.empty(len(schema.groups), dtype=object)
    for i in range(len(schema.groups)):
        out[i] = np.ascontiguousarray(rows[:, bounds[i] : bounds[i + 1]])
    return out
