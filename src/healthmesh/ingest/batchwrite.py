"""Writing many converted records in one transaction, for throughput.

One query fetches the stored versions of every id in the chunk; new resources are validated,
indexed and inserted together through the store's bulk path (``write_batch``: executemany on
SQLite, COPY on PostgreSQL); changed ones go through ``tx.update``; unchanged ones are skipped.
Records whose resources fail validation are returned for quarantine before anything is
written, so one bad record never costs the chunk. The per-resource decision (create, update,
unchanged, merge handling) is ``decide``, shared with the one-record path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, tuple_

from healthmesh.errors import HealthmeshError, InvalidResource
from healthmesh.fhir.store import FhirStore, schema
from healthmesh.fhir.store.bulkwrite import write_batch
from healthmesh.fhir.store.records import instant
from healthmesh.ingest.adapter import Converted
from healthmesh.ingest.hl7v2.patient import MERGED_TAG

R = schema.resource


@dataclass
class Prepared:
    res_type: str
    res_id: str
    content: bytes
    rows: Any


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


def prepare_new(
    res: dict[str, Any],
    now: float,
    validate: Callable[[dict[str, Any]], None],
    extract: Callable[[dict[str, Any]], Any],
) -> Prepared:
    """Version 1 of a new resource: meta set, validated, serialised and indexed (may run in
    a worker process; raises the validator's HealthmeshError)."""
    meta = dict(res.get("meta") or {})
    meta["versionId"] = "1"
    meta["lastUpdated"] = instant(now)
    res["meta"] = meta
    validate(res)
    return Prepared(res["resourceType"], res["id"], orjson.dumps(res), extract(res))


#: per resource key, what a worker prepared: the new version, or (message, location) of the
#: validation error
Prework = Mapping[tuple[str, str], "Prepared | tuple[str, str | None]"]


def _new_version(
    store: FhirStore, res: dict[str, Any], now: float, prework: Prework | None
) -> Prepared:
    done = prework.get((res["resourceType"], res["id"])) if prework is not None else None
    if isinstance(done, Prepared):
        return done
    if done is not None:
        raise InvalidResource(done[0], location=done[1])
    return prepare_new(dict(res), now, store.validate, store.extract)


def _keyed(res: Any) -> bool:
    return (
        isinstance(res, dict)
        and isinstance(res.get("resourceType"), str)
        and isinstance(res.get("id"), str)
        and bool(res["id"])
    )


def write_chunk(
    store: FhirStore, records: Sequence[Converted], prework: Prework | None = None
) -> tuple[list[tuple[str, int]], list[tuple[int, HealthmeshError]]]:
    """Write records in one transaction.

    Returns per record (result, versions written) — result "refused" for records that failed
    validation (nothing of theirs written) — and the (index, error) of those refusals.
    """
    malformed = {i for i, c in enumerate(records) if not all(_keyed(r) for r in c.resources)}
    keys = {
        (r["resourceType"], r["id"])
        for i, c in enumerate(records)
        if i not in malformed
        for r in c.resources
    }
    now = time.time()
    results: list[tuple[str, int]] = []
    refused: list[tuple[int, HealthmeshError]] = []
    with store.writing() as tx:
        stored: dict[tuple[str, str], dict[str, Any] | None] = {}
        deleted_rows: set[tuple[str, str]] = set()  # rows that exist deleted: revive by update
        key_list = sorted(keys)
        for i in range(0, len(key_list), 400):
            part = key_list[i : i + 400]
            rows = tx.conn.execute(
                select(R.c.res_type, R.c.res_id, R.c.content, R.c.deleted).where(
                    tuple_(R.c.res_type, R.c.res_id).in_(part)
                )
            )
            for rtype, rid, content, deleted in rows:
                if deleted:
                    deleted_rows.add((rtype, rid))
                else:
                    stored[(rtype, rid)] = orjson.loads(content)
        pending: list[Prepared] = []
        pending_keys: set[tuple[str, str]] = set()
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
            plan: list[tuple[str, dict[str, Any]]] = []
            try:
                for res in record.resources:
                    key = (res["resourceType"], res["id"])
                    if key in pending_keys:  # written earlier in this chunk: order matters
                        write_batch(store, tx, pending)
                        pending, pending_keys = [], set()
                    action, final = decide(res, stored.get(key))
                    if action == "created" and key in deleted_rows:
                        action = "revived"
                    elif action == "created":
                        pending_keys.add(key)
                    plan.append((action, final))
                news = [_new_version(store, f, now, prework) for a, f in plan if a == "created"]
                for action, final in plan:
                    if action in ("updated", "revived"):
                        store.validate(
                            {
                                **final,
                                "meta": {
                                    **(final.get("meta") or {}),
                                    "versionId": "2",
                                    "lastUpdated": instant(now),
                                },
                            }
                        )
            except HealthmeshError as exc:
                pending_keys -= {(r["resourceType"], r["id"]) for r in record.resources}
                refused.append((index, exc))
                results.append(("refused", 0))
                continue
            pending.extend(news)
            written = 0
            for action, final in plan:
                key = (final["resourceType"], final["id"])
                if action in ("updated", "revived"):
                    tx.update(key[0], key[1], final)
                    deleted_rows.discard(key)
                if action != "unchanged":
                    stored[key] = final
                    written += 1
            kinds = {a for a, _ in plan}
            result = (
                "created"
                if kinds & {"created", "revived"}
                else "updated"
                if "updated" in kinds
                else "unchanged"
            )
            results.append((result, written))
        write_batch(store, tx, pending)
    return results, refused
