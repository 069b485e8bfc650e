"""A C2SP tlog-witness run by each node: it checks that every new checkpoint of the hub's log
is consistent with the last one it cosigned, and only then cosigns (tlog-cosignature v1).

The rules and status codes are those of ``add-checkpoint``: unknown origin 404, bad or
missing log signature 403, old size above the new size 400, old size not the witness's
latest 409 (with that size), empty-tree root wrong, proof not verifying or equal sizes with
different roots 422. Old size 0 needs an empty proof: the empty tree is a prefix of every
tree (our documented empty-tree decision). A refused checkpoint that was validly signed by
the log is kept as **evidence** of a fork.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from healthmesh.errors import HealthmeshError
from healthmesh.ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from healthmesh.ledger.cosign import CosignatureSigner
from healthmesh.ledger.hashing import EMPTY_ROOT
from healthmesh.ledger.note import (
    NoteError,
    NoteSignature,
    NoteVerificationError,
    NoteVerifier,
    parse_note,
)
from healthmesh.ledger.verify import ProofError, verify_consistency

MAX_PROOF_LINES = 63


class WitnessError(HealthmeshError):
    """The witness refused a checkpoint; ``status`` is the tlog-witness HTTP status."""

    def __init__(self, status: int, message: str, *, latest_size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = {400: "invalid", 403: "security", 404: "not-found", 409: "conflict"}.get(
            status, "business-rule"
        )
        self.latest_size = latest_size


class WitnessState(Protocol):
    """Latest cosigned ``(size, root)`` per log origin, with an atomic compare-and-set."""

    def get(self, origin: str) -> tuple[int, bytes] | None:
        """The latest cosigned tree head of ``origin``."""
        ...

    def compare_and_set(self, origin: str, old_size: int, size: int, root: bytes) -> bool:
        """Move ``origin`` from ``old_size`` to ``(size, root)``; ``False`` if it moved."""
        ...

    def record_evidence(self, origin: str, note: str, reason: str) -> None:
        """Keep a log-signed checkpoint the witness refused (proof of misbehaviour)."""
        ...

    def get_evidence(self, origin: str) -> list[tuple[str, str]]:
        """``(note, reason)`` of every refused checkpoint of ``origin``, oldest first."""
        ...


@dataclass
class MemoryWitnessState:
    """In-memory :class:`WitnessState`."""

    heads: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    refused: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_evidence(self, origin: str, note: str, reason: str) -> None:
        with self._lock:
            self.refused.setdefault(origin, []).append((note, reason))

    def get_evidence(self, origin: str) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.refused.get(origin, []))

    def get(self, origin: str) -> tuple[int, bytes] | None:
        with self._lock:
            return self.heads.get(origin)

    def compare_and_set(self, origin: str, old_size: int, size: int, root: bytes) -> bool:
        with self._lock:
            cur = self.heads.get(origin, (0, EMPTY_ROOT))[0]
            if cur != old_size:
                return False
            self.heads[origin] = (size, root)
            return True


@dataclass(frozen=True)
class Evidence:
    """A log-signed checkpoint the witness refused, with why (proof of misbehaviour)."""

    note: str
    reason: str
    witnessed_size: int
    witnessed_root: bytes


class Witness:
    """One witness identity (``signer``) trusting ``logs``: origin -> log key verifier."""

    def __init__(
        self,
        signer: CosignatureSigner,
        logs: dict[str, NoteVerifier],
        state: WitnessState | None = None,
    ) -> None:
        self.signer = signer
        self.logs = logs
        self.state: WitnessState = state or MemoryWitnessState()
        self.evidence: list[Evidence] = []

    @property
    def name(self) -> str:
        """The witness's key name."""
        return self.signer.name

    def add_checkpoint(
        self, old_size: int, proof: Sequence[bytes], note: str, timestamp: int | None = None
    ) -> NoteSignature:
        """Check ``note`` against the witness's view and cosign it, or raise
        :class:`WitnessError`."""
        cp = self._open(note)
        if old_size > cp.size:
            raise WitnessError(400, "old size is larger than the checkpoint size")
        seen_size, seen_root = self.state.get(cp.origin) or (0, EMPTY_ROOT)
        if old_size != seen_size:
            raise WitnessError(
                409, "old size is not the latest cosigned size", latest_size=seen_size
            )
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            raise WitnessError(422, "a checkpoint of size zero must have the empty root")
        try:
            if old_size == 0:
                if proof:
                    raise ProofError("a proof from the empty tree must be empty")
            elif old_size == cp.size:
                if proof or cp.root != seen_root:
                    raise ProofError("same size, different root")
            else:
                verify_consistency(old_size, cp.size, seen_root, cp.root, proof)
        except ProofError as exc:
            self.evidence.append(Evidence(note, exc.message, seen_size, seen_root))
            self.state.record_evidence(cp.origin, note, exc.message)
            raise WitnessError(422, "checkpoint is not consistent with the witnessed log") from exc
        if not self.state.compare_and_set(cp.origin, old_size, cp.size, cp.root):
            latest = (self.state.get(cp.origin) or (0, b""))[0]
            raise WitnessError(409, "witness state moved concurrently", latest_size=latest)
        return self.signer.cosign(cp.body(), timestamp)

    def _open(self, note: str) -> Checkpoint:
        try:
            origin = parse_checkpoint(parse_note(note).text).origin
        except NoteError as exc:
            raise WitnessError(400, "malformed checkpoint") from exc
        verifier = self.logs.get(origin)
        if verifier is None:
            raise WitnessError(404, "unknown log origin")
        try:
            cp, _, _ = open_checkpoint(note, verifier, origin)
        except (NoteVerificationError, NoteError) as exc:
            raise WitnessError(403, "checkpoint not validly signed by the log") from exc
        return cp

    # -- C2SP HTTP body ------------------------------------------------------------------
    def handle_add_checkpoint(self, body: str) -> str:
        """Process an ``add-checkpoint`` request body; return the response body."""
        old_size, proof, note = parse_add_checkpoint(body)
        return self.add_checkpoint(old_size, proof, note).line()


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> str:
    """An ``add-checkpoint`` request body."""
    lines = [f"old {old_size}"] + [base64.b64encode(p).decode() for p in proof]
    return "\n".join(lines) + "\n\n" + note


def parse_add_checkpoint(body: str) -> tuple[int, list[bytes], str]:
    """Split an ``add-checkpoint`` body into old size, proof hashes and checkpoint note."""
    head, sep, note = body.partition("\n\n")
    if not sep:
        raise WitnessError(400, "malformed add-checkpoint body")
    lines = head.split("\n")
    first = lines[0]
    if (
        not first.startswith("old ")
        or not first[4:].isdigit()
        or (first[4:] != "0" and first[4] == "0")
    ):
        raise WitnessError(400, "malformed old size line")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessError(400, "too many consistency proof lines")
    try:
        proof = [base64.b64decode(x, validate=True) for x in lines[1:]]
    except binascii.Error as exc:
        raise WitnessError(400, "proof line is not base64") from exc
    return int(first[4:]), proof, note


def detect_fork(a: Checkpoint, b: Checkpoint) -> bool:
    """Two log-signed checkpoints of the same size with different roots prove a fork."""
    return a.origin == b.origin and a.size == b.size and a.root != b.root
