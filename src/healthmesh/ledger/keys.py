"""Key files for the ledger: the hub's log key, a node's witness key and its request-signing
key, stored as a small JSON document (``kind``, ``name``, base64 private ``seed``) readable
only by the owner. Public halves are shared as C2SP *vkeys*."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from healthmesh.errors import InvalidInput
from healthmesh.ledger.cosign import CosignatureSigner
from healthmesh.ledger.note import Ed25519Signer

KINDS = ("log", "witness", "request")


def generate_key(kind: str, name: str) -> Ed25519Signer | CosignatureSigner:
    """A fresh key: cosigning key for ``witness``, note key for ``log`` and ``request``."""
    if kind not in KINDS:
        raise InvalidInput(f"key kind must be one of {', '.join(KINDS)}")
    if kind == "witness":
        return CosignatureSigner.generate(name)
    return Ed25519Signer.generate(name)


def save_key(path: str | Path, kind: str, key: Ed25519Signer | CosignatureSigner) -> None:
    """Write a key file with mode 0600 (refuses to overwrite)."""
    doc = {"kind": kind, "name": key.name, "seed": base64.b64encode(key.seed()).decode()}
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
        fh.write("\n")


def _load(path: str | Path) -> tuple[str, str, bytes]:
    try:
        doc = json.loads(Path(path).read_text())
        return str(doc["kind"]), str(doc["name"]), base64.b64decode(doc["seed"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("unreadable key file") from exc


def load_signer(path: str | Path, kind: str = "log") -> Ed25519Signer:
    """A log or request-signing key from a key file."""
    got, name, seed = _load(path)
    if got != kind or kind == "witness":
        raise InvalidInput(f"key file is a {got} key, expected {kind}")
    return Ed25519Signer.from_seed(name, seed)


def load_cosigner(path: str | Path) -> CosignatureSigner:
    """A witness cosigning key from a key file."""
    got, name, seed = _load(path)
    if got != "witness":
        raise InvalidInput(f"key file is a {got} key, expected witness")
    return CosignatureSigner.from_seed(name, seed)
