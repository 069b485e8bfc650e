"""Parse FHIR search query parameters into a structured query.

Follows the R4 search specification (https://hl7.org/fhir/R4/search.html): OR values are
comma-separated (``\\,`` escapes), AND by repeating a parameter, modifiers after ``:``,
chains with ``.``, reverse chains with ``_has``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from healthmesh.errors import InvalidInput

#: result parameters: they shape the result, they are not filters
RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_elements",
        "_total",
        "_contained",
        "_containedType",
        "_cursor",
        "_format",
        "_pretty",
    }
)

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def split_escaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` unless escaped with a backslash (escapes are kept for ``unescape``)."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def unescape(text: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", text)


def split_prefix(value: str) -> tuple[str, str]:
    """``ge2010`` -> ("ge", "2010"); no prefix -> ("eq", value)."""
    if len(value) > 2 and value[:2] in PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


@dataclass
class Filter:
    """One search parameter occurrence: ``name[:modifier][.chain...]=v1,v2`` (OR of values)."""

    name: str
    modifier: str | None
    values: list[str]
    #: for a chained parameter, the remainder after the first ``.`` (e.g. ``name`` or
    #: ``organization.name``); ``modifier`` is then the target type, if given
    chain: str | None = None
    #: for ``_has``: (source type, reference param on source, rest of the _has chain)
    has: tuple[str, str, str] | None = None


@dataclass
class Include:
    source: str
    param: str  # "*" for all reference params
    target: str | None
    iterate: bool
    reverse: bool


@dataclass
class SortKey:
    name: str
    descending: bool


@dataclass
class Query:
    filters: list[Filter] = field(default_factory=list)
    count: int | None = None
    sort: list[SortKey] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    total: str = "none"
    cursor: str | None = None
    contained: str | None = None


def parse_has(name: str) -> tuple[str, str, str]:
    """``_has:Observation:patient:code`` -> ("Observation", "patient", "code")."""
    parts = name.split(":", 3)
    if len(parts) < 4 or not all(parts[1:]):
        raise InvalidInput("_has must be _has:Type:reference-param:search-param")
    return parts[1], parts[2], parts[3]


def _parse_include(value: str, reverse: bool, iterate: bool) -> Include:
    parts = value.split(":")
    if len(parts) == 1 and parts[0] == "*":
        return Include("*", "*", None, iterate, reverse)
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidInput("_include/_revinclude must be Type:param[:TargetType]")
    return Include(parts[0], parts[1], parts[2] if len(parts) == 3 else None, iterate, reverse)


def parse_query(pairs: list[tuple[str, str]], max_count: int = 1000) -> Query:
    """Build a :class:`Query` from decoded (name, value) pairs."""
    q = Query()
    for raw_name, value in pairs:
        name = raw_name.strip()
        base = name.split(":", 1)[0]
        if base in RESULT_PARAMS:
            _result_param(q, name, base, value, max_count)
            continue
        if base == "_has":
            src, ref, rest = parse_has(name)
            q.filters.append(Filter("_has", None, split_escaped(value, ","), has=(src, ref, rest)))
            continue
        head, _, chain = name.partition(".")
        pname, _, modifier = head.partition(":")
        q.filters.append(
            Filter(pname, modifier or None, split_escaped(value, ","), chain=chain or None)
        )
    return q


def _result_param(q: Query, name: str, base: str, value: str, max_count: int) -> None:
    if base == "_count":
        if not value.isdigit():
            raise InvalidInput("_count must be a non-negative integer")
        q.count = min(int(value), max_count)
    elif base == "_sort":
        for key in value.split(","):
            key = key.strip()
            if not key:
                continue
            desc = key.startswith("-")
            q.sort.append(SortKey(key.lstrip("-"), desc))
    elif base in ("_include", "_revinclude"):
        mods = name.split(":")[1:]
        if any(m not in ("iterate", "recurse") for m in mods):
            raise InvalidInput(f"unknown modifier on {base}")
        q.includes.append(_parse_include(value, base == "_revinclude", bool(mods)))
    elif base == "_summary":
        if value not in ("true", "false", "text", "data", "count"):
            raise InvalidInput("_summary must be true, false, text, data or count")
        q.summary = value
    elif base == "_elements":
        q.elements = [e.strip() for e in value.split(",") if e.strip()]
    elif base == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise InvalidInput("_total must be none, estimate or accurate")
        q.total = value
    elif base == "_cursor":
        q.cursor = value
    elif base == "_contained":
        q.contained = value
