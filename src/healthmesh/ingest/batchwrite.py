"""Writing many converted records in one transaction, for throughput.

One query fetches the stored versions of every id in the chunk (``WriteTx.current_many``);
then record by record each resource is decided (created, updated, unchanged, merge handling:
``decide``, shared with the one-record path), its new version validated and indexed once
(``FhirStore.prepare_version``) and handed to ``WriteTx.put_validated``, which buffers it:
history rows, current rows, changed index rows and new resources go to the database together
at commit. Records whose resources fail validation are returned for quarantine before any of
theirs is written, so one bad record never costs the chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from healthmesh.errors import HealthmeshError, InvalidResource
from healthmesh.fhir.store import FhirStore
from healthmesh.fhir.store.prepare import Validated
from healthmesh.fhir.store.writes import WriteTx
from healthmesh.ingest.adapter import Converted
from healthmesh.ingest.hl7v2.patient import MERGED_TAG


def _strip_meta(res: dict[str, Any]) -> dict[str, Any]:
    out = dict(res)
    meta = dict(out.pop("meta", None) or {})
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if meta:
        out["meta"] = meta
    out.pop("id", None)
    return out


def is_merged(res: dict[str, Any]) -> bool:
    tags = (res.get("meta") or {}).get("tag") or []
    return any(
        t.get("code") == MERGED_TAG["code"] and t.get("system") == MERGED_TAG["system"]
        for t in tags
    )


def _union_links(new: dict[str, Any], old: dict[str, Any]) -> None:
    links = list(new.get("link") or [])
    for link in old.get("link") or []:
        if link not in links:
            links.append(link)
    if links:
        new["link"] = links


def decide(res: dict[str, Any], old: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """What to do with ``res`` given the stored ``old`` (None: absent or deleted):
    ("created" | "updated" | "unchanged", the resource to write).

    A merged Patient (A40 prior) keeps the stored content and only gains ``active=false``
    and the link; a later update of any Patient keeps earlier merge links.
    """
    if old is None:
        return "created", res
    if is_merged(res):
        merged = dict(old)
        merged["active"] = False
        _union_links(merged, res)
        meta = dict(merged.get("meta") or {})
        tags = list(meta.get("tag") or [])
        if MERGED_TAG not in tags:
            tags.append(dict(MERGED_TAG))
        meta["tag"] = tags
        merged["meta"] = meta
        res = merged
    elif res.get("resourceType") == "Patient":
        res = dict(res)
        _union_links(res, old)
        if is_merged(old):
            res["active"] = False
            res.setdefault("meta", {}).setdefault("tag", []).append(dict(MERGED_TAG))
    if _strip_meta(old) == _strip_meta(res):
        return "unchanged", res
    return "updated", res


#: per resource key, what a worker prepared: version 1, or (message, location) of the
#: validation error
Prework = Mapping[tuple[str, str], "Validated | tuple[str, str | None]"]

Key = tuple[str, str]


def _keyed(res: Any) -> bool:
    return (
        isinstance(res, dict)
        and isinstance(res.get("resourceType"), str)
        and isinstance(res.get("id"), str)
        and bool(res["id"])
    )


class _Chunk:
    """The stored state of a chunk's resources as its records are written one after another:
    the current version of each key (read once for the whole chunk, then the versions written
    here) and its parsed content."""

    def __init__(self, store: FhirStore, tx: WriteTx, keys: set[Key], prework: Prework | None):
        self.store = store
        self.tx = tx
        self.current = tx.current_many(keys)
        self.contents: dict[Key, dict[str, Any] | None] = {}
        self.prework = prework

    def _state(self, key: Key) -> tuple[int, dict[str, Any] | None]:
        """(current version number, 0 when absent; content, None when absent or deleted)."""
        cur = self.current.get(key)
        if cur is None:
            return 0, None
        if key not in self.contents:
            self.contents[key] = None if cur.deleted else cur.resource()
        return cur.version, self.contents[key]

    def plan(self, record: Converted) -> list[tuple[Key, str, dict[str, Any], Validated]]:
        """(key, action, resource, its validated new version) for each resource of ``record``
        that changes the store; raises the first validation error (nothing written)."""
        out: list[tuple[Key, str, dict[str, Any], Validated]] = []
        seen: dict[Key, tuple[int, dict[str, Any]]] = {}  # written earlier in this record
        for res in record.resources:
            key = (res["resourceType"], res["id"])
            number, old = seen[key] if key in seen else self._state(key)
            action, final = decide(res, old)
            if action == "unchanged":
                continue
            if action == "created" and number > 0:
                action = "revived"  # the row exists, deleted: its next version
            out.append((key, action, final, self._validated(key, final, number + 1)))
            seen[key] = (number + 1, final)
        return out

    def _validated(self, key: Key, res: dict[str, Any], number: int) -> Validated:
        done = self.prework.get(key) if self.prework is not None and number == 1 else None
        if isinstance(done, Validated):
            return done
        if done is not None:
            raise InvalidResource(done[0], location=done[1])
        return self.store.prepare_version(dict(res), key[1], number, self.tx.now())

    def apply(self, plan: list[tuple[Key, str, dict[str, Any], Validated]]) -> str:
        """Write a record's plan; its result: created, updated or unchanged."""
        for key, _action, final, version in plan:
            self.current[key] = self.tx.put_validated(version, self.current.get(key)).stored
            self.contents[key] = final
        kinds = {action for _, action, _, _ in plan}
        if kinds & {"created", "revived"}:
            return "created"
        return "updated" if "updated" in kinds else "unchanged"


def write_chunk(
    store: FhirStore, records: Sequence[Converted], prework: Prework | None = None
) -> tuple[list[tuple[str, int]], list[tuple[int, HealthmeshError]]]:
    """Write records in one transaction.

    Returns per record (result, versions written) — result "refused" for records that failed
    validation (nothing of theirs written) — and the (index, error) of those refusals.
    Every written version is validated once, by ``FhirStore.prepare_version`` (or in a
    worker, ``prework``), and written with ``WriteTx.put_validated``.
    """
    malformed = {i for i, c in enumerate(records) if not all(_keyed(r) for r in c.resources)}
    keys = {
        (r["resourceType"], r["id"])
        for i, c in enumerate(records)
        if i not in malformed
        for r in c.resources
    }
    results: list[tuple[str, int]] = []
    refused: list[tuple[int, HealthmeshError]] = []
    with store.writing() as tx:
        chunk = _Chunk(store, tx, keys, prework)
        for index, record in enumerate(records):
            if index in malformed:
                refused.append(
                    (
                        index,
                        InvalidResource(
                            "adapter produced a resource without resourceType or id", location="id"
                        ),
                    )
                )
                results.append(("refused", 0))
                continue
            try:
                plan = chunk.plan(record)
            except HealthmeshError as exc:
                refused.append((index, exc))
                results.append(("refused", 0))
                continue
            results.append((chunk.apply(plan), len(plan)))
    return results, refused
