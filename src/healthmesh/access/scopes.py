"""SMART App Launch v2 scopes (with v1 compatibility): parse, match, intersect, print.

Grammar (SMART App Launch 2.x, "Clinical Scope Syntax")::

    ( patient | user | system ) "/" ( ResourceType | "*" ) "." <ordered subset of c r u d s>
        [ "?" param=value ( "&" param=value )* ]

v1 suffixes are accepted and mapped as the specification says: ``.read`` ⇒ ``.rs``,
``.write`` ⇒ ``.cud``, ``.*`` ⇒ ``.cruds``; a scope requested in v1 form is printed back in v1
form when its permissions still fit one. Out-of-order or repeated letters (``.dus``, ``.rr``) are
rejected, as the specification allows, so nothing is ever over-granted by a lenient reading.

Context scopes (``openid``, ``fhirUser``, ``launch``, ``launch/patient``, ``offline_access`` …)
are kept verbatim in :attr:`ScopeSet.other`; they grant no resource access.

Hand-written because no maintained Python library parses SMART v2 scopes; the grammar is small.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from healthmesh.access._scope_algebra import ResourceScope, intersect_scopes, normalize
from healthmesh.errors import InvalidInput

__all__ = [
    "CONTEXTS",
    "INTERACTION_PERMISSION",
    "InvalidScope",
    "ResourceScope",
    "ScopeSet",
    "permission_for",
]

CONTEXTS = ("patient", "user", "system")
PERMISSION_ORDER = "cruds"
V1_SUFFIXES = {"read": "rs", "write": "cud", "*": "cruds"}

#: FHIR restful-interaction codes → the SMART v2 permission letter that governs them.
INTERACTION_PERMISSION: Mapping[str, str] = {
    "create": "c",
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "search": "s",
    "search-type": "s",
    "search-system": "s",
    "history-type": "s",
    "history-system": "s",
}

_CLINICAL = re.compile(
    r"^(?P<ctx>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})"
    r"\.(?P<perm>[a-z*]+)(?:\?(?P<query>.+))?$"
)
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,63}$")
_OTHER = re.compile(
    r"^(openid|fhirUser|profile|launch|launch/[a-z]{1,64}|offline_access|online_access)$"
)
# Characters left as-is when a restriction value is printed back into a scope string.
_VALUE_SAFE = "|:/,.-_~*@!$'()+;"


class InvalidScope(InvalidInput):
    """A scope string does not follow the SMART grammar (OAuth error ``invalid_scope``)."""


def permission_for(interaction: str) -> str:
    """The permission letter (``c r u d s``) for a letter or a FHIR interaction code.

    >>> permission_for("search-type"), permission_for("r")
    ('s', 'r')
    """
    if len(interaction) == 1 and interaction in PERMISSION_ORDER:
        return interaction
    try:
        return INTERACTION_PERMISSION[interaction]
    except KeyError:
        raise ValueError(f"unknown interaction {interaction!r}") from None


def _parse_permissions(suffix: str, scope: str) -> tuple[str, bool]:
    if suffix in V1_SUFFIXES:
        return V1_SUFFIXES[suffix], True
    pos = -1
    for letter in suffix:
        nxt = PERMISSION_ORDER.find(letter)
        if nxt <= pos:
            raise InvalidScope(f"scope {scope!r}: permissions must be an in-order subset of cruds")
        pos = nxt
    return suffix, False


def _parse_query(query: str, scope: str) -> tuple[tuple[str, str], ...]:
    pairs: dict[str, str] = {}
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        name, value = unquote(name), unquote(value)
        if not sep or not value or not _PARAM_NAME.match(name):
            raise InvalidScope(f"scope {scope!r}: restriction must be param=value pairs")
        if name in pairs:
            raise InvalidScope(f"scope {scope!r}: parameter {name!r} repeated in a restriction")
        pairs[name] = value
    return tuple(sorted(pairs.items()))


def parse_scope(token: str) -> ResourceScope | str:
    """Parse one space-free scope token: a :class:`ResourceScope` or a context scope string.

    Raises :class:`InvalidScope` for anything else.
    """
    m = _CLINICAL.match(token)
    if m:
        perms, v1 = _parse_permissions(m["perm"], token)
        restriction = _parse_query(m["query"], token) if m["query"] else ()
        return ResourceScope(m["ctx"], m["type"], perms, restriction, v1)
    if _OTHER.match(token):
        return token
    raise InvalidScope(f"unsupported scope {token[:80]!r}")


def format_scope(scope: ResourceScope) -> str:
    """Print a resource scope in canonical form (v1 suffix where it was requested so)."""
    suffix = scope.permissions
    if scope.v1:
        for v1, perms in V1_SUFFIXES.items():
            if perms == scope.permissions:
                suffix = v1
    text = f"{scope.context}/{scope.resource_type}.{suffix}"
    if scope.restriction:
        text += "?" + "&".join(
            f"{quote(k, safe=':.-_')}={quote(v, safe=_VALUE_SAFE)}" for k, v in scope.restriction
        )
    return text


@dataclass(frozen=True)
class ScopeSet:
    """A normalised set of granted scopes.

    ``resources`` are the clinical (resource) scopes, ``other`` the context scopes.

    Examples
    --------
    >>> s = ScopeSet.parse("system/Patient.rs system/Observation.rs?category=laboratory")
    >>> s.allows("Patient", "r"), s.allows("Patient", "c")
    (True, False)
    >>> s.restrictions("Observation", "s")
    [{'category': 'laboratory'}]
    >>> str(ScopeSet.parse("system/*.read"))
    'system/*.read'
    """

    resources: tuple[ResourceScope, ...] = ()
    other: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, text: str, *, strict: bool = True) -> ScopeSet:
        """Parse a space-separated scope string.

        With ``strict`` (the default) any unsupported or malformed token raises
        :class:`InvalidScope`; otherwise such tokens are dropped.
        """
        resources: list[ResourceScope] = []
        other: set[str] = set()
        for token in text.split():
            try:
                parsed = parse_scope(token)
            except InvalidScope:
                if strict:
                    raise
                continue
            if isinstance(parsed, str):
                other.add(parsed)
            else:
                resources.append(parsed)
        return cls(normalize(resources), frozenset(other))

    @classmethod
    def of(cls, resources: Iterable[ResourceScope], other: Iterable[str] = ()) -> ScopeSet:
        """Build a normalised set from already parsed scopes."""
        return cls(normalize(list(resources)), frozenset(other))

    def __str__(self) -> str:
        return " ".join([format_scope(s) for s in self.resources] + sorted(self.other))

    def __bool__(self) -> bool:
        return bool(self.resources or self.other)

    # -- matching -------------------------------------------------------------------------
    def _effective(self, resource_type: str, interaction: str) -> list[ResourceScope]:
        """Scopes that grant ``interaction`` on ``resource_type``.

        When system/ or user/ scopes grant it, patient/ scopes are ignored for it: mixing a
        compartment-limited grant with a population grant could otherwise widen one by the
        other's restriction. This may under-grant, never over-grant.
        """
        perm = permission_for(interaction)
        hits = [s for s in self.resources if s.covers(resource_type, perm)]
        population = [s for s in hits if s.context != "patient"]
        return population or hits

    def allows(self, resource_type: str, interaction: str) -> bool:
        """Whether any scope grants ``interaction`` (``c r u d s`` or a FHIR interaction code)
        on ``resource_type``, possibly only under restrictions (see :meth:`restrictions`)."""
        return bool(self._effective(resource_type, interaction))

    def restrictions(self, resource_type: str, interaction: str) -> list[dict[str, str]] | None:
        """Search restrictions the store must AND into the request.

        ``None``: unrestricted. ``[]``: not allowed at all. Otherwise a list of parameter maps;
        a resource is allowed when it matches *any* map (all parameters of that map).
        """
        hits = self._effective(resource_type, interaction)
        if any(not s.restriction for s in hits):
            return None
        out: list[dict[str, str]] = []
        for s in hits:
            as_dict = dict(s.restriction)
            if as_dict not in out:
                out.append(as_dict)
        return out

    def compartment(self, resource_type: str, interaction: str) -> str | None:
        """``"Patient"`` when only patient/ scopes grant this: access is then limited to the
        compartment of the token's launch patient (``AccessContext.patient``); else ``None``."""
        hits = self._effective(resource_type, interaction)
        return "Patient" if hits and all(s.context == "patient" for s in hits) else None

    def types_for(self, interaction: str, all_types: Iterable[str]) -> frozenset[str]:
        """The resource types of ``all_types`` on which ``interaction`` is granted."""
        return frozenset(t for t in all_types if self.allows(t, interaction))

    @property
    def contexts(self) -> frozenset[str]:
        """The context prefixes (patient, user, system) present in the resource scopes."""
        return frozenset(s.context for s in self.resources)

    # -- algebra --------------------------------------------------------------------------
    def intersection(self, other: ScopeSet) -> ScopeSet:
        """What both sets grant. Notation (v1/v2) follows ``self`` (the request).

        >>> req = ScopeSet.parse("system/Observation.cruds system/Patient.rs")
        >>> str(req.intersection(ScopeSet.parse("system/*.rs?_security=N")))
        'system/Observation.rs?_security=N system/Patient.rs?_security=N'
        """
        return ScopeSet(intersect_scopes(self.resources, other.resources), self.other & other.other)

    __and__ = intersection

    def only(self, *contexts: str) -> ScopeSet:
        """The subset whose resource scopes use one of ``contexts``; context scopes dropped."""
        return ScopeSet(tuple(s for s in self.resources if s.context in contexts), frozenset())
