"""The search-parameter registry: the R4 definitions, split per resource type and compiled.

Definitions come from the generated table ``_generated/search_parameters.json.gz``
(``scripts/gen_search_parameters.py``, from ``hl7.fhir.r4.examples@4.0.1``, CC0). A
definition with several bases (``clinical-patient``: ``AllergyIntolerance.patient |
CarePlan.subject.where(resolve() is Patient) | ...``) becomes one :class:`SearchParam` per
base whose expression keeps only that base's union branches. Definitions on ``Resource``
(``_id``, ``_lastUpdated``, ``_tag``, ``_profile``, ``_security``, ``_source``) apply to
every type. ``_text``, ``_content`` and ``_query`` have no expression and are not indexed.
Each expression is compiled once (:mod:`.compiler`); the few outside the compiled subset
are evaluated with fhirpathpy (``Registry.compile_stats`` counts them).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from healthmesh.fhir.search.compiler import (
    Closure,
    code_elements,
    compile_expression,
    required_keys,
)
from healthmesh.fhir.search.fhirpath import Unsupported
from healthmesh.fhir.search.model import RESOURCE_TYPES, parent_of

GENERATED = Path(__file__).resolve().parents[1] / "_generated"
_RESOURCE_LEVEL = ("Resource", "DomainResource")
_NOT_INDEXED = ("_text", "_content", "_query")
_MODIFIERS: dict[str, tuple[str, ...]] = {
    "string": ("missing", "exact", "contains"),
    "token": ("missing", "text", "not", "above", "below", "in", "not-in", "of-type"),
    "reference": ("missing", "type", "identifier", "above", "below"),
    "uri": ("missing", "above", "below"),
    "date": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
    "composite": ("missing",),
    "special": (),
}


@dataclass(frozen=True)
class SearchParam:
    """One search parameter as it applies to one resource type (``base``).

    ``components`` holds, for a composite, ``(component parameter code, expression relative to
    each element the composite's expression selects)``. ``modifiers`` are those the R4 spec
    defines for the type (the definitions list none themselves).
    """

    code: str
    type: str
    base: str
    expression: str
    targets: tuple[str, ...]
    components: tuple[tuple[str, str], ...]
    url: str
    modifiers: tuple[str, ...]
    multiple_or: bool
    multiple_and: bool
    comparators: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """What :func:`~.extract.extract` runs for one parameter of one type."""

    param: SearchParam
    fn: Closure
    components: tuple[tuple[str, Closure], ...]  # (component type, closure)
    keys: frozenset[str] | None  # top-level keys it needs (None: always evaluate)
    implicit_system: str | None = None  # code system of the code elements it selects


def split_branches(expression: str) -> list[str]:
    """Split at top-level ``|`` (outside parentheses, brackets and quotes)."""
    out: list[str] = []
    depth, start, quote = 0, 0, False
    for i, ch in enumerate(expression):
        if ch == "'" and (i == 0 or expression[i - 1] != "\\"):
            quote = not quote
        elif quote:
            continue
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(expression[start:i].strip())
            start = i + 1
    out.append(expression[start:].strip())
    return [b for b in out if b]


def branch_root(branch: str) -> str:
    """The type name a branch starts from: ``(Observation.value as X)`` -> ``Observation``."""
    text = branch.lstrip("( ")
    end = 0
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[:end]


def _fallback(expression: str) -> Closure:
    """Evaluate ``expression`` with fhirpathpy (for FHIRPath outside the compiled subset)."""
    from healthmesh.fhir.search.reference import evaluate_element, evaluate_resource

    def run(items: list[tuple[Any, str | None]], root: dict[str, Any]) -> Any:
        if len(items) == 1 and items[0][0] is root:
            return [(v, None) for v in evaluate_resource(expression, root)]
        return [  # relative (composite component): per element
            (v, None)
            for value, vtype in items
            for v in evaluate_element(expression, value, vtype, root)
        ]

    return run


class Registry:
    """Search parameters per resource type, with compiled extraction plans."""

    def __init__(
        self,
        definitions: list[dict[str, Any]],
        compartments: dict[str, Any] | None = None,
        implicit_systems: dict[str, str] | None = None,
    ) -> None:
        """``definitions``: SearchParameter resources (or the generated compact form, whose
        components are ``[definition, expression]`` pairs); later ones override earlier ones
        with the same (base, code), so custom parameters can be appended to the R4 set.
        ``compartments``: ``{compartment: {resource type: [param codes]}}``.
        ``implicit_systems``: ``{element path: code system}`` for bound ``code`` elements."""
        definitions = [_compact_components(d) for d in definitions]
        self._implicit_systems = implicit_systems or {}
        compartments = compartments or {}
        self._by_type: dict[str, dict[str, SearchParam]] = {}
        self._resource_level: dict[str, SearchParam] = {}
        self._fallbacks: set[str] = set()
        self._compiled: dict[tuple[str, str | None], Closure] = {}
        type_of_url = {d["url"]: d["type"] for d in definitions}
        code_of_url = {d["url"]: d["code"] for d in definitions}
        self._component_types: dict[tuple[str, str], str] = {}
        for d in definitions:
            for base, expr in self._split(d):
                sp = SearchParam(
                    code=d["code"],
                    type=d["type"],
                    base=base,
                    expression=expr,
                    targets=tuple(d.get("target", ())),
                    components=tuple(
                        (code_of_url.get(url, url.rsplit("/", 1)[-1]), cexpr)
                        for url, cexpr in d.get("component", ())
                    ),
                    url=d["url"],
                    modifiers=_MODIFIERS.get(d["type"], ()),
                    multiple_or=d.get("multipleOr", True),
                    multiple_and=d.get("multipleAnd", True),
                    comparators=tuple(d.get("comparator", ())),
                )
                for url, cexpr in d.get("component", ()):
                    self._component_types[(d["url"], cexpr)] = type_of_url.get(url, "string")
                if base in _RESOURCE_LEVEL:
                    self._resource_level[sp.code] = sp
                else:
                    self._by_type.setdefault(base, {})[sp.code] = sp
        self._compartments = compartments
        self._views: dict[str, Mapping[str, SearchParam]] = {}
        self._plans: dict[str, tuple[Plan, ...]] = {}
        self._plan_index: dict[str, tuple[dict[str, tuple[int, ...]], frozenset[int]]] = {}
        self._no_expression = sum(1 for d in definitions if not d.get("expression"))

    @staticmethod
    def _split(d: dict[str, Any]) -> list[tuple[str, str]]:
        expr = d.get("expression")
        if not expr or d["code"] in _NOT_INDEXED:
            return []
        bases = d["base"]
        if len(bases) == 1:
            return [(bases[0], expr)]
        grouped: dict[str, list[str]] = {}
        for branch in split_branches(expr):
            grouped.setdefault(branch_root(branch), []).append(branch)
        return [(b, " | ".join(grouped[b])) for b in bases if b in grouped]

    def resource_types(self) -> tuple[str, ...]:
        """Every resource type that has search parameters of its own, sorted."""
        return tuple(sorted(self._by_type))

    def for_type(self, resource_type: str) -> Mapping[str, SearchParam]:
        """All parameters of ``resource_type``, Resource-level ones (``_id`` ...) included."""
        view = self._views.get(resource_type)
        if view is None:
            merged = dict(self._resource_level)
            merged.update(self._by_type.get(resource_type, {}))
            view = MappingProxyType(merged)
            self._views[resource_type] = view
        return view

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        """One parameter by type and code, or None."""
        return self.for_type(resource_type).get(code)

    def compartment_params(self, compartment: str, resource_type: str) -> tuple[str, ...]:
        """The parameters that put a ``resource_type`` in ``compartment`` (e.g. ``Patient``)."""
        return tuple(self._compartments.get(compartment, {}).get(resource_type, ()))

    def compartment_types(self, compartment: str) -> tuple[str, ...]:
        """The resource types that can be in ``compartment``, sorted."""
        return tuple(sorted(t for t, p in self._compartments.get(compartment, {}).items() if p))

    def compiled(self, expression: str, root_type: str | None = None) -> Closure:
        """The closure for an expression (compiled once; fhirpathpy for the rest).

        ``root_type``: the resource type the closure will run on (None: relative/any).
        """
        fn = self._compiled.get((expression, root_type))
        if fn is None:
            try:
                fn = compile_expression(expression, root_type)
            except Unsupported:
                fn = _fallback(expression)
                self._fallbacks.add(expression)
            self._compiled[(expression, root_type)] = fn
        return fn

    def plan(self, resource_type: str) -> tuple[Plan, ...]:
        """The extraction plan of one resource type: each indexed parameter, compiled."""
        done = self._plans.get(resource_type)
        if done is not None:
            return done
        plans: list[Plan] = []
        for sp in self.for_type(resource_type).values():
            if sp.type == "special":
                continue
            comps = tuple(
                (self._component_types.get((sp.url, cexpr), "string"), self.compiled(cexpr))
                for _, cexpr in sp.components
            )
            keys = required_keys(sp.expression, resource_type)
            if keys is None and sp.components:
                keys = self._composite_keys(sp, resource_type)
            fn = self.compiled(sp.expression, resource_type)
            implicit = self._implicit(sp, resource_type) if sp.type == "token" else None
            plans.append(Plan(sp, fn, comps, keys, implicit))
        self._plans[resource_type] = tuple(plans)
        by_key: dict[str, list[int]] = {}
        always: list[int] = []
        for i, p in enumerate(plans):
            for key in p.keys if p.keys is not None else ():
                by_key.setdefault(key, []).append(i)
            if p.keys is None:
                always.append(i)
        self._plan_index[resource_type] = (
            {k: tuple(v) for k, v in by_key.items()},
            frozenset(always),
        )
        return self._plans[resource_type]

    def _implicit(self, sp: SearchParam, resource_type: str) -> str | None:
        """The one code system of the ``code`` elements a token parameter selects, if known."""
        elements = code_elements(sp.expression, resource_type)
        if not elements:
            return None
        systems = set()
        for parent, name in elements:
            t: str | None = parent
            while t is not None and f"{t}.{name}" not in self._implicit_systems:
                t = parent_of(t)
            systems.add(self._implicit_systems.get(f"{t}.{name}") if t else None)
        return systems.pop() if len(systems) == 1 else None

    @staticmethod
    def _composite_keys(sp: SearchParam, resource_type: str) -> frozenset[str] | None:
        """Keys of a composite whose expression selects the resource itself (``Observation``
        or ``Observation | Observation.component``): its value component must be there."""
        keys: set[str] = set()
        value_expr = sp.components[-1][1]
        for branch in split_branches(sp.expression):
            if branch == resource_type:
                text = " | ".join(f"{resource_type}.{b}" for b in split_branches(value_expr))
            else:
                text = branch
            got = required_keys(text, resource_type)
            if got is None:
                return None
            keys |= got
        return frozenset(keys)

    def plan_index(self, resource_type: str) -> tuple[dict[str, tuple[int, ...]], frozenset[int]]:
        """For :meth:`plan`: top-level key -> plans needing it, and plans always run."""
        if resource_type not in self._plan_index:
            self.plan(resource_type)
        return self._plan_index[resource_type]

    def compile_stats(self) -> dict[str, Any]:
        """Survey: how many (type, code) entries compile to closures and which fall back."""
        entries = [sp for t in RESOURCE_TYPES for sp in self._by_type.get(t, {}).values()]
        entries += list(self._resource_level.values())
        for t in RESOURCE_TYPES:
            self.plan(t)
        fallback = [sp for sp in entries if sp.expression in self._fallbacks]
        return {
            "params": len(entries),
            "compiled": len(entries) - len(fallback),
            "fallback": len(fallback),
            "none": self._no_expression,
            "fallback_list": [f"{sp.base}.{sp.code}: {sp.expression}" for sp in fallback],
        }


def _compact_components(d: dict[str, Any]) -> dict[str, Any]:
    comps = d.get("component")
    if comps and isinstance(comps[0], dict):
        return {**d, "component": [[c["definition"], c["expression"]] for c in comps]}
    return d


def _read(name: str) -> Any:
    with gzip.open(GENERATED / name, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def load_registry(extra: list[dict[str, Any]] | None = None) -> Registry:
    """Build a registry from the generated tables (use :func:`default_registry` to share one).

    ``extra``: custom SearchParameter resources added after (and overriding) the R4 ones.
    """
    table = _read("search_parameters.json.gz")
    params = table["params"] + list(extra or ())
    comp = _read("compartment_patient.json.gz")["compartment"]
    patient = {r["code"]: list(r.get("param", ())) for r in comp["resource"]}
    return Registry(params, {comp["code"]: patient}, table.get("implicitSystems", {}))


_DEFAULT: list[Registry] = []


def default_registry() -> Registry:
    """The process-wide registry built from the generated R4 tables (built on first use)."""
    if not _DEFAULT:
        _DEFAULT.append(load_registry())
    return _DEFAULT[0]
