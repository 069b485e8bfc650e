"""Self-contained, offline-verifiable ledger evidence.

* A **proof bundle** shows one entry is in the log: the cosigned checkpoint, the entry's exact
  canonical bytes, its index and the inclusion proof. A regulator checks it on any machine
  with only the hub's log public key and the witnesses' public keys.
* A **log export** is a checkpoint plus all entries up to its size; verifying it recomputes
  the root, so any changed, deleted, inserted or reordered entry, or a replaced root, fails.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import rfc8785

from healthmesh.errors import InvalidInput, LedgerIntegrityError
from healthmesh.ledger.checkpoint import Checkpoint, open_checkpoint
from healthmesh.ledger.cosign import CosignatureVerifier, verify_final_checkpoint
from healthmesh.ledger.hashing import leaf_hash, root_from_entries
from healthmesh.ledger.note import NoteVerifier
from healthmesh.ledger.verify import verify_inclusion

if TYPE_CHECKING:
    from healthmesh.ledger.log import TransparencyLog

BUNDLE_FORMAT = "healthmesh-ledger-proof/v1"
EXPORT_FORMAT = "healthmesh-ledger-export/v1"


@dataclass(frozen=True)
class Trust:
    """What an offline verifier trusts: the log key, the witness keys and the quorum."""

    log: NoteVerifier
    witnesses: tuple[CosignatureVerifier, ...] = ()
    quorum: int = 0
    origin: str | None = None

    def checkpoint(self, note: str) -> tuple[Checkpoint, list[str]]:
        """Verify a checkpoint's log signature and witness quorum."""
        if self.quorum > 0:
            return verify_final_checkpoint(
                note, self.log, list(self.witnesses), self.quorum, self.origin
            )
        cp, _, names = open_checkpoint(note, self.log, self.origin, list(self.witnesses))
        return cp, [n for n in names if n != self.log.name]


def make_bundle(log: TransparencyLog, index: int, size: int | None = None) -> dict[str, Any]:
    """A proof bundle for entry ``index`` against the latest checkpoint covering it (or the
    checkpoint of exactly ``size``)."""
    if size is None:
        cp_size, _ = log.checkpoint()
        if cp_size <= index:
            cp_size, _ = log.publish_checkpoint()
    else:
        cp_size = size
    cp_size, note = log.checkpoint(cp_size)
    if not 0 <= index < cp_size:
        raise InvalidInput("entry not covered by a checkpoint")
    return {
        "format": BUNDLE_FORMAT,
        "checkpoint": note,
        "index": index,
        "size": cp_size,
        "entry": log.entry(index).decode("utf-8"),
        "inclusion": [base64.b64encode(h).decode() for h in log.inclusion_proof(index, cp_size)],
    }


def _decode_hashes(items: Any) -> list[bytes]:
    if not isinstance(items, list):
        raise InvalidInput("proof hashes must be a list")
    try:
        return [base64.b64decode(x, validate=True) for x in items]
    except (binascii.Error, TypeError) as exc:
        raise InvalidInput("proof hash is not base64") from exc


def verify_bundle(bundle: dict[str, Any], trust: Trust) -> dict[str, Any]:
    """Check a proof bundle offline; return a summary or raise ``LedgerIntegrityError``."""
    if bundle.get("format") != BUNDLE_FORMAT:
        raise InvalidInput("not a ledger proof bundle")
    cp, cosigners = trust.checkpoint(str(bundle["checkpoint"]))
    if cp.size != bundle.get("size"):
        raise LedgerIntegrityError("bundle size differs from its checkpoint")
    raw = str(bundle["entry"]).encode("utf-8")
    if rfc8785.dumps(json.loads(raw)) != raw:
        raise LedgerIntegrityError("entry is not in canonical form")
    index = bundle.get("index")
    if not isinstance(index, int):
        raise InvalidInput("bundle index must be an integer")
    verify_inclusion(index, cp.size, leaf_hash(raw), _decode_hashes(bundle["inclusion"]), cp.root)
    return {
        "index": index,
        "size": cp.size,
        "origin": cp.origin,
        "cosigners": cosigners,
        "entry": json.loads(raw),
    }


def make_export(log: TransparencyLog, size: int | None = None) -> dict[str, Any]:
    """The cosigned checkpoint and every entry it covers."""
    cp_size, note = log.checkpoint(size)
    return {
        "format": EXPORT_FORMAT,
        "checkpoint": note,
        "entries": [e.decode("utf-8") for e in log.entries(0, cp_size)],
    }


def verify_export(export: dict[str, Any], trust: Trust) -> dict[str, Any]:
    """Recompute the root over all exported entries and compare with the checkpoint."""
    if export.get("format") != EXPORT_FORMAT:
        raise InvalidInput("not a ledger export")
    cp, cosigners = trust.checkpoint(str(export["checkpoint"]))
    entries = [str(e).encode("utf-8") for e in export["entries"]]
    if len(entries) != cp.size:
        raise LedgerIntegrityError("number of entries differs from the checkpoint size")
    if root_from_entries(entries) != cp.root:
        raise LedgerIntegrityError("entries do not hash to the checkpoint root")
    return {"size": cp.size, "origin": cp.origin, "cosigners": cosigners}
