"""The hub's transparency log: appends with group commit, proofs, signed checkpoints,
witness cosignatures and finality, over any :class:`~.store.base.LedgerStore`."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from healthmesh.errors import Forbidden, InvalidInput, NotFound
from healthmesh.ledger.checkpoint import Checkpoint, sign_checkpoint
from healthmesh.ledger.cosign import CosignatureVerifier
from healthmesh.ledger.entries import encode_event
from healthmesh.ledger.groupcommit import GroupCommitter
from healthmesh.ledger.note import Ed25519Signer, Note, parse_note
from healthmesh.ledger.proofs import consistency_proof, inclusion_proof, tree_root
from healthmesh.ledger.store.base import LedgerStore

MAX_APPEND = 10_000


class TransparencyLog:
    """One append-only log identified by ``origin`` and signed by ``signer``.

    ``witnesses`` are the trusted cosigners (one per institution) and ``quorum`` how many of
    them must cosign a checkpoint before it is final.

    >>> from healthmesh.ledger.store import MemoryStore
    >>> log = TransparencyLog(MemoryStore(), Ed25519Signer.generate("hub.example/ledger"))
    >>> log.append_raw([b"a", b"b"])
    [0, 1]
    >>> log.close()
    """

    def __init__(
        self,
        store: LedgerStore,
        signer: Ed25519Signer,
        *,
        origin: str | None = None,
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int = 0,
        max_batch: int = 8192,
    ) -> None:
        self.store = store
        self.signer = signer
        self.origin = origin or signer.name
        self.witnesses = {w.name: w for w in witnesses}
        if quorum > len(self.witnesses):
            raise InvalidInput("quorum larger than the number of witnesses")
        self.quorum = quorum
        self._writer = GroupCommitter(store, max_batch=max_batch)
        self._cp_lock = threading.Lock()

    # -- appends ---------------------------------------------------------------------------
    def append_raw(self, entries: Sequence[bytes], timeout: float | None = 60.0) -> list[int]:
        """Append pre-encoded entries; return their indexes once durably committed."""
        if len(entries) > MAX_APPEND:
            raise InvalidInput(f"at most {MAX_APPEND} entries per append")
        first, _ = self._writer.append(entries, timeout)
        return list(range(first, first + len(entries)))

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> list[int]:
        """Validate and canonicalise provenance events, then append them."""
        return self.append_raw([encode_event(e) for e in events])

    # -- reads -----------------------------------------------------------------------------
    def size(self) -> int:
        """Committed tree size."""
        return self.store.head()[0]

    def root(self, size: int | None = None) -> bytes:
        """Root hash at ``size`` (default: the current tree)."""
        head_size, head_root = self.store.head()
        if size is None or size == head_size:
            return head_root
        self._check_size(size, head_size)
        return tree_root(size, self.store)

    def entry(self, index: int) -> bytes:
        """The entry bytes at ``index``."""
        got = self.store.get_entries(index, index + 1) if index >= 0 else []
        if not got:
            raise NotFound("no ledger entry at this index")
        return got[0]

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)``."""
        return self.store.get_entries(start, end)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Proof that entry ``index`` is in the tree of ``size`` (default current)."""
        head = self.size()
        size = head if size is None else size
        self._check_size(size, head)
        if not 0 <= index < size:
            raise InvalidInput("leaf index outside the tree")
        return inclusion_proof(index, size, self.store)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """Proof that the tree of ``size1`` is a prefix of the tree of ``size2``."""
        head = self.size()
        size2 = head if size2 is None else size2
        self._check_size(size2, head)
        if size1 == 0:
            return []  # documented: the empty tree is a prefix of every tree, no proof needed
        if not 0 < size1 <= size2:
            raise InvalidInput("consistency proofs need 0 <= old size <= new size")
        return consistency_proof(size1, size2, self.store)

    @staticmethod
    def _check_size(size: int, head: int) -> None:
        if not 0 <= size <= head:
            raise InvalidInput("tree size beyond the log")

    # -- checkpoints -----------------------------------------------------------------------
    def publish_checkpoint(self) -> tuple[int, str]:
        """Sign and store a checkpoint of the current tree if it grew; return the latest
        ``(size, note)`` without cosignatures."""
        with self._cp_lock:
            size, root = self.store.head()
            last = self.store.get_checkpoint()
            if last is not None and last[0] >= size:
                return last
            note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer).format()
            self.store.save_checkpoint(size, note)
            return size, note

    def checkpoint(self, size: int | None = None, *, cosigned: bool = True) -> tuple[int, str]:
        """A stored checkpoint (the latest by default) with every cosignature received."""
        found = self.store.get_checkpoint(size)
        if found is None:
            if size is None:
                return self.publish_checkpoint()
            raise NotFound("no checkpoint of this size")
        cp_size, text = found
        if not cosigned:
            return cp_size, text
        note = parse_note(text)
        for line in sorted(self.store.get_cosignatures(cp_size).values()):
            note.signatures.extend(parse_note(note.text + "\n" + line).signatures)
        return cp_size, note.format()

    def add_cosignature(self, size: int, lines: str) -> list[str]:
        """Accept witness cosignature lines for checkpoint ``size``; return the names of all
        witnesses that have cosigned it so far. Lines from unknown keys are refused."""
        found = self.store.get_checkpoint(size)
        if found is None:
            raise NotFound("no checkpoint of this size")
        body = parse_note(found[1]).text
        note = parse_note(body + "\n" + lines)
        for sig in note.signatures:
            w = self.witnesses.get(sig.name)
            if w is None or w.key_id != sig.key_id:
                raise Forbidden("cosignature from an unknown witness key")
            if not w.verify(body, sig.signature):
                raise Forbidden("cosignature does not verify")
            self.store.add_cosignature(size, sig.name, sig.line())
        return sorted(self.store.get_cosignatures(size))

    def is_final(self, size: int) -> bool:
        """Whether a checkpoint of at least ``size`` has a quorum of cosignatures (cosigning
        a tree vouches for every prefix of it)."""
        best = self.store.largest_cosigned(max(self.quorum, 1))
        return best is not None and best >= size

    def note(self, size: int | None = None) -> Note:
        """The cosigned checkpoint as a parsed note."""
        return parse_note(self.checkpoint(size)[1])

    def close(self) -> None:
        """Stop the writer after queued appends commit, and close the store."""
        self._writer.close()
        self.store.close()
