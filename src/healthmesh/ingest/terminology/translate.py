"""Lookups over the region's terminology: display of a standard code, translation of a local one.

Unknown codes are never dropped: a lookup says so (``known=False``) and the caller keeps the
code with its local system and a note, as the CSV adapter does.
"""

from __future__ import annotations

from dataclasses import dataclass

from healthmesh.ingest.csv.mapping import Mapping
from healthmesh.ingest.terminology.codes import LAB_CODES, LOINC, SYSTEMS
from healthmesh.ingest.terminology.resources import _shipped


@dataclass(frozen=True)
class Lookup:
    """The outcome of looking a code up."""

    system: str
    code: str
    known: bool
    display: str | None = None
    target_system: str | None = None
    target_code: str | None = None


class Terminology:
    """Standard subsets plus the local tables of a set of mappings.

    >>> t = Terminology()
    >>> t.translate("urn:healthmesh:local:clinic-dx", "MZ1001").target_code
    'I10'
    >>> t.translate("urn:healthmesh:local:drug", "YP9001").known
    False
    """

    def __init__(self, mappings: list[Mapping] | None = None) -> None:
        self._maps: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {}
        for mapping in mappings if mappings is not None else _shipped():
            for table in mapping.translations.values():
                self._maps.setdefault(
                    table.local_system, (table.system, table.codes, table.displays)
                )

    def lookup(self, system: str, code: str) -> Lookup:
        """Whether ``code`` is in the region's subset of ``system`` (and its display)."""
        shown = SYSTEMS.get(system, {}).get(code)
        return Lookup(system, code, shown is not None, shown)

    def translate(self, local_system: str, code: str) -> Lookup:
        """The standard code for a local one; ``known=False`` when there is none."""
        entry = self._maps.get(local_system)
        if entry is None:
            return Lookup(local_system, code, False)
        target_system, codes, displays = entry
        target = codes.get(code)
        return Lookup(
            local_system,
            code,
            target is not None,
            displays.get(code),
            target_system if target else None,
            target,
        )

    @staticmethod
    def units_fit(loinc: str, unit: str) -> bool | None:
        """Whether a UCUM unit fits a LOINC code of the subset (``None``: code unknown)."""
        lab = LAB_CODES.get(loinc)
        if lab is None:
            return None
        return unit in lab.units if lab.units else unit in ("", "1")


__all__ = ["LOINC", "Lookup", "Terminology"]
