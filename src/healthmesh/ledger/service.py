"""The hub-side ledger service: the transparency log plus the registry of institution keys
(request-signing and witness keys), every registration itself recorded in the log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from healthmesh.errors import Forbidden, InvalidInput
from healthmesh.ledger.auth import PURPOSE as REQUEST_SIGNING
from healthmesh.ledger.auth import RequestAuthenticator
from healthmesh.ledger.cosign import CosignatureVerifier
from healthmesh.ledger.entries import canonical_json, make_event, validate_event
from healthmesh.ledger.log import TransparencyLog
from healthmesh.ledger.note import (
    Ed25519Signer,
    NoteError,
    ed25519_verifier_from_vkey,
    parse_note,
    parse_vkey,
)
from healthmesh.ledger.store import KeyRecord, LedgerStore, SqlStore

WITNESS = "witness"


class LedgerService:
    """Everything the hub's ledger API needs.

    >>> from healthmesh.ledger.store import MemoryStore
    >>> svc = LedgerService(MemoryStore(), Ed25519Signer.generate("hub.example/ledger"))
    >>> svc.log.size()
    0
    >>> svc.close()
    """

    def __init__(
        self,
        store: LedgerStore,
        signer: Ed25519Signer,
        *,
        quorum: int = 0,
        hub_actor: str = "hub",
        window_s: int = 300,
    ) -> None:
        self.store = store
        self.hub_actor = hub_actor
        witnesses = [
            CosignatureVerifier.from_vkey(k.vkey)
            for k in store.get_keys()
            if k.purpose == WITNESS and k.active
        ]
        self.log = TransparencyLog(store, signer, witnesses=witnesses, quorum=0)
        self.quorum = quorum
        self.log.quorum = quorum
        self.auth = RequestAuthenticator(store, window_s=window_s)

    @classmethod
    def open(cls, db: str | Path, signer: Ed25519Signer, **kwargs: Any) -> LedgerService:
        """A service on a SQLite path or PostgreSQL URL."""
        return cls(SqlStore(db), signer, **kwargs)

    def _check_vkey(self, purpose: str, vkey: str) -> None:
        try:
            if purpose == WITNESS:
                CosignatureVerifier.from_vkey(vkey)
            elif purpose == REQUEST_SIGNING:
                ed25519_verifier_from_vkey(vkey)
            else:
                raise InvalidInput("unknown key purpose")
        except NoteError as exc:
            raise InvalidInput("verifier key does not match its purpose") from exc

    def register_key(self, institution: str, purpose: str, vkey: str) -> int:
        """Register an institution's key (operator action); returns the ledger index of the
        ``key_registration`` entry that records it."""
        self._check_vkey(purpose, vkey)
        event = make_event(
            "key_registration",
            self.hub_actor,
            {"institution": institution, "purpose": purpose, "vkey": vkey},
        )
        index = self.log.append_events([event])[0]
        self.store.put_key(KeyRecord(institution, purpose, vkey, True))
        if purpose == WITNESS:
            w = CosignatureVerifier.from_vkey(vkey)
            self.log.witnesses[w.name] = w
        return index

    def rotate_key(self, institution: str, purpose: str, old_vkey: str, new_vkey: str) -> int:
        """Replace a key: the old one stops verifying; the rotation is logged."""
        self._check_vkey(purpose, new_vkey)
        if not any(
            k.vkey == old_vkey and k.purpose == purpose for k in self.store.get_keys(institution)
        ):
            raise InvalidInput("the old key is not registered for this institution")
        old_name, _, _ = parse_vkey(old_vkey)
        event = make_event(
            "key_rotation",
            self.hub_actor,
            {
                "institution": institution,
                "purpose": purpose,
                "old_key_id": old_vkey.split("+")[1],
                "vkey": new_vkey,
            },
        )
        index = self.log.append_events([event])[0]
        self.store.put_key(KeyRecord(institution, purpose, old_vkey, False))
        self.store.put_key(KeyRecord(institution, purpose, new_vkey, True))
        if purpose == WITNESS:
            self.log.witnesses.pop(old_name, None)
            w = CosignatureVerifier.from_vkey(new_vkey)
            self.log.witnesses[w.name] = w
        return index

    def append_as(self, institution: str, events: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append events submitted by an authenticated institution: each must name it as
        ``actor`` (an institution cannot write history in another's name)."""
        checked = [validate_event(e) for e in events]
        if any(e["actor"] != institution for e in checked):
            raise Forbidden("entries must name the submitting institution as actor")
        return self.log.append_raw([canonical_json(e) for e in checked])

    def add_cosignature_as(self, institution: str, size: int, lines: str) -> list[str]:
        """Accept cosignatures only for witness keys registered to ``institution``."""
        own = {
            CosignatureVerifier.from_vkey(k.vkey).name
            for k in self.store.get_keys(institution)
            if k.purpose == WITNESS and k.active
        }
        for sig in parse_note("x\n\n" + lines).signatures:
            if sig.name not in own:
                raise Forbidden("cosignature from a witness of another institution")
        return self.log.add_cosignature(size, lines)

    def close(self) -> None:
        """Stop the writer and close the store."""
        self.log.close()
