"""Compiled R4 element tables, built once from the generated ``r4_structures.json.gz``.

Every resource type, complex datatype and backbone element becomes a :class:`TypeDef` whose
``elems`` maps each JSON property name (choice elements expanded: ``valueQuantity``,
``valueString`` ...) to an :class:`Elem` with its cardinality, its primitive checker or child
:class:`TypeDef`, its allowed reference targets and its required codes. Validation then needs
only dictionary look-ups: no FHIRPath, no StructureDefinition walking per call.
"""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources
from typing import Any

from healthmesh.fhir.validation._primitives import Checker, build_checkers, build_fast

TABLE = "r4_structures.json.gz"

# Dispatch kinds of the walker's fast path (see _walker.Walk.obj); CHOICE is a flag added on.
(K_TEXT, K_MATCH, K_CODE, K_PRIM, K_COMPLEX, K_REFERENCE, K_MANY_PRIM, K_MANY, K_MANY_REF,
 K_RESOURCE, K_URI, K_TOKEN, K_CONCEPT) = range(13)
CHOICE = 16  # choice elements (valueX) take the full path, which also tracks their group


class Elem:
    """One JSON property of a type (a choice element yields one Elem per allowed type)."""

    __slots__ = (
        "choice",
        "code_set",
        "codes",
        "concepts",
        "is_resource",
        "key",
        "many",
        "min",
        "prim",
        "targets",
        "type_name",
        "typedef",
    )

    def __init__(self, key: str, min_: int, many: bool, type_name: str) -> None:
        self.key = key
        self.min = min_
        self.many = many
        self.type_name = type_name
        self.choice: str | None = None  # base name of the choice group, e.g. "value"
        self.prim: Checker | None = None
        self.typedef: TypeDef | None = None
        self.is_resource = False  # the element holds a whole resource (contained, entry)
        self.targets: frozenset[str] | None = None  # Reference targets; None = any
        self.codes: frozenset[str] | None = None  # required-binding codes
        self.concepts: frozenset[str] | None = None  # "system|code" of a bound CodeableConcept
        self.code_set = ""  # canonical URL of that value set


class TypeDef:
    """A resource, datatype or backbone element and its properties."""

    __slots__ = (
        "choices",
        "elems",
        "fast",
        "finish",
        "is_extension",
        "is_resource",
        "name",
        "req_choices",
        "req_keys",
        "required",
    )

    def __init__(self, name: str, is_resource: bool) -> None:
        self.name = name
        self.is_resource = is_resource
        self.is_extension = name == "Extension"
        self.elems: dict[str, Elem] = {}
        self.required: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (display, keys)
        self.choices: dict[str, tuple[str, ...]] = {}  # base -> keys of the group
        self.fast: dict[str, tuple[int, Any, Elem]] = {}  # key -> (kind, aux, elem)
        self.req_keys: frozenset[str] = frozenset()  # required non-choice keys
        self.req_choices: tuple[tuple[str, ...], ...] = ()  # key groups of required choices
        self.finish = False  # whether objects of this type need post-checks (required, ext-1)


class Model:
    """All compiled R4 definitions."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.header: dict[str, Any] = table["header"]
        self.resource_types = frozenset(table["resourceTypes"])
        self.checkers = build_checkers(table["primitives"])
        self.fast_match = build_fast(table["primitives"])
        value_sets = {url: frozenset(codes) for url, codes in table["valueSets"].items()}
        value_sets.update(
            (url, frozenset(pairs)) for url, pairs in table.get("conceptSets", {}).items()
        )
        self.types: dict[str, TypeDef] = {}
        for name, spec in table["types"].items():
            self.types[name] = TypeDef(name, spec["kind"] == "resource")
        for name, spec in table["types"].items():
            self._compile(self.types[name], spec["elements"], value_sets)

    def _compile(
        self, td: TypeDef, elements: list[list[Any]], value_sets: dict[str, frozenset[str]]
    ) -> None:
        required: list[tuple[str, tuple[str, ...]]] = []
        for raw in elements:
            name, min_, max_, types = raw[0], raw[1], raw[2], raw[3]
            flags: dict[str, Any] = raw[4] if len(raw) > 4 else {}
            many = max_ != 1
            keys: list[str] = []
            for t in types:
                type_name, targets = (t[0], t[1]) if isinstance(t, list) else (t, None)
                key = name + type_name[0].upper() + type_name[1:] if "x" in flags else name
                el = Elem(key, min_, many, type_name)
                if "x" in flags:
                    el.choice = name
                if type_name in self.checkers:
                    el.prim = self.checkers[type_name]
                elif type_name == "Resource":
                    el.is_resource = True
                else:
                    el.typedef = self.types[type_name]
                if targets is not None and "Resource" not in targets:
                    el.targets = frozenset(targets)
                if "b" in flags:
                    el.codes = value_sets[flags["b"]]
                    el.code_set = flags["b"]
                if "bc" in flags:
                    el.concepts = value_sets[flags["bc"]]
                    el.code_set = flags["bc"]
                td.elems[key] = el
                keys.append(key)
            if "x" in flags:
                td.choices[name] = tuple(keys)
            if min_ > 0:
                required.append((name + "[x]" if "x" in flags else name, tuple(keys)))
        td.required = tuple(required)
        td.req_keys = frozenset(keys[0] for display, keys in required if len(keys) == 1)
        td.req_choices = tuple(keys for display, keys in required if len(keys) > 1)
        td.fast = {key: self._dispatch(el) for key, el in td.elems.items()}
        td.finish = bool(td.req_keys or td.req_choices or td.is_extension)

    def _dispatch(self, el: Elem) -> tuple[int, Any, Elem]:
        """The walker's fast-path kind and helper object for one element."""
        kind: int
        aux: Any = None
        if el.is_resource:
            kind = K_RESOURCE
        elif el.concepts is not None:
            kind = K_CONCEPT  # rare: always the full path, which checks the codings
        elif el.many:
            if el.prim is not None:
                kind, aux = K_MANY_PRIM, el.prim
            else:
                kind = K_MANY_REF if el.type_name == "Reference" else K_MANY
                aux = el.typedef
        elif el.typedef is not None:
            kind = K_REFERENCE if el.type_name == "Reference" else K_COMPLEX
            aux = el.typedef
        elif el.codes is not None:
            kind, aux = K_CODE, el.codes
        elif el.type_name in ("string", "markdown"):
            kind = K_TEXT
        elif el.type_name in ("uri", "url", "canonical"):
            kind, aux = K_URI, el.prim
        elif el.type_name == "code":
            kind, aux = K_TOKEN, el.prim
        elif el.type_name in self.fast_match:
            kind, aux = K_MATCH, self.fast_match[el.type_name]
        else:
            kind, aux = K_PRIM, el.prim
        return (kind + CHOICE if el.choice is not None else kind), aux, el


@functools.cache
def model() -> Model:
    """The compiled R4 model (loaded on first use, then shared; it is read-only)."""
    ref = resources.files("healthmesh.fhir").joinpath("_generated", TABLE)
    with ref.open("rb") as raw, gzip.open(raw) as fh:
        table = json.load(fh)
    return Model(table)
