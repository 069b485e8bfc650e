"""Generate the compact FHIR R4 (4.0.1) structure table used by ``healthmesh.fhir.validation``.

The official R4 StructureDefinitions (with snapshots), ValueSets and CodeSystems ship in the
npm package ``hl7.fhir.r4.examples@4.0.1`` (HL7 Inc, CC0-1.0). This script fetches it with
``npm pack`` into a temporary directory (or reads an already unpacked ``package/`` folder given
with ``--package-dir``) and writes ``src/healthmesh/fhir/_generated/r4_structures.json.gz``:

- ``header``: package name, version, licence, author, generator;
- ``resourceTypes``: every concrete R4 resource type;
- ``primitives``: each primitive type with its JSON kind and its official regex;
- ``types``: every resource type, complex datatype and backbone element (keyed by its path,
  e.g. ``Patient.contact``) with its child elements as
  ``[name, min, max, types, flags]`` where ``max`` is -1 for ``*``, ``types`` is a list of
  type names or ``[type, [target resource types]]`` for ``Reference``, and ``flags`` holds
  ``x`` (choice element), ``b`` / ``bc`` (required-binding value-set key);
- ``valueSets``: for each required binding on a ``code`` element whose value set can be
  expanded from the package (whole complete code systems or enumerated concepts, no filters),
  the sorted list of codes;
- ``conceptSets``: the same for required bindings on ``CodeableConcept`` elements, as sorted
  ``system|code`` strings.

Run: ``.venv/bin/python scripts/gen_r4_structures.py`` (needs ``npm`` and network access to the
npm registry, or ``--package-dir``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "hl7.fhir.r4.examples"
VERSION = "4.0.1"
ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "src" / "healthmesh" / "fhir" / "_generated" / "r4_structures.json.gz"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"

Json = dict[str, Any]


def fetch_package(workdir: Path) -> Path:
    """Download the package tarball with ``npm pack`` and unpack it; return ``package/``."""
    subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tarball = next(workdir.glob("*.tgz"))
    with tarfile.open(tarball) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package"


def load_kind(pkg: Path, prefix: str) -> list[Json]:
    """Every JSON file named ``<prefix>-*.json`` in the package."""
    out = []
    for path in sorted(pkg.glob(f"{prefix}-*.json")):
        out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def type_code(t: Json) -> str:
    """The FHIR type of an ElementDefinition.type entry (resolving System.* codes)."""
    code: str = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext["url"] == FHIR_TYPE_EXT:
                return str(ext["valueUrl"])
        return "string"
    return code


def ref_targets(t: Json) -> list[str]:
    """Resource types named by a Reference's targetProfile (``Resource`` = any)."""
    return sorted({p.removeprefix(SD_PREFIX) for p in t.get("targetProfile", [])})


class ValueSetResolver:
    """Expand value sets whose content is fully enumerable from the package."""

    def __init__(self, value_sets: list[Json], code_systems: list[Json]) -> None:
        self.vs = {v["url"]: v for v in value_sets}
        self.cs = {c["url"]: c for c in code_systems if c.get("content") == "complete"}

    @staticmethod
    def _all_codes(concepts: list[Json]) -> set[str]:
        codes: set[str] = set()
        for c in concepts:
            codes.add(c["code"])
            codes |= ValueSetResolver._all_codes(c.get("concept", []))
        return codes

    def _include(self, inc: Json) -> set[tuple[str, str]] | None:
        if inc.get("filter"):
            return None
        codes: set[tuple[str, str]] | None = None
        if "system" in inc:
            system = inc["system"]
            if "concept" in inc:
                codes = {(system, c["code"]) for c in inc["concept"]}
            else:
                cs = self.cs.get(system)
                if cs is None:
                    return None
                codes = {(system, c) for c in self._all_codes(cs.get("concept", []))}
        for vs_url in inc.get("valueSet", []):
            sub = self.expand(vs_url)
            if sub is None:
                return None
            codes = sub if codes is None else codes & sub
        return codes

    def expand(self, url: str) -> set[tuple[str, str]] | None:
        """The ``(system, code)`` pairs of a value set, or ``None`` if not enumerable."""
        vs = self.vs.get(url.split("|", 1)[0])
        if vs is None or "compose" not in vs:
            return None
        codes: set[tuple[str, str]] = set()
        for inc in vs["compose"].get("include", []):
            got = self._include(inc)
            if got is None:
                return None
            codes |= got
        for exc in vs["compose"].get("exclude", []):
            got = self._include(exc)
            if got is None:
                return None
            codes -= got
        return codes or None


def build_types(sds: list[Json], resolver: ValueSetResolver) -> tuple[Json, Json, Json]:
    """Element tables for every type and backbone element, plus the value sets used.

    Returns the types, the code lists of value sets bound to ``code`` elements, and the
    ``system|code`` lists of value sets bound to ``CodeableConcept`` elements.
    """
    types: Json = {}
    value_sets: Json = {}
    concept_sets: Json = {}
    for sd in sds:
        elements = sd["snapshot"]["element"]
        paths = {e["path"] for e in elements}
        root = sd["type"]
        types[root] = {"kind": sd["kind"], "elements": []}
        for e in elements[1:]:
            path: str = e["path"]
            parent, name = path.rsplit(".", 1)
            if parent not in types:
                types[parent] = {"kind": "backbone", "elements": []}
            flags: Json = {}
            if name.endswith("[x]"):
                name = name[:-3]
                flags["x"] = 1
            max_ = -1 if e["max"] == "*" else int(e["max"])
            tlist: list[Any] = []
            if "contentReference" in e:
                tlist.append(e["contentReference"].lstrip("#"))
            elif any(p.startswith(path + ".") for p in paths):
                tlist.append(path)  # backbone element with its own children
            else:
                for t in e.get("type", []):
                    code = type_code(t)
                    if parent == root and name == "id" and sd["kind"] == "resource":
                        code = "id"  # R4 Resource.id is of type id
                    if code == "Reference" and t.get("targetProfile"):
                        tlist.append([code, ref_targets(t)])
                    else:
                        tlist.append(code)
            binding = e.get("binding")
            if binding and binding.get("strength") == "required" and tlist in (
                ["code"], ["CodeableConcept"]
            ):
                url = binding.get("valueSet", "")
                pairs = resolver.expand(url)
                key = url.split("|", 1)[0]
                if pairs is not None and tlist == ["code"]:
                    value_sets[key] = sorted({code for _, code in pairs})
                    flags["b"] = key
                elif pairs is not None:
                    concept_sets[key] = sorted(f"{system}|{code}" for system, code in pairs)
                    flags["bc"] = key
            entry: list[Any] = [name, int(e["min"]), max_, tlist]
            if flags:
                entry.append(flags)
            types[parent]["elements"].append(entry)
    return types, value_sets, concept_sets


def primitive_table(sds: list[Json]) -> Json:
    """JSON kind and official regex of each primitive type."""
    kinds = {"boolean": "boolean", "integer": "integer", "positiveInt": "integer",
             "unsignedInt": "integer", "decimal": "number"}
    out: Json = {}
    for sd in sds:
        regex = None
        for e in sd["snapshot"]["element"]:
            if e["path"].endswith(".value"):
                for ext in e["type"][0].get("extension", []):
                    if ext["url"] == REGEX_EXT:
                        regex = ext["valueString"]
        out[sd["type"]] = {"json": kinds.get(sd["type"], "string"), "regex": regex}
    return out


def generate(pkg: Path) -> Json:
    """Build the whole table from an unpacked package directory."""
    meta = json.loads((pkg / "package.json").read_text(encoding="utf-8"))
    sds = [sd for sd in load_kind(pkg, "StructureDefinition")
           if sd.get("derivation") != "constraint" and sd["kind"] != "logical"]
    resolver = ValueSetResolver(load_kind(pkg, "ValueSet"), load_kind(pkg, "CodeSystem"))
    structural = [sd for sd in sds if sd["kind"] in ("resource", "complex-type")]
    types, value_sets, concept_sets = build_types(structural, resolver)
    resource_types = sorted(sd["type"] for sd in sds
                            if sd["kind"] == "resource" and not sd.get("abstract"))
    known = set(types) | {sd["type"] for sd in sds}
    for tname, tdef in types.items():
        for el in tdef["elements"]:
            for t in el[3]:
                code = t[0] if isinstance(t, list) else t
                if code not in known:
                    raise SystemExit(f"unknown type {code} in {tname}.{el[0]}")
    return {
        "header": {
            "package": meta["name"], "version": meta["version"], "license": meta["license"],
            "author": meta.get("author"), "fhirVersion": VERSION,
            "generator": "scripts/gen_r4_structures.py",
            "note": "Derived from the official HL7 FHIR R4 StructureDefinitions (CC0-1.0).",
        },
        "resourceTypes": resource_types,
        "primitives": primitive_table([sd for sd in sds if sd["kind"] == "primitive-type"]),
        "types": types,
        "valueSets": dict(sorted(value_sets.items())),
        "conceptSets": dict(sorted(concept_sets.items())),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", type=Path, help="already unpacked package/ folder")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pkg = args.package_dir or fetch_package(Path(tmp))
        table = generate(pkg)
    raw = json.dumps(table, separators=(",", ":"), sort_keys=False).encode()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    n_el = sum(len(t["elements"]) for t in table["types"].values())
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes): "
          f"{len(table['resourceTypes'])} resource types, {len(table['types'])} types, "
          f"{n_el} elements, {len(table['valueSets'])} required value sets on codes, "
          f"{len(table['conceptSets'])} on CodeableConcepts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
