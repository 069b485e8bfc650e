"""The generator script: value-set expansion rules, and (slow) byte-identical regeneration."""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_r4_structures.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_r4_structures", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_r4_structures"] = module
    spec.loader.exec_module(module)
    return module


def _resolver(gen: ModuleType) -> Any:
    code_systems = [
        {
            "url": "http://cs/a",
            "content": "complete",
            "concept": [{"code": "x", "concept": [{"code": "x1"}]}, {"code": "y"}],
        },
        {"url": "http://cs/frag", "content": "fragment", "concept": [{"code": "f"}]},
    ]
    value_sets = [
        {"url": "http://vs/whole", "compose": {"include": [{"system": "http://cs/a"}]}},
        {
            "url": "http://vs/listed",
            "compose": {"include": [{"system": "http://cs/b", "concept": [{"code": "p"}]}]},
        },
        {
            "url": "http://vs/filtered",
            "compose": {
                "include": [
                    {
                        "system": "http://cs/a",
                        "filter": [{"property": "concept", "op": "is-a", "value": "x"}],
                    }
                ]
            },
        },
        {"url": "http://vs/fragment", "compose": {"include": [{"system": "http://cs/frag"}]}},
        {
            "url": "http://vs/minus",
            "compose": {
                "include": [{"valueSet": ["http://vs/whole"]}],
                "exclude": [{"system": "http://cs/a", "concept": [{"code": "y"}]}],
            },
        },
    ]
    return gen.ValueSetResolver(value_sets, code_systems)


def test_value_set_expansion_rules(gen: ModuleType) -> None:
    r = _resolver(gen)
    a = "http://cs/a"
    assert r.expand("http://vs/whole|4.0.1") == {(a, "x"), (a, "x1"), (a, "y")}
    assert r.expand("http://vs/listed") == {("http://cs/b", "p")}
    assert r.expand("http://vs/minus") == {(a, "x"), (a, "x1")}
    # not enumerable: filters, incomplete code systems, unknown value sets
    for url in ("http://vs/filtered", "http://vs/fragment", "http://vs/none"):
        assert r.expand(url) is None


def test_type_codes_resolve_fhirpath_system_types(gen: ModuleType) -> None:
    ext = [{"url": gen.FHIR_TYPE_EXT, "valueUrl": "uri"}]
    assert (
        gen.type_code({"code": "http://hl7.org/fhirpath/System.String", "extension": ext}) == "uri"
    )
    assert gen.type_code({"code": "HumanName"}) == "HumanName"
    assert gen.ref_targets(
        {
            "code": "Reference",
            "targetProfile": [
                "http://hl7.org/fhir/StructureDefinition/Patient",
                "http://hl7.org/fhir/StructureDefinition/Group",
            ],
        }
    ) == ["Group", "Patient"]


@pytest.mark.slow
def test_regeneration_is_byte_identical(gen: ModuleType, tmp_path: Path) -> None:
    """Fetch the npm package again and regenerate: the committed table must not drift."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    try:
        pkg = gen.fetch_package(tmp_path)
    except subprocess.CalledProcessError:
        pytest.skip("npm registry not reachable")
    out = tmp_path / "r4.json.gz"
    assert gen.main(["--package-dir", str(pkg), "--output", str(out)]) == 0
    committed = ROOT / "src" / "healthmesh" / "fhir" / "_generated" / "r4_structures.json.gz"
    assert out.read_bytes() == committed.read_bytes()
    table = json.loads(gzip.decompress(out.read_bytes()))
    assert len(table["resourceTypes"]) == 146
