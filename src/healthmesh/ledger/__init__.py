"""The tamper-evident provenance ledger: an RFC 9162 Merkle transparency log at the hub with
C2SP signed checkpoints, witness cosignatures from the nodes, and offline-verifiable proofs.

Public face; the modules behind it are small and single-purpose:

* :mod:`.hashing`, :mod:`.verify`, :mod:`.proofs`, :mod:`.subtree` -- pure RFC 9162 core
* :mod:`.entries`, :mod:`.phi` -- provenance events as canonical JSON, identifier guard
* :mod:`.note`, :mod:`.checkpoint`, :mod:`.cosign`, :mod:`.witness` -- C2SP formats
* :mod:`.store`, :mod:`.compact`, :mod:`.groupcommit`, :mod:`.log` -- durable log
* :mod:`.service`, :mod:`.auth`, :mod:`.api`, :mod:`.client` -- hub API and node client
* :mod:`.bundle`, :mod:`.keys` -- offline evidence and key files
"""

from healthmesh.ledger.bundle import Trust, make_bundle, make_export, verify_bundle, verify_export
from healthmesh.ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from healthmesh.ledger.cosign import CosignatureSigner, CosignatureVerifier, verify_final_checkpoint
from healthmesh.ledger.entries import EVENT_TYPES, EntryError, encode_event, make_event
from healthmesh.ledger.hashing import EMPTY_ROOT, leaf_hash, node_hash, root_from_entries
from healthmesh.ledger.log import TransparencyLog
from healthmesh.ledger.note import Ed25519Signer, Ed25519Verifier, ed25519_verifier_from_vkey
from healthmesh.ledger.verify import ProofError, verify_consistency, verify_inclusion
from healthmesh.ledger.witness import Witness, WitnessError

__all__ = [
    "EMPTY_ROOT",
    "EVENT_TYPES",
    "Checkpoint",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Ed25519Signer",
    "Ed25519Verifier",
    "EntryError",
    "ProofError",
    "TransparencyLog",
    "Trust",
    "Witness",
    "WitnessError",
    "ed25519_verifier_from_vkey",
    "encode_event",
    "leaf_hash",
    "make_bundle",
    "make_event",
    "make_export",
    "node_hash",
    "open_checkpoint",
    "parse_checkpoint",
    "root_from_entries",
    "verify_bundle",
    "verify_consistency",
    "verify_export",
    "verify_final_checkpoint",
    "verify_inclusion",
]
