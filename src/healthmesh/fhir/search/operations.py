"""FHIRPath functions and operators for the compiled closures (see :mod:`.compiler`).

Each builder returns a closure ``fn(items, root) -> items`` over items ``(json value, FHIR
type)``. Boolean results are ``[(True, "boolean")]``/``[(False, "boolean")]``; an empty list is
FHIRPath's empty (unknown) in the three-valued logic of ``and``/``or``/``xor``/``implies``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from healthmesh.fhir.search.fhirpath import Node, Unsupported
from healthmesh.fhir.search.model import RESOURCE_TYPES, is_a

Item = tuple[Any, str | None]
Items = list[Item]
Closure = Callable[[Items, dict[str, Any]], Items]
CompileFn = Callable[[Node], Closure]

TRUE: Items = [(True, "boolean")]
FALSE: Items = [(False, "boolean")]
#: Functions that give empty on empty input (a chain may stop early before them).
EMPTY_ON_EMPTY = {"where", "as", "ofType", "is", "first", "last", "tail", "extension", "resolve"}


def reference_type(ref: dict[str, Any], root: dict[str, Any]) -> str | None:
    """The resource type a Reference points to, read statically (see module docstring)."""
    text = ref.get("reference")
    if not isinstance(text, str) or not text:
        return None
    if text.startswith("#"):
        for res in root.get("contained") or ():
            if isinstance(res, dict) and res.get("id") == text[1:]:
                return res.get("resourceType")
        return None
    parts = text.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] in RESOURCE_TYPES:
        return parts[-2]
    return None


def literal_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    return "string"


def type_op(op: str, type_name: str, inner: Closure) -> Closure:
    if op == "as":

        def as_(items: Items, root: dict[str, Any]) -> Items:
            return [it for it in inner(items, root) if is_a(it[1], type_name)]

        return as_

    def is_(items: Items, root: dict[str, Any]) -> Items:
        got = inner(items, root)
        if not got:
            return []
        return TRUE if is_a(got[0][1], type_name) else FALSE

    return is_


def _truth(items: Items) -> bool | None:
    if not items:
        return None
    value = items[0][0]
    return value if isinstance(value, bool) else True


def operator(op: str, left: Closure, right: Closure) -> Closure:
    if op == "|":
        return lambda items, root: left(items, root) + right(items, root)
    if op in ("=", "!="):
        want = op == "="

        def equals(items: Items, root: dict[str, Any]) -> Items:
            lv, rv = left(items, root), right(items, root)
            if not lv or not rv:
                return []
            same = [v for v, _ in lv] == [v for v, _ in rv]
            return TRUE if same == want else FALSE

        return equals
    if op in ("and", "or", "xor", "implies"):

        def logic(items: Items, root: dict[str, Any]) -> Items:
            a, b = _truth(left(items, root)), _truth(right(items, root))
            result = _three_valued(op, a, b)
            return [] if result is None else (TRUE if result else FALSE)

        return logic
    raise Unsupported(f"operator {op}")


def _three_valued(op: str, a: bool | None, b: bool | None) -> bool | None:
    if op == "and":
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if op == "or":
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    if op == "implies":
        if a is False or b is True:
            return True
        return None if a is None or b is None else False
    return None if a is None or b is None else a != b  # xor


def function(name: str, args: tuple[Node, ...], compile_fn: CompileFn) -> Closure:
    """The closure of function ``name`` (``compile_fn`` compiles its expression arguments)."""
    if name in ("as", "ofType", "is"):
        if len(args) != 1 or args[0][0] != "typename":
            raise Unsupported(f"{name}() needs a type")
        return type_op("is" if name == "is" else "as", args[0][1], lambda items, root: items)
    if name == "where":
        if len(args) != 1:
            raise Unsupported("where() arity")
        cond = compile_fn(args[0])
        return lambda items, root: [it for it in items if _truth(cond([it], root)) is True]
    if name == "exists":
        if not args:
            return lambda items, root: TRUE if items else FALSE
        cond = compile_fn(args[0])
        return lambda items, root: (
            TRUE if any(_truth(cond([it], root)) is True for it in items) else FALSE
        )
    if args and name not in ("extension",):
        raise Unsupported(f"{name}() with arguments")
    if name == "extension":
        return _extension(args)
    simple: dict[str, Closure] = {
        "empty": lambda items, root: FALSE if items else TRUE,
        "first": lambda items, root: items[:1],
        "last": lambda items, root: items[-1:],
        "tail": lambda items, root: items[1:],
        "count": lambda items, root: [(len(items), "integer")],
        "not": lambda items, root: (
            [] if _truth(items) is None else (FALSE if _truth(items) else TRUE)
        ),
        "resolve": _resolve,
    }
    if name not in simple:
        raise Unsupported(f"function {name}()")
    return simple[name]


def _extension(args: tuple[Node, ...]) -> Closure:
    if len(args) != 1 or args[0][0] != "lit" or not isinstance(args[0][1], str):
        raise Unsupported("extension() needs a literal url")
    url = args[0][1]

    def ext(items: Items, root: dict[str, Any]) -> Items:
        out: Items = []
        for value, _ in items:
            if type(value) is dict:
                for e in value.get("extension") or ():
                    if type(e) is dict and e.get("url") == url:
                        out.append((e, "Extension"))
        return out

    return ext


def _resolve(items: Items, root: dict[str, Any]) -> Items:
    out: Items = []
    for value, vtype in items:
        if type(value) is dict and vtype in ("Reference", None):
            rtype = reference_type(value, root)
            if rtype is not None:
                out.append(({"resourceType": rtype}, rtype))
        elif type(value) is dict and "resourceType" in value:
            out.append((value, value["resourceType"]))
    return out
