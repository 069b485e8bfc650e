"""Generate the compact FHIR R4 search-parameter and patient-compartment tables.

The official R4 (4.0.1) definitions ship in the npm package ``hl7.fhir.r4.examples@4.0.1``
(HL7 Inc, CC0-1.0): ``Bundle-searchParams.json`` holds the 1,375 core SearchParameter
definitions (the package also holds 25 extension/example SearchParameter-*.json files that are
not part of the core bundle; they are left out) and ``CompartmentDefinition-patient.json`` the
patient compartment. This script fetches the package with ``npm pack`` into a temporary
directory (or reads an unpacked ``package/`` folder given with ``--package-dir``) and writes

- ``src/healthmesh/fhir/_generated/search_parameters.json.gz``: ``{"header": {...},
  "params": [...]}`` where each param keeps only what search needs: ``id``, ``url``, ``code``,
  ``base``, ``type``, ``expression``, ``target``, ``component`` (``[definition, expression]``
  pairs), ``comparator``, ``modifier``, ``multipleOr``, ``multipleAnd``;
  ``implicitSystems`` maps each ``code`` element with a required binding to a single code
  system (``Patient.gender`` -> ``http://hl7.org/fhir/administrative-gender``), read from the
  base StructureDefinitions and ValueSets of the same package, so token rows of such codes
  carry their system;
- ``src/healthmesh/fhir/_generated/compartment_patient.json.gz``: the CompartmentDefinition
  with its narrative dropped (``resource`` entries unchanged).

It then prints a survey of the FHIRPath expressions: how many branches the search package
compiles to Python closures and which fall back to fhirpathpy.

Run: ``.venv/bin/python scripts/gen_search_parameters.py`` (needs ``npm`` and the npm registry,
or ``--package-dir``).
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
OUT = ROOT / "src" / "healthmesh" / "fhir" / "_generated"
KEEP = (
    "id",
    "url",
    "code",
    "base",
    "type",
    "expression",
    "target",
    "comparator",
    "modifier",
    "multipleOr",
    "multipleAnd",
)


def fetch_package(workdir: Path) -> Path:
    """``npm pack`` the examples package into ``workdir`` and unpack it; return ``package/``."""
    subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tgz = next(workdir.glob(f"{PACKAGE}-{VERSION}.tgz"))
    with tarfile.open(tgz) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.name in ("package/package.json", "package/Bundle-searchParams.json")
            or m.name == "package/CompartmentDefinition-patient.json"
            or m.name.startswith(("package/StructureDefinition-", "package/ValueSet-"))
        ]
        tar.extractall(workdir, members=members, filter="data")
    return workdir / "package"


def compact_param(res: dict[str, Any]) -> dict[str, Any]:
    out = {k: res[k] for k in KEEP if k in res}
    if "component" in res:
        out["component"] = [[c["definition"], c["expression"]] for c in res["component"]]
    return out


def write_gz(path: Path, obj: Any) -> None:
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    with open(path, "wb") as raw, gzip.GzipFile(None, "wb", mtime=0, fileobj=raw) as fh:
        fh.write(data)  # no file name, mtime=0: reproducible bytes
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def implicit_systems(package_dir: Path) -> dict[str, str]:
    """``element path -> code system`` for ``code`` elements with a required binding to a
    value set drawn from exactly one code system (``Patient.gender`` ->
    ``http://hl7.org/fhir/administrative-gender``), from the base StructureDefinitions."""
    value_sets = {}
    for path in package_dir.glob("ValueSet-*.json"):
        vs = json.loads(path.read_text())
        value_sets[vs["url"]] = vs
    out: dict[str, str] = {}
    for path in sorted(package_dir.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text())
        if sd.get("derivation") == "constraint" or sd.get("kind") not in (
            "resource",
            "complex-type",
        ):
            continue
        for elem in sd.get("snapshot", {}).get("element", []):
            binding = elem.get("binding") or {}
            if binding.get("strength") != "required":
                continue
            if [t.get("code") for t in elem.get("type", [])] != ["code"]:
                continue
            vs = value_sets.get(binding.get("valueSet", "").split("|")[0])
            includes = (vs or {}).get("compose", {}).get("include", [])
            systems = {i["system"] for i in includes if i.get("system")}
            if len(systems) == 1 and not any(i.get("valueSet") for i in includes):
                out[elem["path"]] = systems.pop()
    return dict(sorted(out.items()))


def generate(package_dir: Path, out: Path = OUT) -> None:
    meta = json.loads((package_dir / "package.json").read_text())
    header = {
        "package": meta["name"],
        "version": meta["version"],
        "license": meta.get("license"),
        "author": meta.get("author"),
        "fhirVersion": meta.get("fhirVersions", [VERSION])[0],
        "generator": "scripts/gen_search_parameters.py",
    }
    bundle = json.loads((package_dir / "Bundle-searchParams.json").read_text())
    params = [compact_param(e["resource"]) for e in bundle["entry"]]
    out.mkdir(parents=True, exist_ok=True)
    systems = implicit_systems(package_dir)
    write_gz(
        out / "search_parameters.json.gz",
        {"header": header, "params": params, "implicitSystems": systems},
    )
    comp = json.loads((package_dir / "CompartmentDefinition-patient.json").read_text())
    comp.pop("text", None)
    write_gz(out / "compartment_patient.json.gz", {"header": header, "compartment": comp})
    print(
        f"{len(params)} search parameters, {len(comp['resource'])} compartment entries, "
        f"{len(systems)} implicit code systems"
    )


CONSTRUCTS = {
    "union |": r"\|",
    "where(...)": r"\.where\(",
    "resolve() is T": r"resolve\(\) is ",
    "x as T": r" as \w+\)",
    ".as(T)": r"\.as\(",
    "ofType(T)": r"\.ofType\(",
    "extension(url)": r"\.extension\(",
    "exists()": r"\.exists\(",
    "indexer [n]": r"\[\d+\]",
    "first()": r"\.first\(",
    "%resource": r"%resource",
    "and/or": r" (and|or) ",
    "= / !=": r"!?=",
}


def survey() -> None:
    """Print which FHIRPath constructs the definitions use and how the registry compiles
    them (needs the package importable)."""
    import re

    sys.path.insert(0, str(ROOT / "src"))
    from healthmesh.fhir.search.registry import load_registry

    table = json.loads(gzip.decompress((OUT / "search_parameters.json.gz").read_bytes()))
    texts = [p.get("expression", "") for p in table["params"]]
    texts += [c[1] for p in table["params"] for c in p.get("component", [])]
    print(f"survey of {len(texts)} expressions (definitions + composite components):")
    for name, pattern in CONSTRUCTS.items():
        print(f"  {name:16} {sum(1 for t in texts if re.search(pattern, t or '')):5}")
    reg = load_registry()
    stats = reg.compile_stats()
    print(
        f"survey: {stats['params']} (type, code) entries, {stats['compiled']} compiled to "
        f"closures, {stats['fallback']} via fhirpathpy, {stats['none']} without expression"
    )
    for line in stats["fallback_list"]:
        print("  fallback:", line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package-dir", type=Path, help="an unpacked npm package/ folder")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default: _generated)")
    ap.add_argument("--no-survey", action="store_true")
    args = ap.parse_args()
    if args.package_dir:
        generate(args.package_dir, args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            generate(fetch_package(Path(tmp)), args.out)
    if not args.no_survey:
        survey()


if __name__ == "__main__":
    main()
