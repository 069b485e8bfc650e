"""Translate parsed search filters into SQL conditions on the store's index tables.

Every condition has the shape ``fhir_resource.lid IN (SELECT lid FROM idx_<type> WHERE ...)``
(or ``NOT IN`` for ``:not`` / ``:missing=true``), so they AND together and the database
drives selective queries from the index.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    false,
    literal,
    not_,
    or_,
    select,
    true,
)

from healthmesh.errors import Forbidden, InvalidInput
from healthmesh.fhir.query.parse import Filter, parse_has, split_escaped, split_prefix, unescape
from healthmesh.fhir.query.values import number_range, range_condition, value_condition
from healthmesh.fhir.search import SearchParam, normalize_string, parse_date_param
from healthmesh.fhir.store import schema

if TYPE_CHECKING:
    from healthmesh.fhir.store.store import FhirStore

R = schema.resource
T = schema
Cond = ColumnElement[bool]

TYPE_TABLE = {
    "string": schema.idx_string,
    "token": schema.idx_token,
    "date": schema.idx_date,
    "number": schema.idx_number,
    "quantity": schema.idx_quantity,
    "reference": schema.idx_reference,
    "uri": schema.idx_uri,
    "composite": schema.idx_composite,
}

MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "missing", "of-type"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"missing", "identifier"},  # plus a type name
    "uri": {"above", "below", "missing"},
    "composite": {"missing"},
}

#: a chain's target ids are looked up first and bound as values when at most this many
RESOLVE_LIMIT = 1000


def _sub(*cols: Any) -> Select[Any]:
    """A subquery that never correlates: nested levels may reuse the same tables."""
    return select(*cols).correlate(None)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class UnknownParameter(InvalidInput):
    """A search parameter this server does not know (ignored unless handling=strict)."""


class ConditionBuilder:
    """Builds conditions for one resource type; chains and ``_has`` recurse into others."""

    def __init__(
        self,
        store: FhirStore,
        *,
        base_url: str = "",
        can_search: Callable[[str], bool] = lambda _t: True,
        conn: Connection | None = None,
    ) -> None:
        """``conn``: a read connection used to resolve small chain target sets up front on
        PostgreSQL (see :meth:`_resolved`); without it chains stay subqueries."""
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.can_search = can_search
        self.conn = conn
        self._custom_plans = False

    # -- entry points -------------------------------------------------------------------------
    def filter(
        self, res_type: str, flt: Filter, lid_col: Any = R.c.lid, *, correlated: bool = False
    ) -> Any:
        """SQL condition for one filter. ``correlated``: test each candidate row (EXISTS)
        rather than collect the matching set (IN); the engine uses it for all but the most
        selective filter of a search."""
        if flt.has is not None:
            return self._has(res_type, flt, lid_col)
        if flt.name == "_id":
            return self._id(flt, res_type)
        if flt.name == "_lastUpdated":
            return self._last_updated(flt)
        sp = self.store.registry.get(res_type, flt.name)
        if sp is None:
            raise UnknownParameter(f"unknown search parameter '{flt.name}' for {res_type}")
        pid = self.store.params.pid(res_type, flt.name)
        if pid is None:
            raise UnknownParameter(f"search parameter '{flt.name}' is not indexed")
        if flt.chain is not None:
            return self._chain(res_type, sp, pid, flt, lid_col)
        table = TYPE_TABLE.get(sp.type)
        if table is None:
            raise InvalidInput(f"search parameter type '{sp.type}' is not supported")
        mod = flt.modifier
        if mod == "missing":
            if flt.values not in (["true"], ["false"]):
                raise InvalidInput(":missing takes true or false")
            present = _sub(table.c.lid).where(table.c.pid == pid)
            return lid_col.not_in(present) if flt.values == ["true"] else lid_col.in_(present)
        if (
            mod is not None
            and mod not in MODIFIERS[sp.type]
            and not (sp.type == "reference" and mod in self.store.resource_types)
        ):
            raise InvalidInput(f"modifier :{mod} is not supported on {sp.type} parameters")
        if mod == "not":
            positive = Filter(flt.name, None, flt.values)
            return not_(self.filter(res_type, positive, lid_col))
        if mod == "of-type":
            return lid_col.in_(self._of_type(pid, flt.values))
        if mod == "identifier" and sp.type == "reference":
            # Reference.identifier is indexed as a token under the reference parameter
            tok = schema.idx_token
            ors_id = [self._token(tok, None, v) for v in flt.values if v]
            return lid_col.in_(_sub(tok.c.lid).where(tok.c.pid == pid, or_(*ors_id)))
        ors = [self._value(sp, pid, table, mod, v) for v in flt.values if v != ""]
        if not ors:
            raise InvalidInput(f"search parameter '{flt.name}' has an empty value")
        if correlated:
            # a check per candidate row through the (lid, pid) index, instead of
            # materialising every matching lid of a broad filter (dates, quantities)
            return exists(
                select(literal(1)).where(table.c.lid == lid_col, table.c.pid == pid, or_(*ors))
            )
        sub: Select[Any] = _sub(table.c.lid).where(table.c.pid == pid, or_(*ors))
        return lid_col.in_(sub)

    # -- per type -----------------------------------------------------------------------------
    def _value(self, sp: SearchParam, pid: int, table: Any, mod: str | None, raw: str) -> Any:
        t = sp.type
        if t == "string":
            return self._string(table, mod, unescape(raw))
        if t == "token":
            return self._token(table, mod, raw)
        if t == "date":
            prefix, text = split_prefix(raw)
            qlo, qhi = parse_date_param(text)
            return range_condition(prefix, qlo, qhi, table.c.low, table.c.high)
        if t == "number":
            prefix, text = split_prefix(raw)
            lo, hi, v = number_range(text)
            return value_condition(prefix, lo, hi, v, table.c.value)
        if t == "quantity":
            return self._quantity(table, raw)
        if t == "reference":
            return self._reference(sp, table, mod, unescape(raw))
        if t == "uri":
            return self._uri(table, mod, unescape(raw))
        if t == "composite":
            return self._composite(sp, table, raw)
        raise InvalidInput(f"search parameter type '{t}' is not supported")

    def _string(self, table: Any, mod: str | None, text: str) -> Any:
        if mod == "exact":
            return table.c.exact == text
        norm = _like_escape(normalize_string(text))
        if mod == "contains":
            return table.c.norm.like(f"%{norm}%", escape="\\")
        return table.c.norm.like(f"{norm}%", escape="\\")

    def _token(self, table: Any, mod: str | None, raw: str) -> Any:
        if mod == "text":
            norm = _like_escape(normalize_string(unescape(raw)))
            return table.c.text.like(f"{norm}%", escape="\\")
        parts = split_escaped(raw, "|")
        if len(parts) == 1:
            return table.c.code == unescape(parts[0])
        if len(parts) != 2:
            raise InvalidInput("a token search value is [system]|[code]")
        system, code = unescape(parts[0]), unescape(parts[1])
        conds: list[Any] = []
        conds.append(table.c.system.is_(None) if system == "" else table.c.system == system)
        if code:
            conds.append(table.c.code == code)
        return and_(*conds)

    def _of_type(self, pid: int, values: list[str]) -> Select[Any]:
        t = schema.idx_idtype
        ors: list[Any] = []
        for raw in values:
            parts = [unescape(p) for p in split_escaped(raw, "|")]
            if len(parts) != 3 or not parts[1] or not parts[2]:
                raise InvalidInput(":of-type takes system|code|value")
            cond = and_(t.c.tcode == parts[1], t.c.value == parts[2])
            if parts[0]:
                cond = and_(cond, t.c.tsystem == parts[0])
            ors.append(cond)
        return _sub(t.c.lid).where(t.c.pid == pid, or_(*ors))

    def _quantity(self, table: Any, raw: str) -> Any:
        parts = [unescape(p) for p in split_escaped(raw, "|")]
        if len(parts) not in (1, 3):
            raise InvalidInput("a quantity search value is [prefix]number[|system|code]")
        prefix, num = split_prefix(parts[0])
        lo, hi, v = number_range(num)
        cond = value_condition(prefix, lo, hi, v, table.c.value)
        if len(parts) == 3:
            system, code = parts[1], parts[2]
            if system:
                cond = and_(cond, table.c.system == system, table.c.code == code)
            elif code:
                cond = and_(cond, or_(table.c.code == code, table.c.unit == code))
        return cond

    def _split_reference(self, raw: str) -> tuple[str | None, str | None, str | None]:
        """(type, id, url) of a reference search value."""
        text = raw
        if self.base_url and text.startswith(self.base_url + "/"):
            text = text[len(self.base_url) + 1 :]
        if "://" in text or text.startswith(("urn:", "#")):
            return None, None, text
        parts = text.split("/")
        if len(parts) >= 4 and parts[2] == "_history":
            parts = parts[:2]
        if len(parts) == 2 and parts[0] in self.store.resource_types:
            return parts[0], parts[1], None
        if len(parts) == 1:
            return None, parts[0], None
        raise InvalidInput("a reference search value is id, Type/id or an absolute URL")

    def _reference(self, sp: SearchParam, table: Any, mod: str | None, raw: str) -> Any:
        rtype, rid, url = self._split_reference(raw)
        if url is not None:
            base, _, version = url.partition("|")
            return or_(table.c.url == url, table.c.url == base) if version else table.c.url == url
        conds: list[Any] = [table.c.tid == rid]
        want = mod or rtype
        if mod and rtype and mod != rtype:
            return false()
        if want:
            conds.append(table.c.ttype == want)
        return and_(*conds)

    def _uri(self, table: Any, mod: str | None, text: str) -> Any:
        if mod == "below":
            return table.c.uri.like(f"{_like_escape(text)}%", escape="\\")
        if mod == "above":
            return literal(text).like(table.c.uri + "%")
        return table.c.uri == text

    def _composite(self, sp: SearchParam, table: Any, raw: str) -> Any:
        vals = split_escaped(raw, "$")
        if len(vals) != len(sp.components) or len(vals) < 2:
            raise InvalidInput(f"composite value needs {len(sp.components)} parts joined by $")
        conds: list[Any] = []
        for i, (comp_code, _expr) in enumerate(sp.components[:2]):
            comp = self.store.registry.get(sp.base, comp_code)
            ctype = comp.type if comp is not None else "token"
            a, b = table.c[f"c{i + 1}a"], table.c[f"c{i + 1}b"]
            lo, hi = table.c[f"c{i + 1}lo"], table.c[f"c{i + 1}hi"]
            conds.append(self._component(ctype, vals[i], a, b, lo, hi))
        return and_(*conds)

    def _component(self, ctype: str, raw: str, a: Any, b: Any, lo: Any, hi: Any) -> Any:
        if ctype in ("token", "reference"):
            parts = [unescape(p) for p in split_escaped(raw, "|")]
            if len(parts) == 1:
                return b == parts[0]
            cond = b == parts[1] if parts[1] else true()
            return and_(a.is_(None) if parts[0] == "" else a == parts[0], cond)
        if ctype == "string":
            norm = _like_escape(normalize_string(unescape(raw)))
            return b.like(f"{norm}%", escape="\\")
        if ctype == "date":
            prefix, text = split_prefix(raw)
            qlo, qhi = parse_date_param(text)
            return range_condition(prefix, qlo, qhi, lo, hi)
        if ctype in ("quantity", "number"):
            parts = [unescape(p) for p in split_escaped(raw, "|")]
            prefix, num = split_prefix(parts[0])
            qlo, qhi, v = number_range(num)
            cond = value_condition(prefix, qlo, qhi, v, (lo + hi) / 2)
            if len(parts) == 3 and parts[2]:
                cond = and_(cond, b == parts[2])
                if parts[1]:
                    cond = and_(cond, a == parts[1])
            return cond
        return b == unescape(raw)

    # -- resource-level -----------------------------------------------------------------------
    def _id(self, flt: Filter, res_type: str) -> Any:
        if flt.modifier == "missing":
            return false() if flt.values == ["true"] else true()
        ids = [unescape(v) for v in flt.values if v]
        cond = R.c.res_id.in_(ids)
        return not_(cond) if flt.modifier == "not" else cond

    def _last_updated(self, flt: Filter) -> Any:
        ors = []
        for raw in flt.values:
            prefix, text = split_prefix(raw)
            qlo, qhi = parse_date_param(text)
            ors.append(range_condition(prefix, qlo, qhi, R.c.last_updated, R.c.last_updated))
        return or_(*ors)

    # -- chains ---------------------------------------------------------------------------------
    def _targets(self, sp: SearchParam, type_modifier: str | None, chained: str) -> list[str]:
        if type_modifier:
            if sp.targets and type_modifier not in sp.targets:
                raise InvalidInput(f"{type_modifier} is not a target of '{sp.code}'")
            return [type_modifier]
        head = chained.split(".", 1)[0].split(":", 1)[0]
        targets = [t for t in sp.targets if self.store.registry.get(t, head) is not None]
        if not targets:
            raise InvalidInput(f"no target type of '{sp.code}' has a parameter '{head}'")
        return targets

    def _chain(self, res_type: str, sp: SearchParam, pid: int, flt: Filter, lid_col: Any) -> Any:
        if sp.type != "reference":
            raise InvalidInput(f"'{flt.name}' is not a reference parameter; it cannot be chained")
        assert flt.chain is not None
        head, _, rest = flt.chain.partition(".")
        name, _, modifier = head.partition(":")
        ref = schema.idx_reference
        ors: list[Any] = []
        for target in self._targets(sp, flt.modifier, flt.chain):
            if not self.can_search(target):
                raise Forbidden(f"the token does not allow searching {target}")
            inner = Filter(name, modifier or None, flt.values, chain=rest or None)
            target_ids = _sub(R.c.res_id).where(
                R.c.res_type == target,
                R.c.deleted == False,  # noqa: E712
                self.filter(target, inner, R.c.lid),
            )
            tids = self._resolved(ref.c.tid, target_ids)
            refs = _sub(ref.c.lid).where(ref.c.pid == pid, ref.c.ttype == target, tids)
            ors.append(lid_col.in_(refs))
        return or_(*ors)

    def _resolved(self, col: Any, sub: Select[Any]) -> Any:
        """``col IN (sub)``, with ``sub`` run first when it yields at most ``RESOLVE_LIMIT``
        values: those are bound as literals, so the planner sees how many there are (through
        a nested subquery PostgreSQL guesses ~1 row and fetches every match in full to sort
        them). Same rows either way; the lookup runs in the search's own transaction."""
        if self.conn is None or self.conn.dialect.name != "postgresql":
            # SQLite plans the nested subquery well; the lookup only added ~0.2 ms there
            return col.in_(sub)
        values = self.conn.execute(sub.limit(RESOLVE_LIMIT + 1)).scalars().all()
        if len(values) > RESOLVE_LIMIT:
            return col.in_(sub)
        if not values:
            return false()
        if not self._custom_plans:
            # psycopg prepares a statement run 5 times, and PostgreSQL then may switch to one
            # generic plan that ignores the values (at 1 M: 23 ms instead of 3.5 ms here)
            self.conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            self._custom_plans = True
        return col.in_(sorted(set(values)))

    def _has(self, res_type: str, flt: Filter, lid_col: Any) -> Any:
        assert flt.has is not None
        src, ref_param, rest = flt.has
        if src not in self.store.resource_types:
            raise InvalidInput("_has names an unknown resource type")
        if not self.can_search(src):
            raise Forbidden(f"the token does not allow searching {src}")
        sp = self.store.registry.get(src, ref_param)
        pid = self.store.params.pid(src, ref_param)
        if sp is None or pid is None or sp.type != "reference":
            raise InvalidInput(f"'{ref_param}' is not a reference parameter of {src}")
        if rest.startswith("_has:"):
            inner = Filter("_has", None, flt.values, has=parse_has(rest))
        else:
            name, _, modifier = rest.partition(":")
            head, _, chain = name.partition(".")
            inner = Filter(head, modifier or None, flt.values, chain=chain or None)
        src_lids = _sub(R.c.lid).where(
            R.c.res_type == src,
            R.c.deleted == False,  # noqa: E712
            self.filter(src, inner, R.c.lid),
        )
        ref = schema.idx_reference
        target_ids = _sub(ref.c.tid).where(
            ref.c.pid == pid, ref.c.ttype == res_type, ref.c.lid.in_(src_lids)
        )
        return R.c.res_id.in_(target_ids)
