"""Work out which resource type a ``Reference`` points to, so its target can be checked.

Handles the R4 literal reference forms: relative ``Type/id`` (with optional
``/_history/vid``), absolute URLs ending in ``Type/id``, conditional references used in
transactions (``Type?search``), ``urn:uuid:`` / ``urn:oid:`` resolved against the fullUrls
of the enclosing Bundle. Local ``#id`` references are resolved by the walker, which knows the
``contained`` resources.
"""

from __future__ import annotations

import re
from typing import Any

_ID = r"[A-Za-z0-9\-\.]{1,64}"
_RELATIVE = re.compile(rf"([A-Z][A-Za-z]*)/{_ID}(?:/_history/{_ID})?").fullmatch
_ABSOLUTE_TAIL = re.compile(rf"/([A-Z][A-Za-z]*)/{_ID}(?:/_history/{_ID})?$").search
_CONDITIONAL = re.compile(r"([A-Z][A-Za-z]*)\?\S+").fullmatch


class RefResult:
    """Outcome of parsing a reference string."""

    __slots__ = ("error", "type_name")

    def __init__(self, type_name: str | None, error: str | None = None) -> None:
        self.type_name = type_name  # resource type referred to, when it can be told
        self.error = error  # public message when the reference string is malformed


_UNKNOWN = RefResult(None)


def referenced_type(
    ref: str, resource_types: frozenset[str], bundle_urls: dict[str, str] | None
) -> RefResult:
    """The resource type a literal reference names, if it can be told.

    Parameters
    ----------
    ref:
        The value of ``Reference.reference``.
    resource_types:
        All R4 resource type names.
    bundle_urls:
        ``fullUrl -> resourceType`` of the enclosing Bundle's entries, or ``None``.

    Examples
    --------
    >>> referenced_type("Patient/1", frozenset({"Patient"}), None).type_name
    'Patient'
    """
    if ref.startswith("#"):
        return _UNKNOWN
    if bundle_urls and ref in bundle_urls:
        return RefResult(bundle_urls[ref])
    if ref.startswith("urn:"):
        return _UNKNOWN
    if "://" in ref:
        m = _ABSOLUTE_TAIL(ref.split("?", 1)[0])
        if m is not None and m.group(1) in resource_types:
            return RefResult(m.group(1))
        return _UNKNOWN
    m = _RELATIVE(ref) or _CONDITIONAL(ref)
    if m is None:
        return RefResult(None, "relative reference must have the form Type/id")
    if m.group(1) not in resource_types:
        return RefResult(None, "reference names an unknown resource type")
    return RefResult(m.group(1))


def target_message(found: str, targets: frozenset[str]) -> str:
    """Public message for a reference to a type the element does not allow."""
    return f"a reference to {found} is not allowed here (allowed: {', '.join(sorted(targets))})"


def fullurl_types(bundle: dict[Any, Any], rtypes: frozenset[str]) -> dict[str, str] | None:
    """``fullUrl -> resourceType`` for the entries of a Bundle (to type-check urn:uuid refs)."""
    entries = bundle.get("entry")
    if type(entries) is not list:
        return None
    urls: dict[str, str] = {}
    for entry in entries:
        if type(entry) is dict:
            url, res = entry.get("fullUrl"), entry.get("resource")
            if type(url) is str and type(res) is dict:
                rt = res.get("resourceType")
                if type(rt) is str and rt in rtypes:
                    urls[url] = rt
    return urls
