"""``_summary=true``: keep the elements the R4 definitions mark ``isSummary``.

Top-level elements only: a kept complex element is returned whole (the definitions' nested
summary flags are not applied), which the specification permits for servers that cannot
subset deeper; the result is marked SUBSETTED either way.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources
from typing import Any

_ALWAYS = frozenset({"resourceType", "id", "meta", "implicitRules"})


@cache
def summary_elements() -> dict[str, frozenset[str]]:
    raw = (
        resources.files("healthmesh.fhir") / "_generated" / "summary_elements.json.gz"
    ).read_bytes()
    doc = json.loads(gzip.decompress(raw))
    return {k: frozenset(v) for k, v in doc["summary"].items()}


def summary_view(resource: dict[str, Any]) -> dict[str, Any]:
    keep = summary_elements().get(str(resource.get("resourceType")), frozenset())
    out: dict[str, Any] = {}
    for key, value in resource.items():
        base = key[1:] if key.startswith("_") else key
        if (
            key in _ALWAYS
            or base in keep
            or any(base.startswith(k) and base[len(k) :][:1].isupper() for k in keep)
        ):
            out[key] = value
    return out
