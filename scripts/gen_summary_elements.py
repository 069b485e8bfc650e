"""Generate src/healthmesh/fhir/_generated/summary_elements.json.gz: for every R4 resource
type, the top-level elements marked ``isSummary`` (what ``_summary=true`` returns).

Source: npm package hl7.fhir.r4.examples@4.0.1 (HL7, CC0-1.0), its StructureDefinitions.
Usage: python scripts/gen_summary_elements.py
"""

from __future__ import annotations

import gzip
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "hl7.fhir.r4.examples@4.0.1"
OUT = (
    Path(__file__).resolve().parents[1] / "src/healthmesh/fhir/_generated/summary_elements.json.gz"
)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True)
        tgz = next(Path(tmp).glob("*.tgz"))
        table: dict[str, list[str]] = {}
        with tarfile.open(tgz) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if not name.startswith("StructureDefinition-") or not name.endswith(".json"):
                    continue
                f = tar.extractfile(member)
                if f is None:
                    continue
                sd = json.load(f)
                if sd.get("kind") != "resource" or sd.get("derivation") != "specialization":
                    continue
                rtype = sd["type"]
                keep = []
                for el in sd["snapshot"]["element"]:
                    parts = el["path"].split(".")
                    if len(parts) == 2 and el.get("isSummary"):
                        keep.append(parts[1].replace("[x]", ""))
                table[rtype] = sorted(keep)
    doc = {"source": PACKAGE, "licence": "CC0-1.0", "summary": dict(sorted(table.items()))}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0))
    print(f"{len(table)} resource types -> {OUT}")


if __name__ == "__main__":
    main()
