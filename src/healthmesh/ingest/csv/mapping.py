"""The declarative mapping of a tabular export: resources built per row, field by field.

A mapping (YAML) names the export's columns and, per resource block, which FHIR element each
column fills, how the value is parsed (type, date formats, unit) and translated (local code to
LOINC/ICD-10/ATC through a named table), and its WS 445 data-element annotation. It is checked
when loaded so that a bad mapping fails before any row is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from healthmesh.errors import InvalidInput

VALUE_TYPES = frozenset(
    {"string", "code", "date", "dateTime", "decimal", "integer", "quantity", "coding",
     "codeable", "reference", "boolean", "resident_id"}
)


class MappingError(InvalidInput):
    """A mapping file is malformed (message names the mapping element, never data)."""


@dataclass(frozen=True)
class Translation:
    """A local code table: local code -> standard code, with the systems on both sides."""

    name: str
    system: str  # target system (LOINC, ICD-10, ATC, FHIR gender ...)
    local_system: str
    codes: dict[str, str]
    displays: dict[str, str] = field(default_factory=dict)  # local code -> local display


@dataclass(frozen=True)
class FieldSpec:
    """One element of a resource and where its value comes from."""

    path: str
    column: str | None = None  # "@item" = the current item of a foreach split
    value: Any = None  # a constant (may contain {system}); used when column is None
    type: str = "string"
    required: bool = False
    formats: tuple[str, ...] = ()
    unit: str | None = None
    system: str | None = None  # for coding/codeable without translation
    translate: str | None = None
    ref: str | None = None  # name of another block in the same row (reference type)
    ws445: str | None = None  # WS 445 / WS 363 data element id, e.g. DE02.01.039.00
    when: str | None = None  # set this element only when that column is non-empty
    unit_column: str | None = None  # quantity unit read from another column
    #: reference to a resource built from another file: (type, mapping, block, key columns)
    link: tuple[str, str, str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Block:
    """One resource to build from a row (zero or more times)."""

    name: str
    type: str
    key: tuple[str, ...]  # columns of the business key (deterministic id)
    fields: tuple[FieldSpec, ...]
    when: str | None = None  # build only when this column is non-empty
    foreach: str | None = None  # build once per item of this column, split by `split`
    split: str = ";"


@dataclass(frozen=True)
class Mapping:
    """A whole mapping file."""

    name: str
    description: str
    columns: tuple[str, ...]
    blocks: tuple[Block, ...]
    translations: dict[str, Translation]
    encoding: str | None = None  # None: UTF-8 (BOM or not), else GB18030
    delimiter: str = ","
    timezone: str = "+08:00"


def _field(raw: dict[str, Any], where: str, names: set[str], tables: set[str]) -> FieldSpec:
    if "path" not in raw:
        raise MappingError(f"{where}: a field needs a path")
    kind = raw.get("type", "string")
    if kind not in VALUE_TYPES:
        raise MappingError(f"{where}: unknown type {kind!r}")
    link = raw.get("link")
    if link is not None and not {"type", "mapping", "block", "key"} <= set(link):
        raise MappingError(f"{where}: a link needs type, mapping, block and key")
    if raw.get("column") is None and "value" not in raw and kind != "reference":
        raise MappingError(f"{where}: a field needs a column or a value")
    if kind == "reference" and link is None and raw.get("ref") not in names:
        raise MappingError(f"{where}: reference to an unknown block")
    if raw.get("translate") and raw["translate"] not in tables:
        raise MappingError(f"{where}: unknown translation table")
    spec = FieldSpec(
        path=str(raw["path"]),
        column=raw.get("column"),
        value=raw.get("value"),
        type=kind,
        required=bool(raw.get("required", False)),
        formats=tuple(raw.get("formats", ())),
        unit=raw.get("unit"),
        system=raw.get("system"),
        translate=raw.get("translate"),
        ref=raw.get("ref"),
        ws445=raw.get("ws445"),
        when=raw.get("when"),
        unit_column=raw.get("unit_column"),
        link=(str(link["type"]), str(link["mapping"]), str(link["block"]),
              tuple(str(k) for k in link["key"])) if link else None,
    )
    return spec


def parse_mapping(raw: dict[str, Any]) -> Mapping:
    """Check and build a mapping from its YAML document."""
    if not isinstance(raw, dict) or "resources" not in raw or "columns" not in raw:
        raise MappingError("a mapping needs 'columns' and 'resources'")
    columns = tuple(str(c) for c in raw["columns"])
    tables: dict[str, Translation] = {}
    for name, t in (raw.get("translations") or {}).items():
        codes: dict[str, str] = {}
        displays: dict[str, str] = {}
        for local, target in (t.get("map") or {}).items():
            entry = target if isinstance(target, dict) else {"code": target}
            if entry.get("code") is not None:  # null: a local code with no standard equivalent
                codes[str(local)] = str(entry["code"])
            if entry.get("local_display"):
                displays[str(local)] = str(entry["local_display"])
        tables[name] = Translation(name, str(t["system"]), str(t["local_system"]), codes, displays)
    names = {str(n) for n in raw["resources"]}
    blocks = []
    for name, b in raw["resources"].items():
        where = f"resources.{name}"
        for col in [*b.get("key", []), b.get("when"), b.get("foreach")]:
            if col is not None and col not in columns:
                raise MappingError(f"{where}: key/when/foreach names an undeclared column")
        fields = []
        for i, f in enumerate(b.get("fields") or []):
            spec = _field(f, f"{where}.fields[{i}]", names, set(tables))
            used = [spec.column, spec.when, spec.unit_column, *(spec.link[3] if spec.link else ())]
            if any(c not in (None, "@item") and c not in columns for c in used):
                raise MappingError(f"{where}.fields[{i}]: column not declared")
            fields.append(spec)
        blocks.append(
            Block(str(name), str(b["type"]), tuple(b.get("key", [])), tuple(fields),
                  b.get("when"), b.get("foreach"), str(b.get("split", ";")))
        )
    return Mapping(
        name=str(raw.get("name", "mapping")),
        description=str(raw.get("description", "")),
        columns=columns,
        blocks=tuple(blocks),
        translations=tables,
        encoding=raw.get("encoding"),
        delimiter=str(raw.get("delimiter", ",")),
        timezone=str(raw.get("timezone", "+08:00")),
    )


def load_mapping(path: str | Path) -> Mapping:
    """Load a mapping from a YAML file."""
    try:
        raw = yaml.safe_load(Path(path).read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError("mapping file is not valid YAML") from exc
    return parse_mapping(raw)


def shipped_mapping(name: str) -> Path:
    """Path of a mapping shipped with healthmesh (``clinic_visits``, ``pharmacy_sales`` ...).

    >>> shipped_mapping("clinic_visits").name
    'clinic_visits.yaml'
    """
    ref = resources.files(__package__).joinpath(f"mappings/{name}.yaml")
    path = Path(str(ref))
    if not path.is_file():
        raise MappingError("no shipped mapping of that name")
    return path
