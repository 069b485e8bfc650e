"""fhirpathpy as the reference evaluator: the fallback for expressions the compiler does not
cover, and the oracle the compiled closures are tested and benchmarked against.

Differences from plain fhirpathpy, applied here so both sides mean the same thing:

- ``resolve()`` (not implemented by fhirpathpy) returns a stub ``{"resourceType": T}`` with the
  type read from the reference string, as :func:`.compiler.reference_type` does;
- a leading ``Resource.``/``DomainResource.`` is replaced by the concrete type (fhirpathpy does
  not treat ``Resource`` as a super type of ``Patient``);
- ``as(DateTime)``/``as(String)`` (System type names, used by two R4 composites) are read as
  the FHIR primitives ``dateTime``/``string``; fhirpathpy matches nothing there;
- ``(path as T)`` is read as ``(path.ofType(T))``: the same on one element, and what the
  definitions mean on several (``useContext.value``, ``component.value``), where fhirpathpy
  raises "Expected singleton".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fhirpathpy import compile as fp_compile
from fhirpathpy import evaluate as fp_evaluate
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from healthmesh.fhir.search.compiler import reference_type

_R4 = models["r4"]
_AS_OPERATOR = re.compile(r"\(([A-Za-z][\w.]*) as (\w+)\)")
_SYSTEM_AS = re.compile(r"\b(as|ofType|is)\((DateTime|String)\)")


def _stub_resolver(root: dict[str, Any]) -> Callable[[list[Any]], list[Any]]:
    def resolve(refs: list[Any]) -> list[Any]:
        out = []
        for r in refs:
            if isinstance(r, dict) and (t := reference_type(r, root)) is not None:
                out.append(ResourceNode.create_node({"resourceType": t}))  # type: ignore[no-untyped-call]
        return out

    return resolve


def rewrite(expression: str, resource_type: str | None = None) -> str:
    """Apply the reading differences listed in the module docstring to ``expression``."""
    text = _SYSTEM_AS.sub(
        lambda m: f"{m.group(1)}({m.group(2)[0].lower()}{m.group(2)[1:]})", expression
    )
    text = _AS_OPERATOR.sub(r"(\1.ofType(\2))", text)
    if resource_type:
        text = re.sub(r"(?<![\w.%])(DomainResource|Resource)\.", resource_type + ".", text)
    return text


@lru_cache(maxsize=4096)
def _compiled(expression: str) -> Callable[..., list[Any]]:
    return fp_compile(expression, _R4)


def _options(root: dict[str, Any]) -> dict[str, Any]:
    return {"userInvocationTable": {"resolve": {"fn": _stub_resolver(root), "arity": {0: []}}}}


def evaluate_resource(expression: str, resource: dict[str, Any]) -> list[Any]:
    """Evaluate a search expression on a whole resource with fhirpathpy."""
    text = rewrite(expression, resource.get("resourceType"))
    if "resolve()" in text:  # the invocation table is per call, so no cached compile
        return list(fp_evaluate(resource, text, {"resource": resource}, _R4, _options(resource)))
    return list(_compiled(text)(resource, {"resource": resource}))


def evaluate_element(
    expression: str, element: Any, type_name: str | None, root: dict[str, Any]
) -> list[Any]:
    """Evaluate a relative expression (composite component) on one element of ``type_name``
    (None: untyped, so choice elements such as ``value[x]`` cannot be resolved)."""
    text = rewrite(expression)
    path: str | dict[str, str] = (
        text if type_name is None else {"expression": text, "base": type_name}
    )
    return list(fp_evaluate(element, path, {"resource": root}, _R4, _options(root)))
