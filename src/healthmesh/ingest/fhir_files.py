"""FHIR JSON (a resource or a Bundle) and NDJSON files as an adapter, so they pass through
the same pipeline as legacy formats: validation at write, quarantine, idempotence.

A Bundle is one record (its entries reference each other by ``fullUrl``): entries without an
id get a deterministic one from the institution and their fullUrl, and ``urn:uuid:``
references are rewritten to ``Type/id``. An NDJSON line is one record. Large NDJSON loads
that need no per-record quarantine belong to ``healthmesh.fhir.bulk.importer``.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from typing import Any

import orjson

from healthmesh.ingest.adapter import Converted, Outcome, Rejected, deterministic_id


def _rewrite(node: Any, refs: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in refs:
            node["reference"] = refs[ref]
        for value in node.values():
            if isinstance(value, dict | list):
                _rewrite(value, refs)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, refs)


class FhirFileAdapter:
    """FHIR resources from JSON or NDJSON bytes (gzip accepted)."""

    format = "fhir"

    def __init__(self, institution: str = "", *, ndjson: bool = False) -> None:
        self.institution = institution
        self.ndjson = ndjson
        if ndjson:
            self.format = "ndjson"

    def convert(self, data: bytes, *, source: str) -> Iterator[Outcome]:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if self.ndjson:
            for n, line in enumerate(data.splitlines(), 1):
                if line.strip():
                    yield self._record(line, f"{source}:{n}", f"line {n}")
        else:
            yield self._record(data, source, "document")

    def _record(self, raw: bytes, ref: str, where: str) -> Outcome:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Rejected(ref, raw, "not valid JSON", where)
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
            return Rejected(ref, raw, "not a FHIR resource (no resourceType)", where)
        if doc["resourceType"] != "Bundle" or self.ndjson:
            self._ensure_id(doc, raw)
            return Converted(ref, [doc])
        return self._bundle(doc, raw, ref, where)

    def _ensure_id(self, res: dict[str, Any], raw: bytes, full_url: str = "") -> None:
        if not res.get("id"):
            key = full_url or hashlib.sha256(raw).hexdigest()
            res["id"] = deterministic_id(res["resourceType"], self.institution, key)

    def _bundle(self, bundle: dict[str, Any], raw: bytes, ref: str, where: str) -> Outcome:
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            return Rejected(ref, raw, "Bundle.entry is not a list", "Bundle.entry")
        resources: list[dict[str, Any]] = []
        refs: dict[str, str] = {}
        for i, entry in enumerate(entries):
            res = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
                return Rejected(ref, raw, "entry without a resource", f"Bundle.entry[{i}]")
            full_url = str(entry.get("fullUrl") or "")
            self._ensure_id(res, orjson.dumps(res), full_url)
            if full_url:
                refs[full_url] = f"{res['resourceType']}/{res['id']}"
            resources.append(res)
        if not resources:
            return Rejected(ref, raw, "Bundle has no entries", "Bundle.entry")
        _rewrite(resources, refs)
        notes = (
            []
            if bundle.get("type") in ("transaction", "batch", "collection")
            else [f"Bundle of type {bundle.get('type')} stored as its entries"]
        )
        return Converted(ref, resources, notes)
