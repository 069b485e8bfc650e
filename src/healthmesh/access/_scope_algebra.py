"""The value type of one resource scope and the set algebra on scopes (merge, subsume, meet).

Kept apart from the grammar in :mod:`healthmesh.access.scopes` so that each stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_ORDER = "cruds"
_V1_EXPRESSIBLE = frozenset({"rs", "cud", "cruds"})


def _ordered(letters: set[str] | frozenset[str]) -> str:
    return "".join(c for c in _ORDER if c in letters)


@dataclass(frozen=True, order=True)
class ResourceScope:
    """One clinical scope, e.g. ``system/Observation.rs?category=laboratory``.

    ``permissions`` is an in-order subset of ``cruds``; ``restriction`` the sorted search
    parameters that narrow it; ``v1`` whether it was written with a v1 suffix.
    """

    context: str
    resource_type: str
    permissions: str
    restriction: tuple[tuple[str, str], ...] = ()
    v1: bool = False

    def covers(self, resource_type: str, permission: str) -> bool:
        """Whether this scope grants ``permission`` on ``resource_type`` (ignoring restriction)."""
        return permission in self.permissions and self.resource_type in ("*", resource_type)

    def subsumes(self, other: ResourceScope) -> bool:
        """Whether every access ``other`` grants is also granted by ``self``."""
        return (
            self.context == other.context
            and self.resource_type in ("*", other.resource_type)
            and set(other.permissions) <= set(self.permissions)
            and set(self.restriction) <= set(other.restriction)
        )


def normalize(scopes: Sequence[ResourceScope]) -> tuple[ResourceScope, ...]:
    """Merge scopes that differ only in permissions and drop scopes another one subsumes.

    The result is sorted, so equal grants print equally ("factored to their shortest form"
    as SMART recommends).
    """
    merged: dict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[set[str], bool]] = {}
    for s in scopes:
        key = (s.context, s.resource_type, s.restriction)
        perms, v1 = merged.get(key, (set(), True))
        merged[key] = (perms | set(s.permissions), v1 and s.v1)
    items = [
        ResourceScope(ctx, rtype, _ordered(perms), restr, v1 and _ordered(perms) in _V1_EXPRESSIBLE)
        for (ctx, rtype, restr), (perms, v1) in merged.items()
        if perms
    ]
    kept = [s for s in items if not any(o is not s and o.subsumes(s) for o in items)]
    return tuple(sorted(kept))


def _meet_restrictions(
    a: tuple[tuple[str, str], ...], b: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...] | None:
    """AND of two restrictions, or ``None`` when they constrain one parameter differently
    (not representable as one parameter map, so nothing is granted: safe side)."""
    out = dict(a)
    for name, value in b:
        if out.get(name, value) != value:
            return None
        out[name] = value
    return tuple(sorted(out.items()))


def meet(requested: ResourceScope, granted: ResourceScope) -> ResourceScope | None:
    """The largest scope contained in both, or ``None``; notation follows ``requested``."""
    if requested.context != granted.context:
        return None
    if requested.resource_type == granted.resource_type or granted.resource_type == "*":
        rtype = requested.resource_type
    elif requested.resource_type == "*":
        rtype = granted.resource_type
    else:
        return None
    perms = _ordered(set(requested.permissions) & set(granted.permissions))
    restriction = _meet_restrictions(requested.restriction, granted.restriction)
    if not perms or restriction is None:
        return None
    return ResourceScope(
        requested.context, rtype, perms, restriction, requested.v1 and perms in _V1_EXPRESSIBLE
    )


def intersect_scopes(
    requested: Sequence[ResourceScope], granted: Sequence[ResourceScope]
) -> tuple[ResourceScope, ...]:
    """Pairwise meet of two scope lists, normalised."""
    out = []
    for r in requested:
        for g in granted:
            m = meet(r, g)
            if m is not None:
                out.append(m)
    return normalize(out)
