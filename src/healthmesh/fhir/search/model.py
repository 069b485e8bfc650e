"""The FHIR R4 type model the compiled FHIRPath closures navigate by.

It answers two questions, memoised: which JSON keys (and with which FHIR types) does member
``name`` of an element of type ``T`` live under (choice elements ``value[x]`` become
``valueQuantity``, ``valueString`` ...), and is type ``A`` a ``B`` (``Age`` is a ``Quantity``,
``Patient`` is a ``Resource``). The tables are the R4 model fhirpathpy ships
(``fhirpathpy.models.models["r4"]``: ``path2Type``, ``choiceTypePaths``, ``type2Parent``,
``pathsDefinedElsewhere``), so the compiled closures and the fhirpathpy fallback agree on
the model. Backbone elements are typed by their path (``Observation.component``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhirpathpy.models import models

_R4: dict[str, Any] = models["r4"]
_PATH2TYPE: dict[str, str] = _R4["path2Type"]
_CHOICES: dict[str, list[str]] = _R4["choiceTypePaths"]
_PARENT: dict[str, str] = _R4["type2Parent"]
_ELSEWHERE: dict[str, str] = _R4["pathsDefinedElsewhere"]

#: Every concrete R4 resource type name.
RESOURCE_TYPES: frozenset[str] = frozenset(
    k for k, v in _PARENT.items() if v in ("DomainResource", "Resource") and k != "DomainResource"
)
#: FHIR primitive type names (lower-case initial), as they appear in ``path2Type``.
PRIMITIVES: frozenset[str] = frozenset(k for k in _PARENT if k[:1].islower())
#: System (FHIRPath) type names and the FHIR primitives they stand for in ``as``/``is``.
_SYSTEM_ALIASES: dict[str, tuple[str, ...]] = {
    "String": ("string", "code", "id", "markdown", "uri", "url", "canonical", "oid", "uuid"),
    "Boolean": ("boolean",),
    "Integer": ("integer", "positiveInt", "unsignedInt"),
    "Decimal": ("decimal",),
    "Date": ("date",),
    "DateTime": ("dateTime",),
    "Time": ("time",),
}


def _type_name(choice_suffix: str) -> str:
    """``DateTime`` -> ``dateTime`` for primitives; complex names stay as they are."""
    low = choice_suffix[:1].lower() + choice_suffix[1:]
    return low if low in PRIMITIVES else choice_suffix


def parent_of(type_name: str) -> str | None:
    """The super type of ``type_name``; backbone paths (``A.b``) extend BackboneElement."""
    if type_name in _PARENT:
        return _PARENT[type_name]
    if "." in type_name:
        return "BackboneElement"
    return None


@cache
def children(type_name: str, name: str) -> tuple[tuple[str, str | None], ...]:
    """The ``(json key, FHIR type)`` pairs member ``name`` of ``type_name`` can appear under.

    An unknown member yields ``((name, None),)``: it is still read, with an unknown type.

    >>> children("Observation", "effective")[:2]
    (('effectiveDateTime', 'dateTime'), ('effectivePeriod', 'Period'))
    >>> children("Patient", "id")
    (('id', 'System.String'),)
    """
    t: str | None = type_name
    while t is not None:
        path = f"{t}.{name}"
        if path in _CHOICES:
            return tuple((name + suffix, _type_name(suffix)) for suffix in _CHOICES[path])
        if path in _PATH2TYPE:
            return ((name, _PATH2TYPE[path]),)
        if path in _ELSEWHERE:
            return ((name, _ELSEWHERE[path]),)
        if any(k.startswith(path + ".") for k in _prefixes(t)):
            return ((name, path),)  # a backbone element, typed by its path
        t = parent_of(t)
    return ((name, None),)


@cache
def _prefixes(type_name: str) -> frozenset[str]:
    """All model paths under ``type_name`` (to recognise backbone members)."""
    head = type_name + "."
    return frozenset(k for k in _PATH2TYPE if k.startswith(head)) | frozenset(
        k for k in _CHOICES if k.startswith(head)
    )


@cache
def is_a(type_name: str | None, wanted: str) -> bool:
    """Whether an element of ``type_name`` is a ``wanted`` (subtypes included).

    System type names (``DateTime``, ``String``) match the FHIR primitives they stand for.

    >>> is_a("Age", "Quantity"), is_a("Patient", "Resource"), is_a("dateTime", "DateTime")
    (True, True, True)
    """
    if type_name is None:
        return False
    wanted = wanted.removeprefix("FHIR.")
    if wanted.startswith("System."):
        wanted = wanted[7:]
    if type_name in _SYSTEM_ALIASES.get(wanted, ()):
        return True
    t: str | None = type_name
    while t is not None:
        if t == wanted:
            return True
        t = parent_of(t)
    return False
