"""Comparisons for the plaintext linker: each turns a pair of values into a small integer level.

A comparison renders one SQL ``CASE`` expression evaluated by DuckDB over candidate pairs
(DuckDB ships the Jaro-Winkler and Levenshtein functions in C++, which is what Splink uses too).
Level ``-1`` means a value is missing (the comparison is left out of the match weight),
``0`` is "else", and higher levels mean closer agreement; the top level is exact agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Comparison(Protocol):
    """A comparison of one or more columns with ``levels`` outcomes besides "missing"."""

    @property
    def name(self) -> str:
        """Label of the comparison ("" to use the column name)."""
        ...

    @property
    def levels(self) -> int:
        """Number of levels, "else" (0) included, "missing" (-1) excluded."""
        ...

    def sql(self) -> str:
        """A DuckDB expression over the aliases ``l`` and ``r`` returning the level."""
        ...


def _null(col: str) -> str:
    return f"(l.{col} IS NULL OR r.{col} IS NULL OR l.{col} = '' OR r.{col} = '')"


@dataclass(frozen=True)
class Exact:
    """Agree exactly (level 1) or not (level 0)."""

    column: str
    name: str = ""

    @property
    def levels(self) -> int:
        return 2

    def sql(self) -> str:
        c = self.column
        return f"CASE WHEN {_null(c)} THEN -1 WHEN l.{c} = r.{c} THEN 1 ELSE 0 END"


@dataclass(frozen=True)
class JaroWinkler:
    """Exact, then Jaro-Winkler similarity at or above each threshold (descending)."""

    column: str
    thresholds: Sequence[float] = (0.92, 0.8)
    name: str = ""

    @property
    def levels(self) -> int:
        return len(self.thresholds) + 2

    def sql(self) -> str:
        c = self.column
        top = self.levels - 1
        parts = [f"CASE WHEN {_null(c)} THEN -1", f"WHEN l.{c} = r.{c} THEN {top}"]
        for i, t in enumerate(sorted(self.thresholds, reverse=True)):
            parts.append(f"WHEN jaro_winkler_similarity(l.{c}, r.{c}) >= {t} THEN {top - 1 - i}")
        parts.append("ELSE 0 END")
        return " ".join(parts)


@dataclass(frozen=True)
class EditDistance:
    """Exact, then Damerau-Levenshtein distance at or below each bound (ascending)."""

    column: str
    bounds: Sequence[int] = (1, 2)
    name: str = ""

    @property
    def levels(self) -> int:
        return len(self.bounds) + 2

    def sql(self) -> str:
        c = self.column
        top = self.levels - 1
        parts = [f"CASE WHEN {_null(c)} THEN -1", f"WHEN l.{c} = r.{c} THEN {top}"]
        for i, b in enumerate(sorted(self.bounds)):
            parts.append(f"WHEN damerau_levenshtein(l.{c}, r.{c}) <= {b} THEN {top - 1 - i}")
        parts.append("ELSE 0 END")
        return " ".join(parts)


@dataclass(frozen=True)
class NamePair:
    """Given name + surname together, allowing the two to be swapped.

    Levels: 3 both exact, 2 swapped, 1 both Jaro-Winkler >= ``threshold``, 0 else.
    Useful for pinyin written in Western order and for data-entry swaps.
    """

    given: str
    surname: str
    threshold: float = 0.9
    name: str = "name_pair"

    @property
    def levels(self) -> int:
        return 4

    def sql(self) -> str:
        g, s, t = self.given, self.surname, self.threshold
        return (
            f"CASE WHEN {_null(g)} AND {_null(s)} THEN -1 "
            f"WHEN l.{g} = r.{g} AND l.{s} = r.{s} THEN 3 "
            f"WHEN l.{g} = r.{s} AND l.{s} = r.{g} THEN 2 "
            f"WHEN jaro_winkler_similarity(coalesce(l.{g}, ''), coalesce(r.{g}, '')) >= {t} "
            f"AND jaro_winkler_similarity(coalesce(l.{s}, ''), coalesce(r.{s}, '')) >= {t} "
            "THEN 1 ELSE 0 END"
        )


@dataclass
class Spec:
    """What to compare and how to find candidate pairs.

    ``blocking`` is a list of column groups: a pair is a candidate when it agrees exactly on
    all columns of at least one group.
    """

    comparisons: list[Comparison]
    blocking: list[tuple[str, ...]]
    id_column: str = "id"
    extra_columns: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        """A unique name per comparison (its ``name`` or its column)."""
        out = []
        for i, comp in enumerate(self.comparisons):
            label = comp.name or str(getattr(comp, "column", f"c{i}"))
            out.append(label)
        return out
