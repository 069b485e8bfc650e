"""The validation walk: one pass over a parsed JSON resource against the compiled R4 tables.

A :class:`Walk` visits every property once, looks it up in the :class:`~._model.TypeDef` of
its parent, and checks JSON shape (array vs single, object vs primitive), primitive formats,
required codes, minimum cardinality, choice groups, primitive extensions (``_name``),
extension shape (ext-1), reference targets (literal, Bundle ``urn:uuid``, local ``#id``:
ref-1) and the invariants of :mod:`._invariants`. Locations are built only for complex
children and for problems, to keep the common (valid) path cheap.
"""

from __future__ import annotations

import re
from typing import Any

from healthmesh.fhir.validation._invariants import (
    bundle_findings,
    contained_findings,
    unreferenced_contained,
)
from healthmesh.fhir.validation._issues import ValidationIssue
from healthmesh.fhir.validation._model import (
    CHOICE,
    K_CODE,
    K_COMPLEX,
    K_MANY,
    K_MANY_PRIM,
    K_MATCH,
    K_PRIM,
    K_REFERENCE,
    K_TEXT,
    K_TOKEN,
    K_URI,
    Elem,
    Model,
    TypeDef,
)
from healthmesh.fhir.validation._primitives import MAX_STRING
from healthmesh.fhir.validation._references import fullurl_types, referenced_type, target_message

MAX_DEPTH = 100  # nested objects; far beyond any real resource
MAX_ISSUES = 200
_SAFE_KEY = re.compile(r"_?[A-Za-z][A-Za-z0-9_\-]{0,63}").fullmatch


class _TooMany(Exception):
    """Raised internally once MAX_ISSUES is reached."""


def _key(key: object) -> str:
    """A property name safe to put in a location (names are not values, but be careful)."""
    return key if isinstance(key, str) and _SAFE_KEY(key) else "?"


class Walk:
    """State of one ``validate`` call: the issues found and the enclosing Bundle's fullUrls."""

    __slots__ = ("bundle_urls", "element", "issues", "root", "rtypes", "types")

    def __init__(self, model: Model) -> None:
        self.issues: list[ValidationIssue] = []
        self.types = model.types
        self.rtypes = model.resource_types
        self.element = model.types["Element"]
        self.bundle_urls: dict[str, str] | None = None
        self.root: dict[Any, Any] = {}  # the resource that holds the current `contained`

    def add(self, severity: str, code: str, location: str, message: str) -> None:
        """Record one issue (stops the walk when there are too many)."""
        if len(self.issues) >= MAX_ISSUES:
            raise _TooMany
        self.issues.append(ValidationIssue(severity, code, location, message))

    # -- resources ----------------------------------------------------------------------
    def resource(self, res: Any, path: str, depth: int, contained: bool = False) -> None:
        """Validate a whole resource found at ``path`` ('' for the top level)."""
        if type(res) is not dict:
            self.add("error", "structure", path or "Resource", "a resource must be a JSON object")
            return
        rt = res.get("resourceType")
        if type(rt) is not str:
            self.add("error", "required", path or "Resource", "resourceType is missing")
            return
        if rt not in self.rtypes:
            self.add("error", "not-supported", path or "Resource", "unknown R4 resourceType")
            return
        saved, saved_root = self.bundle_urls, self.root
        path = path or rt
        if rt == "Bundle":
            self.bundle_urls = fullurl_types(res, self.rtypes)
        if not contained:
            self.root = res
        self.obj(res, self.types[rt], path, depth)
        self.bundle_urls, self.root = saved, saved_root
        if rt == "Bundle":
            bundle_types = self.types["Bundle"].elems["type"].codes
            for location, message in bundle_findings(res, path, bundle_types):
                self.add("error", "invariant", location, message)
        if contained:
            for location, message in contained_findings(res, path):
                self.add("error", "invariant", location, message)
        elif "contained" in res:
            for location, message in unreferenced_contained(res, path):
                self.add("error", "invariant", location, message)

    # -- objects ------------------------------------------------------------------------
    def obj(self, o: dict[Any, Any], td: TypeDef, path: str, depth: int) -> None:
        """Validate the properties of one JSON object of type ``td``.

        The loop accepts the common valid cases inline (one dict look-up and one or two C
        calls per property); anything unusual goes to :meth:`slow`, which finds the problem.
        """
        if not o:
            self.add("error", "required", path, "empty objects are not allowed")
            return
        if depth > MAX_DEPTH:
            self.add("error", "too-costly", path, "content is nested too deeply")
            return
        fast = td.fast
        groups: dict[str, str] | None = None
        for key, value in o.items():
            entry = fast.get(key)
            if entry is None:
                groups = self.unlisted(o, key, value, td, path, depth, groups)
                continue
            kind, aux, el = entry
            # Branches in order of frequency (Synthea); each accepts the valid common case
            # with as few calls as possible (str methods are ~3x cheaper than a regex call).
            if kind == K_MATCH:
                if type(value) is str and aux(value) is not None:
                    continue
            elif kind == K_URI:  # regex \S+ : printable and no space
                if type(value) is str and value and " " not in value and value.isprintable():
                    continue
            elif kind == K_TOKEN:  # code: single spaces between non-whitespace runs
                if (type(value) is str and value and value.isprintable()
                        and value[0] != " " and value[-1] != " " and "  " not in value):
                    continue
            elif kind == K_TEXT:
                if (type(value) is str and value and value.isprintable()
                        and not value.isspace() and len(value) <= MAX_STRING):
                    continue
            elif kind == K_MANY:
                if type(value) is list and value:
                    for i, item in enumerate(value):
                        if type(item) is dict:
                            self.obj(item, aux, f"{path}.{key}[{i}]", depth + 1)
                        else:
                            self.complex(el, item, f"{path}.{key}[{i}]", depth)
                    continue
            elif kind == K_COMPLEX:
                if type(value) is dict:
                    self.obj(value, aux, f"{path}.{key}", depth + 1)
                    continue
            elif kind == K_PRIM:
                if type(value) is not list and value is not None and aux(value) is None:
                    continue
            elif kind == K_REFERENCE:
                if type(value) is dict:
                    self.obj(value, aux, f"{path}.{key}", depth + 1)
                    self.reference(value, el.targets, f"{path}.{key}")
                    continue
            elif kind == K_CODE:
                if type(value) is str and value in aux:
                    continue
            elif kind == K_MANY_PRIM:
                if type(value) is list and value:
                    self.primitive_list(o, el, value, path)
                    continue
            elif kind >= CHOICE:
                groups = self._choice(groups, el, path, key)
            self.slow(o, el, key, value, path, depth)
        if td.finish:
            if (td.req_keys and not o.keys() >= td.req_keys) or td.req_choices:
                self.required(o, td, path)
            if td.is_extension and (groups is not None) == ("extension" in o):
                self.add("error", "invariant", path,
                         "an extension must have either a value[x] or nested extensions (ext-1)")

    def unlisted(
        self, o: dict[Any, Any], key: Any, value: Any, td: TypeDef, path: str, depth: int,
        groups: dict[str, str] | None,
    ) -> dict[str, str] | None:
        """A property that is not an element of ``td``: resourceType, ``_name`` or unknown."""
        if key == "resourceType" and td.is_resource:
            return groups
        if isinstance(key, str) and key.startswith("_"):
            base = self.primitive_extension(o, key, value, td, path, depth)
            if base is not None and base.choice is not None and base.key not in o:
                groups = self._choice(groups, base, path, key)
            return groups
        self.add("error", "structure", f"{path}.{_key(key)}", "unknown element")
        return groups

    def slow(
        self, o: dict[Any, Any], el: Elem, key: str, value: Any, path: str, depth: int
    ) -> None:
        """Full checks of one property (reached when the fast path did not accept it)."""
        if el.many:
            if type(value) is not list:
                self.add("error", "structure", f"{path}.{key}", "must be a JSON array")
            elif not value:
                self.add("error", "required", f"{path}.{key}", "empty arrays are not allowed")
            elif el.prim is not None:
                self.primitive_list(o, el, value, path)
            else:
                for i, item in enumerate(value):
                    self.complex(el, item, f"{path}.{key}[{i}]", depth)
        elif type(value) is list:
            self.add("error", "structure", f"{path}.{key}", "must not be an array")
        elif value is None:
            self.add("error", "structure", f"{path}.{key}", "null values are not allowed")
        elif el.prim is not None:
            problem = el.prim(value)
            if problem is not None:
                self.add(problem[0], problem[1], f"{path}.{key}", problem[2])
                if problem[0] == "error":
                    return
            if el.codes is not None and value not in el.codes:
                self._bad_code(el, f"{path}.{key}")
        else:
            self.complex(el, value, f"{path}.{key}", depth)

    def required(self, o: dict[Any, Any], td: TypeDef, path: str) -> None:
        """Report required elements (or required choice groups) that are missing."""
        for display, keys in td.required:
            for k in keys:
                if k in o or "_" + k in o:
                    break
            else:
                self.add("error", "required", f"{path}.{display}", "required element is missing")

    def _choice(
        self, groups: dict[str, str] | None, el: Elem, path: str, key: str
    ) -> dict[str, str]:
        """Track choice groups; two properties of one group (valueX and valueY) are an error."""
        assert el.choice is not None
        if groups is None:
            return {el.choice: key}
        if el.choice in groups and groups[el.choice] != key.lstrip("_"):
            self.add("error", "structure", f"{path}.{key}",
                     f"only one {el.choice}[x] element is allowed")
        groups[el.choice] = key.lstrip("_")
        return groups

    def complex(self, el: Elem, value: Any, path: str, depth: int) -> None:
        """Validate one value of a complex-typed (or resource-typed) element."""
        if el.is_resource:
            self.resource(value, path, depth + 1, el.key == "contained")
            return
        if type(value) is not dict:
            self.add("error", "structure", path, "must be a JSON object")
            return
        assert el.typedef is not None
        self.obj(value, el.typedef, path, depth + 1)
        if el.type_name == "Reference":
            self.reference(value, el.targets, path)
        elif el.concepts is not None:
            self.concept(value, el.concepts, el.code_set, path)

    # -- primitives ---------------------------------------------------------------------
    def primitive_list(self, o: dict[Any, Any], el: Elem, value: list[Any], path: str) -> None:
        """Validate an array of primitives (nulls allowed where ``_name`` has content)."""
        prim, codes, key = el.prim, el.codes, el.key
        assert prim is not None
        for i, item in enumerate(value):
            if item is None:
                ext = o.get("_" + key)
                if not (type(ext) is list and i < len(ext) and ext[i] is not None):
                    self.add("error", "structure", f"{path}.{key}[{i}]",
                             "null is only allowed where _" + key + " has an extension")
                continue
            problem = prim(item)
            if problem is not None:
                self.add(problem[0], problem[1], f"{path}.{key}[{i}]", problem[2])
                if problem[0] == "error":
                    continue
            if codes is not None and item not in codes:
                self._bad_code(el, f"{path}.{key}[{i}]")

    def primitive_extension(
        self, o: dict[Any, Any], key: str, value: Any, td: TypeDef, path: str, depth: int
    ) -> Elem | None:
        """Validate ``_name`` (id/extensions of a primitive); return the primitive's Elem."""
        el = td.elems.get(key[1:])
        loc = f"{path}.{_key(key)}"
        if el is None or el.prim is None:
            self.add("error", "structure", loc, "unknown element")
            return None
        if not el.many:
            if type(value) is not dict:
                self.add("error", "structure", loc, "must be a JSON object")
            else:
                self.obj(value, self.element, loc, depth + 1)
            return el
        if type(value) is not list:
            self.add("error", "structure", loc, "must be a JSON array")
            return el
        if not value:
            self.add("error", "required", loc, "empty arrays are not allowed")
            return el
        main = o.get(el.key)
        if type(main) is list and len(main) != len(value):
            self.add("error", "structure", loc, f"must have the same length as {el.key}")
        for i, item in enumerate(value):
            if item is None:
                if type(main) is not list or i >= len(main) or main[i] is None:
                    self.add("error", "structure", f"{loc}[{i}]",
                             "null here needs a value at the same index of " + el.key)
            elif type(item) is not dict:
                self.add("error", "structure", f"{loc}[{i}]", "must be a JSON object")
            else:
                self.obj(item, self.element, f"{loc}[{i}]", depth + 1)
        return el

    def _bad_code(self, el: Elem, location: str) -> None:
        self.add("error", "code-invalid", location,
                 f"code is not in the required value set {el.code_set}")

    def concept(
        self, value: dict[Any, Any], concepts: frozenset[str], code_set: str, path: str
    ) -> None:
        """A CodeableConcept bound ``required``: one coding must be from the value set."""
        codings = value.get("coding")
        if type(codings) is list:
            for c in codings:
                if type(c) is dict and f"{c.get('system')}|{c.get('code')}" in concepts:
                    return
        self.add("error", "code-invalid", path,
                 f"no coding is from the required value set {code_set}")

    # -- references ---------------------------------------------------------------------
    def reference(self, value: dict[Any, Any], targets: frozenset[str] | None, path: str) -> None:
        """Check a Reference's literal reference and ``type`` against the allowed targets.

        ``type`` must also agree with the type of a literal FHIR reference, when both are given.
        """
        ref = value.get("reference")
        literal: str | None = None
        if type(ref) is str and ref.startswith("#"):
            self.local_reference(ref, targets, path)
        elif type(ref) is str and ref:
            result = referenced_type(ref, self.rtypes, self.bundle_urls)
            literal = result.type_name
            if result.error is not None:
                self.add("error", "value", f"{path}.reference", result.error)
            elif targets is not None and literal is not None and literal not in targets:
                self.add("error", "invalid", f"{path}.reference", target_message(literal, targets))
        rtype = value.get("type")
        if type(rtype) is str and rtype in self.rtypes:
            if targets is not None and rtype not in targets:
                self.add("error", "invalid", f"{path}.type", target_message(rtype, targets))
            elif literal is not None and literal != rtype:
                self.add("error", "invalid", f"{path}.type",
                         f"type disagrees with the reference, which points to a {literal}")

    def local_reference(self, ref: str, targets: frozenset[str] | None, path: str) -> None:
        """``#id`` must name a resource in the root's ``contained`` (ref-1); ``#`` the root."""
        found: str | None = None
        if ref == "#":
            found = self.root.get("resourceType")
        else:
            contained = self.root.get("contained")
            if type(contained) is list:
                for c in contained:
                    if type(c) is dict and c.get("id") == ref[1:]:
                        found = c.get("resourceType")
                        break
        if type(found) is not str:
            self.add("error", "invariant", f"{path}.reference",
                     "local reference does not match a contained resource (ref-1)")
        elif targets is not None and found in self.rtypes and found not in targets:
            self.add("error", "invalid", f"{path}.reference", target_message(found, targets))


def walk(model: Model, resource: object) -> list[ValidationIssue]:
    """Validate ``resource``; return all issues (see ``healthmesh.fhir.validation.validate``)."""
    w = Walk(model)
    try:
        w.resource(resource, "", 0)
    except _TooMany:
        w.issues.append(ValidationIssue("error", "too-costly", "", "too many issues; stopped"))
    except RecursionError:
        w.issues.append(ValidationIssue("error", "too-costly", "", "content is nested too deeply"))
    return w.issues
