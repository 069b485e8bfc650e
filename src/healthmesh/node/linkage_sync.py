"""One node's round trip with the hub's patient index: encodings out, enterprise ids back.

:func:`sync_enterprise_ids` encodes the node's current Patients under the linkage project's
key (:func:`~healthmesh.node.enterprise_ids.encodings_from_store`: no plaintext leaves),
submits each encoding to ``POST {hub}/mpi/linkage/records`` (linked on arrival at the hub),
then reads back the *current* enterprise id of every local Patient with
``GET {hub}/mpi/Patient/$match`` — so merges and unmerges the hub made since (after other
institutions' arrivals, or by a data steward) are picked up on the next run — and writes
them with :func:`~healthmesh.node.enterprise_ids.apply_enterprise_ids`.

Unchanged encodings are not sent again: the node keeps a SHA-256 digest of what it last
submitted to a hub for each Patient (table ``node_linkage_submitted`` in its own database).
A Patient the hub does not know (a reset index) is submitted again whatever the digest.

Written here rather than with a library: it is a few HTTP calls over httpx; the linking is
the hub's and the FHIR writing is :mod:`healthmesh.node.enterprise_ids`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx
import sqlalchemy as sa

from healthmesh.db import Migration, apply_migrations
from healthmesh.fhir.store import FhirStore
from healthmesh.identity.mpi.api import ENTERPRISE_SYSTEM
from healthmesh.node.enterprise_ids import (
    PatientEncoding,
    apply_enterprise_ids,
    encodings_from_store,
)
from healthmesh.node.hub_client import raise_for_hub

log = logging.getLogger(__name__)

_meta = sa.MetaData()
submitted = sa.Table(
    "node_linkage_submitted",
    _meta,
    sa.Column("target", sa.String(64), primary_key=True),  # digest of (hub url, institution)
    sa.Column("local_id", sa.String(128), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
)
_MIGRATIONS = [Migration(1, "digests of submitted encodings", lambda c: _meta.create_all(c))]


@dataclass
class SyncSummary:
    """Counts of one run: encodings sent (and the hub's decisions on them), encodings not
    sent because unchanged, and Patients whose enterprise identifier or links changed."""

    patients: int = 0
    submitted: int = 0
    linked: int = 0
    new: int = 0
    review: int = 0
    skipped: int = 0
    updated_patients: int = 0
    unchanged_patients: int = 0


def _digest(enc: PatientEncoding) -> str:
    h = hashlib.sha256(enc.record.clk)
    h.update(b"|" + (enc.record.id_token or b""))
    h.update(b"|" + ",".join(str(b or 0) for b in enc.record.block_tokens).encode())
    return h.hexdigest()


class _Hub:
    """The patient index routes of one hub, with the caller's bearer token."""

    def __init__(self, http: httpx.Client, hub_url: str, token: Callable[[], str]) -> None:
        self.http, self.base, self.token = http, hub_url.rstrip("/") + "/mpi", token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def submit(self, institution: str, enc: PatientEncoding) -> str:
        rec = enc.record
        body = {
            "institution": institution,
            "local_id": enc.local_id,
            "clk": base64.b64encode(rec.clk).decode(),
            "id_token": base64.b64encode(rec.id_token).decode() if rec.id_token else None,
            "block_tokens": [str(b) if b else None for b in rec.block_tokens],
        }
        resp = self.http.post(self.base + "/linkage/records", json=body, headers=self._headers())
        raise_for_hub(resp, "a submission")
        return str(resp.json()["status"])

    def enterprise_id(self, institution: str, local_id: str) -> str | None:
        resp = self.http.get(
            self.base + "/Patient/$match",
            params={"institution": institution, "local_id": local_id},
            headers=self._headers(),
        )
        if resp.status_code == 404:
            return None
        raise_for_hub(resp, "a lookup")
        for entry in resp.json().get("entry") or []:
            for ident in entry.get("resource", {}).get("identifier") or []:
                if ident.get("system") == ENTERPRISE_SYSTEM:
                    return str(ident["value"])
        return None


def _known_digests(engine: sa.Engine, target: str) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(submitted.c.local_id, submitted.c.digest).where(submitted.c.target == target)
        ).all()
    return {str(r[0]): str(r[1]) for r in rows}


def _remember(engine: sa.Engine, target: str, digests: Iterable[tuple[str, str]]) -> None:
    rows = [{"target": target, "local_id": pid, "digest": d} for pid, d in digests]
    if not rows:
        return
    with engine.begin() as conn:
        conn.execute(
            submitted.delete().where(
                submitted.c.target == target,
                submitted.c.local_id.in_([r["local_id"] for r in rows]),
            )
        )
        conn.execute(submitted.insert(), rows)


def _send(
    hub: _Hub, institution: str, encs: list[PatientEncoding], summary: SyncSummary
) -> list[tuple[str, str]]:
    sent = []
    for enc in encs:
        status = hub.submit(institution, enc)
        summary.submitted += 1
        summary.linked += status == "linked"
        summary.new += status == "new"
        summary.review += status == "review"
        sent.append((enc.local_id, _digest(enc)))
    return sent


def sync_enterprise_ids(
    store: FhirStore,
    hub_url: str,
    token_source: Callable[[], str],
    project_key: bytes,
    institution: str,
    http: httpx.Client | None = None,
) -> SyncSummary:
    """Submit the node's changed encodings, read back every Patient's current enterprise
    id and write it into the store (identifier + ``seealso`` links).

    ``token_source`` returns a bearer token of the institution's hub client (scope
    ``system/Linkage.c``; the hub binds that client to ``institution``), e.g.
    :func:`healthmesh.node.hub_client.client_credentials`. Only encodings and local ids are sent.

    Raises:
        Forbidden: the hub refuses this client for ``institution`` (or it is not registered).
        Unauthorized: the token is not accepted.
    """
    client = http or httpx.Client(timeout=60.0)
    hub = _Hub(client, hub_url, token_source)
    engine = store.db.write_engine
    apply_migrations(engine, "node_linkage_sync", _MIGRATIONS)
    target = hashlib.sha256(f"{hub_url.rstrip('/')}|{institution}".encode()).hexdigest()
    try:
        encodings = encodings_from_store(store, project_key)
        summary = SyncSummary(patients=len(encodings))
        known = _known_digests(engine, target)
        changed = [e for e in encodings if known.get(e.local_id) != _digest(e)]
        summary.skipped = len(encodings) - len(changed)
        for start in range(0, len(changed), 500):  # remember progress every 500
            _remember(
                engine, target, _send(hub, institution, changed[start : start + 500], summary)
            )
        links: dict[str, str | None] = {}
        missing = []
        for enc in encodings:
            links[enc.local_id] = eid = hub.enterprise_id(institution, enc.local_id)
            if eid is None:
                missing.append(enc)
        if missing:  # the hub lost them (e.g. a new index): send again, read again
            _remember(engine, target, _send(hub, institution, missing, summary))
            changed_ids = {e.local_id for e in changed}
            summary.skipped -= sum(1 for e in missing if e.local_id not in changed_ids)
            for enc in missing:
                links[enc.local_id] = hub.enterprise_id(institution, enc.local_id)
        applied = apply_enterprise_ids(store, links)
    finally:
        if http is None:
            client.close()
    summary.updated_patients = applied.updated
    summary.unchanged_patients = applied.unchanged
    log.info(
        "enterprise ids synced: %d submitted, %d skipped, %d patients updated",
        summary.submitted,
        summary.skipped,
        summary.updated_patients,
    )
    return summary
