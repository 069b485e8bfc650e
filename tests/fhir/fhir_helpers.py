"""Helpers shared by the FHIR store and API tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from healthmesh.fhir.bundles import BundleProcessor
from healthmesh.fhir.store import FhirStore


def synthea_bundles(shared: Path) -> list[Path]:
    return sorted((shared / "synthea").glob("*.json.gz"))


def load_bundle(path: Path) -> dict[str, Any]:
    return json.loads(gzip.decompress(path.read_bytes()))


def processor(store: FhirStore) -> BundleProcessor:
    def get(url: str) -> dict[str, Any]:
        rtype, rid = url.split("/")[:2]
        return store.read(rtype, rid).resource()

    return BundleProcessor(store, lambda _t, _i: None, get)
