"""Node-side encoding of a batch of standardised records: CLKs, keyed identity-number tokens
and keyed blocking tokens. The project secret never leaves the nodes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from healthmesh.identity.divisions import DivisionTable
from healthmesh.identity.idnumber import try_parse_id_number
from healthmesh.identity.pprl.blocking import blocking_tokens
from healthmesh.identity.pprl.bloom import BloomEncoder, EncodingSchema


def identity_token(secret: bytes, raw_id: str | None) -> bytes | None:
    """Keyed HMAC-SHA256 (16 bytes) of a *validated* resident identity number, else None.

    Only numbers that pass the check digit, date and GB/T 2260 division checks are
    tokenised, so a typo does not produce a confident-looking token. Never an unkeyed hash:
    the ID space is enumerable.
    """
    parsed = try_parse_id_number(raw_id)
    if parsed is None or not DivisionTable.load().code_known(parsed.division_code):
        return None
    key = hmac.digest(secret, b"resident-id", hashlib.sha256)
    return hmac.digest(key, parsed.number.encode(), hashlib.sha256)[:16]


@dataclass
class EncodedTable:
    """What a node sends for linkage: ids, CLKs, ID tokens (0 = none) and blocking tokens."""

    ids: NDArray[np.object_]
    clks: NDArray[np.uint8]
    id_tokens: NDArray[np.uint64]
    blocking: NDArray[np.uint64]

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def encode_table(
    secret: bytes,
    schema: EncodingSchema,
    records: Sequence[Mapping[str, str | None]],
    *,
    id_field: str = "id",
    identity_field: str | None = None,
    blocking_rules: Sequence[tuple[str, ...]] = (),
    encoder: BloomEncoder | None = None,
) -> EncodedTable:
    """Encode standardised records (dicts of strings) at a node.

    Example:
        >>> from healthmesh.identity.pprl.bloom import FieldEncoding
        >>> schema = EncodingSchema([FieldEncoding("surname")])
        >>> t = encode_table(b"s" * 32, schema, [{"id": "1", "surname": "li"}])
        >>> t.clks.shape
        (1, 256)
    """
    enc = encoder or BloomEncoder(secret, schema)
    clks = enc.encode_many(records)
    id_tokens = np.zeros(len(records), dtype=np.uint64)
    if identity_field:
        for i, rec in enumerate(records):
            tok = identity_token(secret, rec.get(identity_field))
            if tok is not None:
                id_tokens[i] = int.from_bytes(tok[:8], "big") or 1
    blocks = blocking_tokens(secret, blocking_rules, records)
    ids = np.asarray([rec.get(id_field) for rec in records], dtype=object)
    return EncodedTable(ids, clks, id_tokens, blocks)


def save_encoded(table: EncodedTable, path: str) -> None:
    """Write an encoded table to an ``.npz`` file (what a node uploads)."""
    np.savez_compressed(
        path,
        ids=np.asarray([str(x) for x in table.ids]),
        clks=table.clks,
        id_tokens=table.id_tokens,
        blocking=table.blocking,
    )


def load_encoded(path: str) -> EncodedTable:
    """Read a table written by :func:`save_encoded` (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as data:
        return EncodedTable(
            np.asarray(data["ids"].tolist(), dtype=object),
            data["clks"].astype(np.uint8),
            data["id_tokens"].astype(np.uint64),
            data["blocking"].astype(np.uint64),
        )
