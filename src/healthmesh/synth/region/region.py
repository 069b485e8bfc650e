"""Generate a synthetic region: people, institutions, events, native exports and truth files.

Layout of ``out``::

    manifest.json                 config, institutions, files and record counts, defects
    H01/hl7/{adt,oru,rde}_YYYY-MM.hl7   H01/dicom/*.dcm   H01/consent.ndjson
    C01/visits.csv  C01/prescriptions.csv  C01/consent.ndjson
    P01/sales.csv   CDC01/case_reports.csv
    truth/persons.csv   truth/records.csv (institution, local id -> person)
    truth/outbreaks.csv truth/ili_cases.csv
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from healthmesh.synth.region.chronic import inject_defects, simulate_acute, simulate_chronic
from healthmesh.synth.region.config import Institution, RegionConfig, institutions
from healthmesh.synth.region.consent import opt_out_consent
from healthmesh.synth.region.csvout import CdcWriter, ClinicWriter, PharmacyWriter
from healthmesh.synth.region.dicomout import write_study
from healthmesh.synth.region.events import Timeline
from healthmesh.synth.region.hl7out import Hl7Writer
from healthmesh.synth.region.influenza import simulate_ili
from healthmesh.synth.region.population import Person, make_population
from healthmesh.synth.region.services import Services
from healthmesh.synth.region.tables import reference
from healthmesh.synth.region.variants import Registry


@dataclass
class RegionSummary:
    """What was generated: counts per institution and the files written."""

    out: Path
    people: int
    institutions: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbreaks: int = 0
    defects: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0


def simulate(config: RegionConfig) -> tuple[list[Person], list[Institution], Timeline]:
    """People, institutions and everything that happens to them (no files)."""
    people = make_population(config)
    insts = institutions(config, [d.code for d in reference().districts])
    services = Services(insts)
    timeline = Timeline()
    simulate_ili(config, people, services, timeline)
    simulate_chronic(config, people, services, timeline)
    simulate_acute(config, people, services, timeline)
    timeline.visits.sort(key=lambda v: (v.start, v.person.pid))
    timeline.sales.sort(key=lambda s: (s.at, s.pharmacy))
    timeline.reports.sort(key=lambda r: (r.diagnosed, r.person.pid))
    inject_defects(config, timeline)
    return people, insts, timeline


def generate_region(config: RegionConfig, out: Path) -> RegionSummary:
    """Generate the region into ``out`` (created); deterministic for ``config.seed``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     generate_region(RegionConfig(seed=1, people=50, days=30), Path(tmp)).people
    50
    """
    people, insts, tl = simulate(config)
    by_id = {i.id: i for i in insts}
    registries = {
        i.id: Registry(i, config.rng(f"registry-{i.id}"), 0.25 if i.id == "H03" else 0.0)
        for i in insts
    }
    hl7 = {i.id: Hl7Writer(i) for i in insts if i.kind == "hospital"}
    clinics = {
        i.id: ClinicWriter(i, n) for n, i in enumerate(x for x in insts if x.kind == "clinic")
    }
    shops = {i.id: PharmacyWriter(i) for i in insts if i.kind == "pharmacy"}
    cdcs = [CdcWriter(i) for i in insts if i.kind == "cdc"]
    counts: dict[str, dict[str, int]] = {i.id: {} for i in insts}
    files: list[Path] = []

    def bump(inst: str, key: str) -> int:
        counts[inst][key] = counts[inst].get(key, 0) + 1
        return counts[inst][key]

    for v in tl.visits:
        reg = registries[v.institution]
        if v.institution in hl7:  # a duplicate number found at the next visit: ADT^A40 merge
            dup = reg.pop_duplicate(v.person)
            if dup is not None:
                hl7[v.institution].merge(
                    reg.records[v.person.pid], dup, v.start - dt.timedelta(minutes=2)
                )
                bump(v.institution, "merges")
        rate = 0.004 if v.institution in hl7 else 0.0
        rec = reg.record(v.person, v.start.date(), duplicate_rate=rate)
        if registries[v.institution].update_address(rec, v.start.date()):
            bump(v.institution, "address_updates")
            if v.institution in hl7:  # the desk updates the address: ADT^A08 before the visit
                hl7[v.institution].update(rec, v.start - dt.timedelta(minutes=1))
        n = bump(v.institution, "visits")
        visit_no = f"{v.institution}-V{n:08d}"
        if v.institution in hl7:
            hl7[v.institution].visit(v, rec, visit_no)
            if v.imaging:
                accession = f"{v.institution}A{bump(v.institution, 'imaging_studies'):08d}"
                folder = out / v.institution / "dicom"
                files.append(
                    write_study(folder, by_id[v.institution], v, rec, accession, config.seed)
                )
        else:
            clinics[v.institution].visit(v, rec, visit_no)
    for s in tl.sales:
        member = registries[s.pharmacy].record(s.member, s.at.date()) if s.member else None
        shops[s.pharmacy].sale(s, member)
        bump(s.pharmacy, "sales")
    for cdc in cdcs:
        reg = registries[cdc.inst.id]
        for n, r in enumerate(tl.reports):
            rec = reg.record(r.person, r.diagnosed)
            cdc.report(r, rec, f"{cdc.inst.id}-R{n + 1:07d}")
            bump(cdc.inst.id, "case_reports")
    for inst_id, writer in hl7.items():
        files += writer.write(out / inst_id / "hl7")
        counts[inst_id]["hl7_messages"] = writer.count
    for inst_id, clinic in clinics.items():
        files += clinic.write(out / inst_id)
        counts[inst_id]["prescriptions"] = clinic.rx.rows
    for inst_id, shop in shops.items():
        files += shop.write(out / inst_id)
    for cdc in cdcs:
        files += cdc.write(out / cdc.inst.id)
    for inst in insts:
        if inst.kind in ("hospital", "clinic"):
            files.append(_write_consents(out / inst.id, registries[inst.id], inst))
    files += _write_truth(out / "truth", people, registries, tl)
    for inst_id, reg in registries.items():
        counts[inst_id]["patients"] = len(reg.all())
        defects = sum("future_birth_date" in r.errors for r in reg.all())
        if defects:
            tl.defects["future_birth_date"] = tl.defects.get("future_birth_date", 0) + defects
    summary = RegionSummary(out, len(people), outbreaks=len(tl.outbreaks), defects=tl.defects)
    for inst in insts:
        summary.institutions[inst.id] = {**asdict(inst), "counts": counts[inst.id]}
    summary.files = len(files) + 1
    summary.bytes = sum(p.stat().st_size for p in files)
    manifest = {
        "generator": "healthmesh synth region",
        "config": {k: str(v) for k, v in asdict(config).items()},
        "people": len(people),
        "institutions": summary.institutions,
        "outbreaks": [asdict(o) | {"start": str(o.start), "end": str(o.end)} for o in tl.outbreaks],
        "injected_defects": tl.defects,
        "files": sorted(str(p.relative_to(out)) for p in files),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
    return summary


def _write_consents(folder: Path, reg: Registry, inst: Institution) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "consent.ndjson"
    lines = [
        json.dumps(opt_out_consent(inst.id, rec), ensure_ascii=False)
        for rec in reg.records.values()
        if rec.person.opt_out
    ]
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return path


def _write_truth(
    folder: Path, people: list[Person], registries: dict[str, Registry], tl: Timeline
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {
        "persons.csv": (
            [
                "person_id",
                "name",
                "pinyin",
                "sex",
                "birth_date",
                "id_number",
                "ethnicity",
                "phone",
                "district",
                "address",
                "moved_on",
                "new_district",
                "hypertension_onset",
                "diabetes_onset",
                "bmi",
                "smoker",
                "research_opt_out",
            ],
            [
                [
                    p.pid,
                    p.name,
                    f"{p.surname_py} {p.given_py}",
                    p.sex,
                    p.birth,
                    p.id_number,
                    p.ethnicity,
                    p.phone,
                    p.district,
                    p.address,
                    p.moved_on or "",
                    p.new_district or "",
                    p.hypertension_onset or "",
                    p.diabetes_onset or "",
                    p.bmi,
                    int(p.smoker),
                    int(p.opt_out),
                ]
                for p in people
            ],
        ),
        "records.csv": (
            ["institution", "local_id", "person_id", "errors"],
            [
                [inst, r.local_id, r.person.pid, ";".join(r.errors)]
                for inst, reg in registries.items()
                for r in reg.all()
            ],
        ),
        "outbreaks.csv": (
            ["outbreak_id", "district", "start", "end", "extra_cases"],
            [[o.id, o.district, o.start, o.end, o.extra_cases] for o in tl.outbreaks],
        ),
        "ili_cases.csv": (
            ["onset", "district", "person_id", "outbreak_id"],
            [list(c) for c in tl.ili_cases],
        ),
    }
    paths = []
    for name, (header, rows) in tables.items():
        path = folder / name
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        paths.append(path)
    return paths
