"""C2SP tlog-checkpoint: the signed tree head of the log (origin, size, root hash).

The body is three lines (origin, decimal size, base64 root) plus optional extension lines;
it is signed as a :mod:`signed note <healthmesh.ledger.note>` by the hub's log key and
cosigned by witnesses (:mod:`.cosign`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from healthmesh.ledger.hashing import HASH_SIZE
from healthmesh.ledger.note import (
    Note,
    NoteError,
    NoteSigner,
    NoteVerificationError,
    NoteVerifier,
    sign_note,
    verify_note,
)

_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,19}")
_MAX_SIZE = 2**64 - 1


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: ``origin`` (the log's identity), ``size`` and ``root`` hash."""

    origin: str
    size: int
    root: bytes
    rest: str = ""

    def body(self) -> str:
        """The note text of this checkpoint."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n{self.rest}"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text (without signatures).

    >>> parse_checkpoint("Log\\n123\\nYmFuYW5hcw==\\n").size
    123
    """
    lines = text.split("\n", 3)
    if len(lines) < 4:
        raise NoteError("checkpoint needs origin, size and root hash lines")
    origin, size_s, root_s, rest = lines
    if not origin:
        raise NoteError("checkpoint origin is empty")
    if not _SIZE_RE.fullmatch(size_s) or int(size_s) > _MAX_SIZE:
        raise NoteError("checkpoint size is not a valid tree size")
    try:
        root = base64.b64decode(root_s, validate=True)
    except binascii.Error as exc:
        raise NoteError("checkpoint root hash is not base64") from exc
    if not root_s:
        raise NoteError("checkpoint root hash is empty")
    return Checkpoint(origin, int(size_s), root, rest)


def sign_checkpoint(cp: Checkpoint, signer: NoteSigner) -> Note:
    """The checkpoint as a note signed by the log key."""
    return sign_note(cp.body(), signer)


def open_checkpoint(
    data: str | bytes | Note,
    log_verifier: NoteVerifier,
    origin: str | None = None,
    extra_verifiers: list[NoteVerifier] | None = None,
) -> tuple[Checkpoint, Note, list[str]]:
    """Verify the log's signature on a checkpoint note and parse it.

    Returns the checkpoint, the note and the names of all trusted keys (log and
    ``extra_verifiers``, e.g. witnesses) whose signatures verified. Raises
    :class:`NoteVerificationError` if the log key did not sign or the origin differs.
    """
    verifiers: list[NoteVerifier] = [log_verifier, *(extra_verifiers or [])]
    note, names = verify_note(data, verifiers)
    if log_verifier.name not in names:
        raise NoteVerificationError("checkpoint is not signed by the log key")
    cp = parse_checkpoint(note.text)
    if origin is not None and cp.origin != origin:
        raise NoteVerificationError("checkpoint is from another log")
    if len(cp.root) != HASH_SIZE:
        raise NoteVerificationError("checkpoint root hash has the wrong length")
    return cp, note, names
