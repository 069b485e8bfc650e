"""A minimal, fast ``.xlsx`` writer for the clinics that export Excel workbooks.

Hand-written because openpyxl's writer costs about 20 µs per cell (4-5 s of CPU for one
clinic's 200,000 cells, a large share of the region's two-minute budget), while the smallest
valid SpreadsheetML package — one sheet of inline strings — is a few lines of XML. Reading
stays with openpyxl (the CSV adapter), and the tests read these files back with it.
The zip members carry a fixed timestamp, so equal content gives equal bytes.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
_OOXML = "application/vnd.openxmlformats"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CONTENT_TYPES = (
    f'{_XML}<Types xmlns="{_PKG}/content-types">'
    f'<Default Extension="rels" ContentType="{_OOXML}-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" '
    f'ContentType="{_OOXML}-officedocument.spreadsheetml.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" '
    f'ContentType="{_OOXML}-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_RELS = (
    f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    f'{_XML}<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    f'xmlns:r="{_REL}"><sheets><sheet name="export" sheetId="1" r:id="rId1"/></sheets>'
    "</workbook>"
)
_WORKBOOK_RELS = (
    f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    "</Relationships>"
)


def _column(n: int) -> str:
    """Spreadsheet column letters of a 0-based index (0 -> A, 26 -> AA)."""
    letters = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _sheet(rows: list[list[str]]) -> str:
    cols = [_column(i) for i in range(max((len(r) for r in rows), default=0))]
    extent = f"A1:{cols[-1]}{len(rows)}" if cols and rows else "A1"
    parts = [  # the dimension lets readers pad rows whose last cells are empty
        f'{_XML}<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{extent}"/><sheetData>'
    ]
    for i, row in enumerate(rows, start=1):
        cells = "".join(
            f'<c r="{cols[j]}{i}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
            for j, value in enumerate(row)
            if value != ""
        )
        parts.append(f'<row r="{i}">{cells}</row>')
    parts.append("</sheetData></worksheet>")
    return "".join(parts)


def write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    """Write ``rows`` (the header first) as a one-sheet workbook of text cells.

    >>> import tempfile
    >>> from openpyxl import load_workbook
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = write_xlsx(Path(tmp) / "t.xlsx", [["姓名", "年龄"], ["张伟", ""], ["A&B", "3"]])
    ...     [[c.value for c in r] for r in load_workbook(p).active.iter_rows()]
    [['姓名', '年龄'], ['张伟', None], ['A&B', '3']]
    """
    members = {
        "[Content_Types].xml": _CONTENT_TYPES,
        "_rels/.rels": _RELS,
        "xl/workbook.xml": _WORKBOOK,
        "xl/_rels/workbook.xml.rels": _WORKBOOK_RELS,
        "xl/worksheets/sheet1.xml": _sheet(rows),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        for name, text in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            book.writestr(info, text.encode("utf-8"))
    return path
