"""The compiled closures select exactly the elements fhirpathpy selects, for every parameter
of every official R4 example and of the Synthea bundles (composite components included)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from healthmesh.fhir.search import default_registry
from healthmesh.fhir.search.compiler import evaluate
from healthmesh.fhir.search.reference import evaluate_element, evaluate_resource


def _canon(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, default=lambda d: float(d) if isinstance(d, Decimal) else str(d)
    )


def mismatches(resource: dict[str, Any]) -> tuple[int, list[str]]:
    """(number of comparisons, descriptions of the differing ones) for one resource."""
    reg = default_registry()
    rtype = resource["resourceType"]
    checks, bad = 0, []
    for plan in reg.plan(rtype):
        sp = plan.param
        mine = evaluate(plan.fn, resource)
        ref = evaluate_resource(sp.expression, resource)
        checks += 1
        if {_canon(v) for v, _ in mine} != {_canon(v) for v in ref}:
            bad.append(f"{rtype}.{sp.code}: {sp.expression}")
        if sp.type != "composite":
            continue
        for value, vtype in mine:
            assert vtype is not None
            for (ccode, cexpr), (_, cfn) in zip(sp.components, plan.components, strict=True):
                got = {_canon(v) for v, _ in cfn([(value, vtype)], resource)}
                want = {_canon(v) for v in evaluate_element(cexpr, value, vtype, resource)}
                checks += 1
                if got != want:
                    bad.append(f"{rtype}.{sp.code}[{ccode}]: {cexpr}")
    return checks, bad


def example_resources(shared_data: Path) -> Iterator[dict[str, Any]]:
    for path in sorted((shared_data / "fhir" / "examples").glob("*/*.json")):
        res = json.loads(path.read_text())
        if "resourceType" not in res:
            continue
        yield res
        if res["resourceType"] == "Bundle":
            for entry in res.get("entry", ()):
                if isinstance(entry.get("resource"), dict):
                    yield entry["resource"]


def synthea_resources(shared_data: Path, limit: int | None) -> Iterator[dict[str, Any]]:
    for path in sorted((shared_data / "synthea").glob("*.json.gz"))[:limit]:
        with gzip.open(path, "rt") as fh:
            bundle = json.load(fh)
        for entry in bundle["entry"]:
            yield entry["resource"]


def _run(resources: Iterator[dict[str, Any]]) -> tuple[int, int, list[str]]:
    n, checks, bad = 0, 0, []
    for res in resources:
        c, b = mismatches(res)
        n, checks = n + 1, checks + c
        bad.extend(b)
    return n, checks, bad


def test_compiled_equals_fhirpathpy_on_all_examples(shared_data: Path) -> None:
    n, checks, bad = _run(example_resources(shared_data))
    assert n > 900 and checks > 40_000
    assert bad == []


def shape(value: Any, key: str | None = None) -> Any:
    """The structure of a resource with the values the expressions cannot see blanked out.

    Kept: booleans, and the strings ``where(...)``/``resolve()`` look at (``system``, ``url``,
    ``type``, ``resourceType``, the type part of ``reference``).
    """
    if isinstance(value, dict):
        return tuple(sorted((k, shape(v, k)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(shape(v, key) for v in value)
    if isinstance(value, str):
        if key == "reference":
            return value.split("/")[0].split(":")[0]
        return value if key in ("system", "url", "type", "resourceType") else "s"
    return value if isinstance(value, bool) else "n"


def test_compiled_equals_fhirpathpy_on_every_synthea_shape(shared_data: Path) -> None:
    """All 60 bundles, one resource per distinct shape (the slow test runs every one)."""
    seen: dict[Any, dict[str, Any]] = {}
    for res in synthea_resources(shared_data, None):
        seen.setdefault(shape(res), res)
    n, _, bad = _run(iter(seen.values()))
    assert n > 100
    assert bad == []


@pytest.mark.slow
def test_compiled_equals_fhirpathpy_on_all_synthea(shared_data: Path) -> None:
    n, _, bad = _run(synthea_resources(shared_data, None))
    assert n == 10_276
    assert bad == []


def test_mismatch_detector_can_fail() -> None:
    """The oracle comparison notices a wrong closure (guards against a vacuous test)."""
    reg = default_registry()
    plan = next(p for p in reg.plan("Patient") if p.param.code == "family")
    pat = {"resourceType": "Patient", "name": [{"family": "A"}, {"family": "B"}]}
    wrong = plan.fn([(pat, "Patient")], pat)[:1]
    ref = evaluate_resource(plan.param.expression, pat)
    assert {_canon(v) for v, _ in wrong} != {_canon(v) for v in ref}


def test_skipping_by_top_level_keys_changes_no_rows(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """extract() skips parameters whose top-level keys are absent; running every parameter
    must give the same rows (examples + one Synthea bundle)."""
    from healthmesh.fhir.search import extract, load_registry

    fast, full = load_registry(), load_registry()

    def run_all(rtype: str) -> tuple[dict[str, tuple[int, ...]], frozenset[int]]:
        return {}, frozenset(range(len(full.plan(rtype))))

    monkeypatch.setattr(full, "plan_index", run_all)
    resources = [*example_resources(shared_data), *synthea_resources(shared_data, 1)]
    skipped = 0
    for res in resources:
        a, b = extract(res, fast), extract(res, full)
        assert a == b, res["resourceType"]
        by_key, always = fast.plan_index(res["resourceType"])
        chosen = set(always).union(*(by_key.get(k, ()) for k in res))
        skipped += len(fast.plan(res["resourceType"])) - len(chosen)
    assert skipped > 10 * len(resources)  # the skip does real work
