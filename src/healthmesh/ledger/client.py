"""Node-side ledger client: signed appends, proofs, and anchoring of the node's AuditEvents.

:meth:`LedgerClient.anchor_audit_events` pulls AuditEvents from any source through
``fetch(after_cursor, limit) -> (events, new_cursor)`` and records each page as one
``data_access`` entry whose ``audit_digest`` is the RFC 9162 Merkle root over the page's
RFC 8785-canonical AuditEvents. A single AuditEvent is then provable later with
:func:`audit_event_proof` (its path inside the page) plus the ledger's inclusion proof of the
page entry — without revealing the other events of the page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import rfc8785

from healthmesh.errors import HealthmeshError, InvalidInput
from healthmesh.ledger.auth import RequestSigner
from healthmesh.ledger.checkpoint import parse_checkpoint
from healthmesh.ledger.hashing import leaf_hash, root_from_entries
from healthmesh.ledger.note import Ed25519Signer, parse_note
from healthmesh.ledger.phi import find_identifier
from healthmesh.ledger.proofs import MemoryNodes, inclusion_proof
from healthmesh.ledger.witness import Witness

Fetch = Callable[[str | None, int], tuple[list[dict[str, Any]], str | None]]


class LedgerClientError(HealthmeshError):
    """The hub refused a ledger request; ``status`` is the hub's HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def canonical_audit_events(events: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """RFC 8785 bytes of each AuditEvent, the leaves of a page's audit digest."""
    for e in events:
        if not isinstance(e, Mapping) or e.get("resourceType") != "AuditEvent":
            raise InvalidInput("anchoring expects FHIR AuditEvent resources")
    return [bytes(rfc8785.dumps(dict(e))) for e in events]


def audit_digest(events: Sequence[Mapping[str, Any]]) -> str:
    """``sha256:`` + the Merkle root over the canonical AuditEvents of a page."""
    return "sha256:" + root_from_entries(canonical_audit_events(events)).hex()


def audit_event_proof(events: Sequence[Mapping[str, Any]], position: int) -> list[bytes]:
    """Inclusion proof of the AuditEvent at ``position`` inside its page's audit digest."""
    leaves = [leaf_hash(e) for e in canonical_audit_events(events)]
    return inclusion_proof(position, len(leaves), MemoryNodes(leaves))


def _utc(instant: Any) -> str | None:
    if not isinstance(instant, str):
        return None
    try:
        dt = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def data_access_event(node: str, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``data_access`` provenance event for one page of AuditEvents."""
    body: dict[str, Any] = {
        "node": node,
        "audit_digest": audit_digest(events),
        "event_count": len(events),
    }
    first, last = events[0].get("id"), events[-1].get("id")
    # The ids only locate the page; a FHIR uuid whose last group reads as a mobile number (about
    # one in 3,400) would get the whole entry refused by the ledger's identifier scan, and the
    # node's anchoring would stop at that page for good: such a page is anchored without them.
    if isinstance(first, str) and isinstance(last, str) and not find_identifier(first + " " + last):
        body["first_event"], body["last_event"] = first, last
    times = sorted(t for t in (_utc(e.get("recorded")) for e in events) if t)
    if times:
        body["period_start"], body["period_end"] = times[0], times[-1]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "data_access", "v": 1, "time": now, "actor": node, "body": body}


class LedgerClient:
    """Talks to the hub's ledger API as ``institution``.

    ``http`` may be any ``httpx.Client`` (for tests, Starlette's ``TestClient``); ``prefix``
    is where the ledger router is mounted.
    """

    def __init__(
        self,
        base_url: str,
        institution: str,
        key: Ed25519Signer,
        *,
        http: httpx.Client | None = None,
        prefix: str = "/ledger",
        timeout: float = 30.0,
    ) -> None:
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self.prefix = prefix.rstrip("/")
        self.signer = RequestSigner(institution, key)
        self.institution = institution

    def _check(self, resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", {})
                msg = detail.get("message", "request refused") if isinstance(detail, dict) else ""
            except ValueError:
                msg = "request refused"
            raise LedgerClientError(resp.status_code, msg or "request refused")
        return resp

    def _signed_post(self, path: str, body: bytes, content_type: str) -> httpx.Response:
        full = self.prefix + path
        headers = self.signer.headers("POST", full, body)
        headers["Content-Type"] = content_type
        return self._check(self.http.post(full, content=body, headers=headers))

    def append(self, events: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append provenance events; returns their ledger indexes."""
        body = json.dumps({"entries": list(events)}).encode()
        return list(self._signed_post("/entries", body, "application/json").json()["indexes"])

    def checkpoint(self) -> str:
        """The latest cosigned checkpoint note."""
        return self._check(self.http.get(self.prefix + "/checkpoint")).text

    def entry(self, index: int) -> dict[str, Any]:
        """Entry ``index`` as returned by the hub."""
        return dict(self._check(self.http.get(f"{self.prefix}/entries/{index}")).json())

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Inclusion proof hashes of entry ``index`` in the tree of ``size``."""
        r = self._check(
            self.http.get(f"{self.prefix}/proof/inclusion", params={"index": index, "size": size})
        )
        return [base64.b64decode(h) for h in r.json()["hashes"]]

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Consistency proof hashes from ``old`` to ``new``."""
        r = self._check(
            self.http.get(f"{self.prefix}/proof/consistency", params={"old": old, "new": new})
        )
        return [base64.b64decode(h) for h in r.json()["hashes"]]

    def bundle(self, index: int) -> dict[str, Any]:
        """A self-contained proof bundle for entry ``index``."""
        r = self._check(self.http.get(f"{self.prefix}/proof/bundle", params={"index": index}))
        return dict(r.json())

    def submit_cosignature(self, size: int, lines: str) -> dict[str, Any]:
        """Send witness cosignature lines for checkpoint ``size``."""
        r = self._signed_post(f"/cosignatures/{size}", lines.encode(), "text/plain")
        return dict(r.json())

    def anchor_audit_events(
        self, fetch: Fetch, cursor: str | None, *, page_size: int = 1000, max_pages: int = 100
    ) -> tuple[list[int], str | None]:
        """Anchor AuditEvents after ``cursor``; return ledger indexes and the new cursor.

        Pages are appended in groups of up to 50 ``data_access`` entries per request; the
        returned cursor only advances past pages the hub has acknowledged, so the caller can
        persist it and resume after a crash without gaps.
        """
        indexes: list[int] = []
        pending: list[dict[str, Any]] = []
        pending_cursor = cursor
        for _ in range(max_pages):
            events, new_cursor = fetch(pending_cursor, page_size)
            if not events:
                break
            if new_cursor is None:
                raise InvalidInput("fetch must return a cursor after a non-empty page")
            pending.append(data_access_event(self.institution, events))
            pending_cursor = new_cursor
            if len(pending) >= 50:
                indexes += self.append(pending)
                pending, cursor = [], pending_cursor
        if pending:
            indexes += self.append(pending)
            cursor = pending_cursor
        return indexes, cursor

    def witness_round(self, witness: Witness) -> dict[str, Any] | None:
        """What a node's witness does on each poll: fetch the latest checkpoint, prove it
        consistent with what it last cosigned, cosign and submit. ``None`` if nothing new."""
        note = self.checkpoint()
        cp = parse_checkpoint(parse_note(note).text)
        seen = witness.state.get(cp.origin)
        old = seen[0] if seen else 0
        if seen is not None and old == cp.size:
            return None
        proof = self.consistency_proof(old, cp.size) if old else []
        line = witness.add_checkpoint(old, proof, note).line()
        return self.submit_cosignature(cp.size, line)
