"""Batch and transaction Bundles (R4 http.html#transaction).

A transaction is atomic: every entry runs inside one database transaction, in the order the
specification sets (DELETE, POST, PUT/PATCH, then GET), with ``urn:uuid:`` full URLs and
conditional references (``Patient?identifier=...``) resolved to the ids they end up with.
A batch runs each entry on its own and reports each outcome.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from healthmesh.errors import HealthmeshError, InvalidInput, NotFound, PreconditionFailed
from healthmesh.fhir.store.records import Stored, WriteResult, instant, new_id, parse_etag
from healthmesh.fhir.store.writes import WriteTx

if TYPE_CHECKING:
    from healthmesh.fhir.store.store import FhirStore

Authorize = Callable[[str, str], None]
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


class EntryError(HealthmeshError):
    """An entry of a transaction failed; the whole transaction was rolled back."""

    def __init__(self, index: int, cause: HealthmeshError) -> None:
        loc = f"Bundle.entry[{index}]"
        if cause.location:
            loc += "." + cause.location.split(".", 1)[-1] if "." in cause.location else ""
        super().__init__(f"entry {index}: {cause.message}", location=loc)
        self.status = cause.status
        self.code = cause.code
        self.cause = cause


@dataclass
class Entry:
    index: int
    method: str
    url: str
    resource: Any
    full_url: str | None
    if_none_exist: str | None = None
    if_match: str | None = None
    res_type: str = ""
    res_id: str | None = None
    query: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    #: (ts, content, index rows) when validated and indexed ahead of writing
    prepared: tuple[float, bytes, Any] | None = None


def _parse_entries(bundle: Any, store: FhirStore) -> tuple[str, list[Entry]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidInput("expected a Bundle", location="Bundle")
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise InvalidInput("Bundle.type must be transaction or batch", location="Bundle.type")
    raw = bundle.get("entry") or []
    if not isinstance(raw, list):
        raise InvalidInput("Bundle.entry must be an array", location="Bundle.entry")
    entries: list[Entry] = []
    for i, e in enumerate(raw):
        loc = f"Bundle.entry[{i}]"
        req = e.get("request") if isinstance(e, dict) else None
        if (
            not isinstance(req, dict)
            or not isinstance(req.get("method"), str)
            or not isinstance(req.get("url"), str)
        ):
            raise InvalidInput("entry needs request.method and request.url", location=loc)
        method = req["method"].upper()
        if method not in ORDER:
            raise InvalidInput("unsupported request.method", location=f"{loc}.request.method")
        ent = Entry(
            i,
            method,
            req["url"],
            e.get("resource"),
            e.get("fullUrl"),
            req.get("ifNoneExist"),
            req.get("ifMatch"),
        )
        path, _, query = ent.url.partition("?")
        parts = [p for p in urlsplit(path).path.split("/") if p]
        if not parts:
            raise InvalidInput("request.url names no resource type", location=f"{loc}.request.url")
        ent.res_type = parts[0]
        ent.res_id = parts[1] if len(parts) > 1 else None
        ent.query = query or None
        if method != "GET" and ent.res_type not in store.resource_types:
            raise InvalidInput(
                "unknown resource type in request.url", location=f"{loc}.request.url"
            )
        if method in ("POST", "PUT") and not isinstance(ent.resource, dict):
            raise InvalidInput("POST/PUT entries need a resource", location=f"{loc}.resource")
        entries.append(ent)
    return kind, entries


def _has_conditional_ref(node: Any) -> bool:
    """Whether a resource holds a conditional reference such as ``Patient?identifier=x``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                if "?" in value and not value.startswith(("http:", "https:", "urn:")):
                    return True
            elif isinstance(value, dict | list) and _has_conditional_ref(value):
                return True
    elif isinstance(node, list):
        return any(_has_conditional_ref(item) for item in node)
    return False


def _rewrite_refs(node: Any, resolve: Callable[[str], str | None]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                new = resolve(value)
                if new is not None:
                    node[key] = new
            else:
                _rewrite_refs(value, resolve)
    elif isinstance(node, list):
        for item in node:
            _rewrite_refs(item, resolve)


def _response(result: WriteResult | None, status: str) -> dict[str, Any]:
    if result is None:
        return {"status": status}
    s: Stored = result.stored
    return {
        "status": status,
        "location": s.location,
        "etag": s.etag,
        "lastModified": instant(s.last_updated),
    }


class BundleProcessor:
    """Runs batch/transaction bundles against a store. ``authorize(type, interaction)`` raises
    when the caller may not perform an interaction; ``read`` serves GET entries."""

    def __init__(
        self,
        store: FhirStore,
        authorize: Authorize,
        get: Callable[[str], dict[str, Any]],
    ) -> None:
        self.store = store
        self.authorize = authorize
        self.get = get

    def process(self, bundle: Any) -> tuple[dict[str, Any], list[Stored]]:
        kind, entries = _parse_entries(bundle, self.store)
        for e in entries:
            self._authorize(e)
        written: list[Stored] = []
        if kind == "transaction":
            written = self._transaction(entries)
        else:
            for e in sorted(entries, key=lambda x: ORDER[x.method]):
                if e.method in ("GET", "HEAD"):
                    continue
                try:
                    with self.store.writing() as tx:
                        self._write(tx, e, {})
                        written.extend(tx.written)
                except HealthmeshError as exc:
                    e.response = {
                        "status": str(exc.status),
                        "outcome": {
                            "resourceType": "OperationOutcome",
                            "issue": [
                                {"severity": "error", "code": exc.code, "diagnostics": exc.message}
                            ],
                        },
                    }
        for e in entries:
            if e.method in ("GET", "HEAD"):
                e.response = self._get(e)
        out = {
            "resourceType": "Bundle",
            "type": f"{kind}-response",
            "entry": [
                {
                    "response": e.response,
                    **(
                        {"resource": e.response.pop("resource")} if "resource" in e.response else {}
                    ),
                }
                for e in entries
            ],
        }
        return out, written

    def _authorize(self, e: Entry) -> None:
        perm = {"DELETE": "d", "POST": "c", "PUT": "u", "PATCH": "u", "GET": "r", "HEAD": "r"}
        if e.method in ("GET", "HEAD"):
            return  # checked when served
        try:
            self.authorize(e.res_type, perm[e.method])
            if e.if_none_exist or e.query:
                self.authorize(e.res_type, "s")
        except HealthmeshError as exc:
            raise EntryError(e.index, exc) from None

    def _get(self, e: Entry) -> dict[str, Any]:
        try:
            return {"status": "200 OK", "resource": self.get(e.url)}
        except HealthmeshError as exc:
            return {
                "status": str(exc.status),
                "outcome": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": exc.code, "diagnostics": exc.message}],
                },
            }

    def _transaction(self, entries: list[Entry]) -> list[Stored]:
        ordered = sorted(entries, key=lambda x: ORDER[x.method])
        with self.store.writing() as tx:
            ids: dict[str, str] = {}
            for e in ordered:
                try:
                    if e.method == "DELETE":
                        self._write(tx, e, ids)
                    elif e.method == "POST":
                        self._plan_post(tx, e, ids)
                    elif e.method in ("PUT", "PATCH") and e.full_url and e.res_id:
                        ids[e.full_url] = f"{e.res_type}/{e.res_id}"
                except HealthmeshError as exc:
                    raise EntryError(e.index, exc) from None

            def resolve(ref: str) -> str | None:
                if ref in ids:
                    return ids[ref]
                if "?" in ref and not ref.startswith(("http:", "https:", "urn:")):
                    rtype, _, query = ref.partition("?")
                    found = tx.match(rtype, query)
                    if len(found) != 1:
                        raise PreconditionFailed(
                            f"conditional reference matched {len(found)} resources, not one"
                        )
                    return f"{rtype}/{found[0].res_id}"
                if ref.startswith("urn:uuid:"):
                    raise InvalidInput("a urn:uuid reference resolves to no entry of the bundle")
                return None

            if not any(_has_conditional_ref(e.resource) for e in ordered):
                self._prepare_posts(tx, ordered, resolve)
            for e in ordered:
                if e.method == "DELETE":
                    continue
                try:
                    if isinstance(e.resource, dict) and e.prepared is None:
                        _rewrite_refs(e.resource, resolve)
                    self._write(tx, e, ids)
                except HealthmeshError as exc:
                    raise EntryError(e.index, exc) from None
            return list(tx.written)

    def _prepare_posts(
        self, tx: WriteTx, ordered: list[Entry], resolve: Callable[[str], str | None]
    ) -> None:
        """Rewrite references of the new resources and validate/index them all at once
        (on several cores for large bundles). Only when no entry holds a conditional
        reference: those must resolve against the entries written before them."""
        posts = [e for e in ordered if e.method == "POST" and not e.response]
        for e in posts:
            try:
                _rewrite_refs(e.resource, resolve)
            except HealthmeshError as exc:
                raise EntryError(e.index, exc) from None
        assert all(e.res_id is not None for e in posts)
        try:
            prepared = tx.prepare_new([(e.res_type, e.resource, str(e.res_id)) for e in posts])
        except HealthmeshError as exc:
            raise EntryError(posts[0].index, exc) from None
        for e, p in zip(posts, prepared, strict=True):
            if isinstance(p, HealthmeshError):
                raise EntryError(e.index, p)
            e.prepared = p

    def _plan_post(self, tx: WriteTx, e: Entry, ids: dict[str, str]) -> None:
        if e.if_none_exist:
            found = tx.match(e.res_type, e.if_none_exist)
            if len(found) > 1:
                raise PreconditionFailed("ifNoneExist matched more than one resource")
            if found:
                e.res_id = found[0].res_id
                e.response = _response(WriteResult(found[0], matched=True), "200 OK")
                if e.full_url:
                    ids[e.full_url] = f"{e.res_type}/{e.res_id}"
                return
        e.res_id = new_id()
        if e.full_url:
            ids[e.full_url] = f"{e.res_type}/{e.res_id}"

    def _write(self, tx: WriteTx, e: Entry, ids: dict[str, str]) -> None:
        if e.method == "DELETE":
            if e.res_id:
                with contextlib.suppress(NotFound):
                    tx.delete(e.res_type, e.res_id)
            elif e.query:
                tx.conditional_delete(e.res_type, e.query)
            e.response = {"status": "204 No Content"}
        elif e.method == "POST":
            if e.response:  # ifNoneExist matched: nothing to write
                return
            if e.res_id is None:  # batch: plan here
                self._plan_post(tx, e, ids)
                if e.response:
                    return
            assert e.res_id is not None
            result = tx._insert(e.res_type, e.resource, e.res_id, "POST", e.prepared)
            e.response = _response(result, "201 Created")
        elif e.method == "PUT":
            if e.res_id:
                result = tx.update(
                    e.res_type,
                    e.res_id,
                    e.resource,
                    if_match=parse_etag(e.if_match) if e.if_match else None,
                )
            elif e.query:
                result = tx.conditional_update(e.res_type, e.query, e.resource)
            else:
                raise InvalidInput("PUT needs Type/id or a conditional URL")
            e.response = _response(result, "201 Created" if result.created else "200 OK")
        elif e.method == "PATCH":
            if not e.res_id:
                raise InvalidInput("PATCH needs Type/id")
            ops = e.resource
            if isinstance(ops, dict) and ops.get("resourceType") == "Binary":
                import base64

                import orjson

                ops = orjson.loads(base64.b64decode(ops.get("data", "")))
            result = tx.patch(
                e.res_type,
                e.res_id,
                ops,
                if_match=parse_etag(e.if_match) if e.if_match else None,
            )
            e.response = _response(result, "200 OK")
