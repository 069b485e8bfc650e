"""A few cheap, high-value R4 invariants, written out in Python instead of FHIRPath.

FHIRPath constraints in general are not evaluated (see docs/validation.md). These are the
exceptions, because the store relies on them and each costs a handful of dictionary
look-ups per Bundle or contained resource:

- ``dom-2``: a contained resource SHALL NOT contain additional contained resources;
- ``dom-3``: a contained resource SHALL be referenced from elsewhere in the resource or SHALL
  refer to the containing resource;
- ``dom-4``: a contained resource SHALL NOT have ``meta.versionId`` or ``meta.lastUpdated``;
- ``dom-5``: a contained resource SHALL NOT have a security label;
- ``bdl-1``: ``total`` only in a searchset or history Bundle;
- ``bdl-2``: ``entry.search`` only in a searchset Bundle;
- ``bdl-3``: ``entry.request`` present exactly in batch, transaction and history Bundles;
- ``bdl-4``: ``entry.response`` present exactly in batch-response, transaction-response and
  history Bundles;
- ``bdl-5``: an entry has a resource, a request or a response;
- ``bdl-7``: ``fullUrl`` is unique (with the same ``meta.versionId``), except in history;
- ``bdl-8``: ``fullUrl`` is not a version-specific reference.

Each function returns ``(location, message)`` pairs; the walker records them as
``invariant`` errors. Messages never contain values.
"""

from __future__ import annotations

from typing import Any

Finding = tuple[str, str]  # (location, message)

_REQUEST_TYPES = frozenset({"batch", "transaction", "history"})
_RESPONSE_TYPES = frozenset({"batch-response", "transaction-response", "history"})


def contained_findings(res: dict[str, Any], path: str) -> list[Finding]:
    """dom-2, dom-4, dom-5 for a resource found in ``contained``."""
    out: list[Finding] = []
    if "contained" in res:
        out.append((f"{path}.contained", "a contained resource cannot contain resources (dom-2)"))
    meta = res.get("meta")
    if type(meta) is dict:
        if "versionId" in meta or "lastUpdated" in meta:
            out.append((f"{path}.meta", "a contained resource cannot have meta.versionId or "
                                        "meta.lastUpdated (dom-4)"))
        if "security" in meta:
            out.append((f"{path}.meta.security",
                        "a contained resource cannot have security labels (dom-5)"))
    return out


def bundle_findings(
    bundle: dict[str, Any], path: str, bundle_types: frozenset[str] | None
) -> list[Finding]:
    """bdl-1, -2, -3, -4, -5, -7, -8 for a Bundle whose ``type`` is a valid code."""
    btype = bundle.get("type")
    if type(btype) is not str or (bundle_types is not None and btype not in bundle_types):
        return []  # a missing or invalid type is reported already
    out: list[Finding] = []
    if "total" in bundle and btype not in ("searchset", "history"):
        out.append((f"{path}.total", "total is only allowed in searchset and history bundles "
                                     "(bdl-1)"))
    entries = bundle.get("entry")
    if type(entries) is not list:
        return out
    wants_request = btype in _REQUEST_TYPES
    wants_response = btype in _RESPONSE_TYPES
    seen: set[tuple[str, object]] = set()
    for i, entry in enumerate(entries):
        if type(entry) is not dict:
            continue
        loc = f"{path}.entry[{i}]"
        if "search" in entry and btype != "searchset":
            out.append((f"{loc}.search", "search is only allowed in searchset bundles (bdl-2)"))
        if ("request" in entry) != wants_request:
            out.append((f"{loc}.request", "request is required in batch, transaction and "
                                          "history bundles and not allowed otherwise (bdl-3)"))
        if ("response" in entry) != wants_response:
            out.append((f"{loc}.response", "response is required in batch-response, "
                        "transaction-response and history bundles and not allowed otherwise "
                        "(bdl-4)"))
        if not ("resource" in entry or "request" in entry or "response" in entry):
            out.append((loc, "an entry needs a resource, a request or a response (bdl-5)"))
        url = entry.get("fullUrl")
        if type(url) is str:
            if "/_history/" in url:
                out.append((f"{loc}.fullUrl", "fullUrl cannot be version specific (bdl-8)"))
            if btype != "history":
                res = entry.get("resource")
                meta = res.get("meta") if type(res) is dict else None
                version = meta.get("versionId") if type(meta) is dict else None
                key = (url, version if type(version) is str else None)
                if key in seen:
                    out.append((f"{loc}.fullUrl", "fullUrl must be unique in a bundle (bdl-7)"))
                seen.add(key)
    return out


def _strings(node: Any) -> set[str]:
    """Every string value anywhere under ``node`` (iterative; bounded by the input size)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            found.add(item)
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return found


def unreferenced_contained(res: dict[str, Any], path: str) -> list[Finding]:
    """dom-3: each contained resource is referenced as ``#id`` or itself refers to ``#``.

    Any string equal to ``#id`` anywhere in the resource counts as a reference (the R4
    expression looks at references, canonicals and uris; counting every string can only
    accept more, never reject a valid resource).
    """
    contained = res.get("contained")
    if type(contained) is not list:
        return []
    strings: set[str] | None = None
    out: list[Finding] = []
    for i, c in enumerate(contained):
        if type(c) is not dict or type(c.get("id")) is not str:
            continue
        if strings is None:
            strings = _strings(res)
        if "#" + c["id"] not in strings and "#" not in _strings(c):
            out.append((f"{path}.contained[{i}]", "a contained resource must be referenced from "
                                                 "the resource or refer to it (dom-3)"))
    return out
