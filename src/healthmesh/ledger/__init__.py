"""The tamper-evident provenance ledger: an RFC 9162 Merkle transparency log at the hub with
C2SP signed checkpoints, witness cosignatures from the nodes, and offline-verifiable proofs."""
