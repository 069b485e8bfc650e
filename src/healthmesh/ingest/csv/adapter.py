"""The CSV/Excel adapter: one row in, the mapping's resources out (or the row rejected).

Rows are decoded as UTF-8 (with or without BOM) or GB18030, or read from the first sheet of
an ``.xlsx`` workbook (openpyxl). Each row becomes the mapping's resource blocks with
deterministic ids from (institution, block, business key), so re-ingesting a file updates.
A row is rejected as a whole, with its row number, column and reason, when a required cell is
empty or a cell cannot be parsed; its source bytes are the header plus the row (UTF-8 CSV), so a
quarantine retry re-converts them. Unknown local codes are kept and flagged in the notes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from healthmesh.ingest.adapter import Converted, Outcome, Rejected, deterministic_id
from healthmesh.ingest.csv.mapping import (
    Block,
    Mapping,
    MappingError,
    load_mapping,
    shipped_mapping,
)
from healthmesh.ingest.csv.values import CellError, convert

_STEP = re.compile(r"([A-Za-z]+)(?:\[(\d+)\])?")


@lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[tuple[str, int | None], ...]:
    """A dotted element path parsed once: (name, list index or None) per step."""
    out = []
    for step in path.split("."):
        m = _STEP.fullmatch(step)
        if m is None:
            raise MappingError("bad element path in mapping")
        out.append((m.group(1), None if m.group(2) is None else int(m.group(2))))
    return tuple(out)


def set_path(resource: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a dotted path with list indexes, creating what is missing.

    >>> r: dict = {}
    >>> set_path(r, "name[0].given[1]", "Wei")
    >>> r
    {'name': [{'given': [None, 'Wei']}]}
    """
    steps = _steps(path)
    node: Any = resource
    for n, (key, index) in enumerate(steps):
        last = n == len(steps) - 1
        if index is None:
            if last:
                node[key] = value
                return
            node = node.setdefault(key, {})
            continue
        items = node.setdefault(key, [])
        i = index
        while len(items) <= i:
            items.append(None if last else {})
        if last:
            items[i] = value
            return
        if items[i] is None:
            items[i] = {}
        node = items[i]


def _decode(data: bytes, encoding: str | None) -> str:
    if encoding:
        return data.decode(encoding)
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def _xlsx_rows(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheet = book.worksheets[0]
    rows = [["" if c is None else str(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    book.close()
    return rows


class CsvAdapter:
    """Adapter for one mapping.

    >>> from healthmesh.ingest.csv.mapping import shipped_mapping
    >>> CsvAdapter(shipped_mapping("pharmacy_sales"), institution="P01").format
    'csv'
    """

    format = "csv"

    def __init__(self, mapping_path: str | Path, *, institution: str | None = None) -> None:
        path = Path(mapping_path)
        if not path.exists() and path.suffix == "" and path.name == str(mapping_path):
            path = shipped_mapping(str(mapping_path))  # a shipped mapping by name
        self.mapping: Mapping = load_mapping(path)
        self.institution = institution or self.mapping.name

    def rows(self, data: bytes) -> list[list[str]]:
        """All rows of the file, header first."""
        if data[:4] == b"PK\x03\x04":
            return _xlsx_rows(data)
        text = _decode(data, self.mapping.encoding)
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=self.mapping.delimiter))

    def convert(self, data: bytes, *, source: str) -> Iterator[Outcome]:
        """One outcome per data row (rows numbered from 2: the header is row 1)."""
        try:
            rows = self.rows(data)
        except (UnicodeDecodeError, csv.Error, ValueError, OSError) as exc:
            yield Rejected(source, data, f"file cannot be read ({type(exc).__name__})", "file")
            return
        if not rows:
            return
        header = [h.strip() for h in rows[0]]
        missing = [c for c in self.mapping.columns if c not in header]
        if missing:
            yield Rejected(source, data, "file lacks columns the mapping declares", "row 1")
            return
        index = {c: header.index(c) for c in self.mapping.columns}
        for n, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            yield self._row(row, index, n, source, rows[0])

    def _row(
        self, row: list[str], index: dict[str, int], n: int, source: str, header: list[str]
    ) -> Outcome:
        ref = f"{source}:{n}"
        cells = {c: (row[i].strip() if i < len(row) else "") for c, i in index.items()}
        notes: list[str] = []
        built: dict[str, list[dict[str, Any]]] = {}
        try:
            for block in self.mapping.blocks:
                built[block.name] = self._block(block, cells, built, notes)
        except _RowError as err:
            # the header and the row as a CSV file of their own, so a retry can re-convert it
            text = io.StringIO()
            csv.writer(text, lineterminator="\r\n", delimiter=self.mapping.delimiter).writerows(
                [header, row]
            )
            raw = text.getvalue().encode("utf-8")
            return Rejected(ref, raw, err.reason, f"row {n}, column {err.column}")
        resources = [r for rs in built.values() for r in rs]
        return Converted(ref, resources, sorted(set(notes)))

    def _block(
        self,
        block: Block,
        cells: dict[str, str],
        built: dict[str, list[dict[str, Any]]],
        notes: list[str],
    ) -> list[dict[str, Any]]:
        if block.when is not None and not cells[block.when]:
            return []
        items: list[str | None] = [None]
        if block.foreach is not None:
            items = [i.strip() for i in cells[block.foreach].split(block.split) if i.strip()]
        out = []
        for k, item in enumerate(items):
            key = [cells[c] for c in block.key]
            if block.foreach is not None:
                key.append(str(k))
            res: dict[str, Any] = {
                "resourceType": block.type,
                "id": deterministic_id(
                    block.type, self.institution, self.mapping.name, block.name, *key
                ),
            }
            for spec in block.fields:
                value = self._value(spec, cells, item, built, notes)
                if value is not None:
                    set_path(res, spec.path, value)
            out.append(res)
        return out

    def _value(
        self,
        spec: Any,
        cells: dict[str, str],
        item: str | None,
        built: dict[str, list[dict[str, Any]]],
        notes: list[str],
    ) -> Any:
        if spec.when is not None and not cells[spec.when]:
            return None
        if spec.link is not None:
            rtype, mapping, block, key = spec.link
            values = [cells[c] for c in key]
            if not all(values):
                return None
            return {
                "reference": f"{rtype}/"
                + deterministic_id(rtype, self.institution, mapping, block, *values)
            }
        if spec.type == "reference":
            targets = built.get(spec.ref, [])
            if not targets:
                return None
            return {"reference": f"{targets[0]['resourceType']}/{targets[0]['id']}"}
        if spec.column is None:
            value = spec.value
            return value.format(institution=self.institution) if isinstance(value, str) else value
        text = item if spec.column == "@item" else cells[spec.column]
        column = spec.column
        if not text:
            if spec.required:
                raise _RowError(column, "required value is empty")
            return None
        try:
            value = convert(text, spec, self.mapping.translations, self.mapping.timezone, notes)
            if spec.unit_column is not None and isinstance(value, dict):
                unit = cells[spec.unit_column] or "1"
                value["unit"] = value["code"] = unit
            return value
        except CellError as err:
            raise _RowError(column, err.reason) from err


class _RowError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason
