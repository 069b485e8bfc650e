"""Index extraction: every search-parameter value of one resource, as rows the store inserts.

:func:`extract` runs the resource type's compiled plan (:meth:`Registry.plan`) and turns the
selected elements into normalised rows (:mod:`.values`), grouped by parameter type in
:class:`IndexRows`. Rows are de-duplicated per list; their order follows the plan.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from healthmesh.errors import InvalidResource
from healthmesh.fhir.search import values as V
from healthmesh.fhir.search.compiler import Closure
from healthmesh.fhir.search.registry import Registry, default_registry

Items = V.Items


@dataclass
class IndexRows:
    """The index rows of one resource, one plain list of tuples per parameter type.

    - ``strings``: ``(code, norm, exact)``
    - ``tokens``: ``(code, system, value, text_norm)``
    - ``identifier_types``: ``(code, type_system, type_code, identifier_value)``
    - ``dates``: ``(code, low, high)`` POSIX seconds, ``[low, high)``
    - ``numbers``: ``(code, low, high, value)``
    - ``quantities``: ``(code, system, unit_code, unit_text, low, high, value)``
    - ``references``: ``(code, target_type, target_id, url)``; a Reference's ``identifier``
      also gives a ``tokens`` row under the reference parameter's code (``:identifier``)
    - ``uris``: ``(code, uri)``
    - ``composites``: ``(code, (component value, ...))`` with component values token
      ``(system, value)``, quantity ``(system, code, low, high, value)``, date
      ``(low, high)``, number ``(low, high, value)``, string ``norm``, reference
      ``(type, id)``, uri ``uri``.
    """

    strings: list[tuple[str, str, str]] = field(default_factory=list)
    tokens: list[tuple[str, str | None, str | None, str | None]] = field(default_factory=list)
    identifier_types: list[tuple[str, str | None, str | None, str | None]] = field(
        default_factory=list
    )
    dates: list[tuple[str, float, float]] = field(default_factory=list)
    numbers: list[tuple[str, float, float, float]] = field(default_factory=list)
    quantities: list[tuple[str, str | None, str | None, str | None, float, float, float | None]] = (
        field(default_factory=list)
    )
    references: list[tuple[str, str | None, str | None, str | None]] = field(default_factory=list)
    uris: list[tuple[str, str]] = field(default_factory=list)
    composites: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def total(self) -> int:
        """Number of rows in all lists."""
        return sum(len(getattr(self, k)) for k in self.__dataclass_fields__)


def _add_strings(rows: IndexRows, code: str, items: Items) -> None:
    V.strings_into(rows.strings, code, items)


def _add_tokens(rows: IndexRows, code: str, items: Items) -> None:
    V.tokens_into(rows.tokens, code, items, rows.identifier_types)


def _add_dates(rows: IndexRows, code: str, items: Items) -> None:
    rows.dates.extend((code, lo, hi) for lo, hi in V.dates(items))


def _add_numbers(rows: IndexRows, code: str, items: Items) -> None:
    rows.numbers.extend((code, lo, hi, v) for lo, hi, v in V.numbers(items))


def _add_quantities(rows: IndexRows, code: str, items: Items) -> None:
    rows.quantities.extend((code, *q) for q in V.quantities(items))


def _add_references(rows: IndexRows, code: str, items: Items) -> None:
    rows.references.extend((code, t, i, u) for t, i, u in V.references(items))
    for value, _ in items:  # Reference.identifier -> token row, for ``:identifier``
        if type(value) is dict and type(ident := value.get("identifier")) is dict:
            V.tokens_into(rows.tokens, code, [(ident, "Identifier")])


def _add_uris(rows: IndexRows, code: str, items: Items) -> None:
    rows.uris.extend((code, u) for u in V.uris(items))


_ADDERS: dict[str, Callable[[IndexRows, str, Items], None]] = {
    "string": _add_strings,
    "token": _add_tokens,
    "date": _add_dates,
    "number": _add_numbers,
    "quantity": _add_quantities,
    "reference": _add_references,
    "uri": _add_uris,
}


def component_values(param_type: str, items: Items) -> list[Any]:
    """The composite-component form of the values of ``items`` (see :class:`IndexRows`)."""
    if param_type == "token":
        return list(dict.fromkeys((s, v) for s, v, _ in V.tokens(items) if v is not None))
    if param_type == "quantity":
        return [(s, c, lo, hi, v) for s, c, _, lo, hi, v in V.quantities(items)]
    if param_type == "date":
        return list(V.dates(items))
    if param_type == "number":
        return list(V.numbers(items))
    if param_type == "string":
        return [n for n, _ in V.strings(items)]
    if param_type == "reference":
        return [(t, i) for t, i, _ in V.references(items) if t is not None]
    if param_type == "uri":
        return list(V.uris(items))
    return []


def extract(resource: dict[str, Any], registry: Registry | None = None) -> IndexRows:
    """All index rows of ``resource`` under ``registry`` (default: the R4 registry).

    >>> rows = extract({"resourceType": "Patient", "id": "p1", "gender": "male",
    ...                 "birthDate": "1974-12-25"})
    >>> [t for t in rows.tokens if t[0] == "gender"]
    [('gender', 'http://hl7.org/fhir/administrative-gender', 'male', None)]
    >>> [d for d in rows.dates if d[0] == "birthdate"]
    [('birthdate', 157161600.0, 157248000.0)]
    """
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(rtype, str):
        raise InvalidResource("resource has no resourceType", location="resourceType")
    reg = registry if registry is not None else default_registry()
    steps, by_key, always = _steps(reg, rtype)
    rows = IndexRows()
    focus: Items = [(resource, rtype)]
    chosen = set(always)
    for key in resource:
        got = by_key.get(key)
        if got is not None:
            chosen.update(got)
    memo: dict[tuple[int, str, Any], list[Any]] = {}
    for i in sorted(chosen):
        fn, code, adder, components = steps[i]
        items = fn(focus, resource)
        if not items:
            continue
        if adder is not None:
            adder(rows, code, items)
            continue
        for item in items:  # composite
            parts = []
            for ctype, cfn in components:
                # several composites share components (code, value) on one element
                mkey = (id(item[0]), ctype, cfn)
                vals = memo.get(mkey)
                if vals is None:
                    vals = memo[mkey] = component_values(ctype, cfn([item], resource))
                parts.append(vals)
            rows.composites.extend((code, combo) for combo in itertools.product(*parts))
    fields = rows.__dict__
    for name in _FIELDS:
        lst = fields[name]
        if len(lst) > 1:
            fields[name] = list(dict.fromkeys(lst))
    return rows


Step = tuple[Closure, str, Callable[[IndexRows, str, Items], None] | None, Any]
_STEPS: weakref.WeakKeyDictionary[Registry, dict[str, Any]] = weakref.WeakKeyDictionary()
_FIELDS = tuple(IndexRows.__dataclass_fields__)


def _steps(
    reg: Registry, rtype: str
) -> tuple[tuple[Step, ...], dict[str, tuple[int, ...]], frozenset[int]]:
    """The registry's plan for ``rtype`` flattened for the hot loop (cached per registry)."""
    per_reg = _STEPS.get(reg)
    if per_reg is None:
        per_reg = _STEPS[reg] = {}
    got = per_reg.get(rtype)
    if got is None:
        plans = reg.plan(rtype)
        by_key, always = reg.plan_index(rtype)
        steps = tuple(
            (
                p.fn,
                p.param.code,
                None if p.param.type == "composite" else _adder(p.param.type, p.implicit_system),
                p.components,
            )
            for p in plans
        )
        got = per_reg[rtype] = (steps, by_key, always)
    return got


def _adder(kind: str, implicit_system: str | None) -> Callable[[IndexRows, str, Items], None]:
    if kind == "token" and implicit_system is not None:

        def add_coded_tokens(rows: IndexRows, code: str, items: Items) -> None:
            V.tokens_into(rows.tokens, code, items, rows.identifier_types, implicit_system)

        return add_coded_tokens
    return _ADDERS.get(kind, _skip)


def _skip(rows: IndexRows, code: str, items: Items) -> None:
    """Parameter types without index rows."""
