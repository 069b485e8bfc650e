"""The hub's ledger HTTP API as a FastAPI ``APIRouter`` factory.

Reads are public (anyone may audit the log); writes — appends and cosignature submissions —
must be signed by a registered institution key (:mod:`.auth`). Errors become
``{"status", "code", "message"}`` JSON with the error's HTTP status; messages never contain
entry contents.

===========================  =====================================================
``POST /entries``            append ``{"entries": [event, ...]}`` (signed)
``GET  /checkpoint``         latest cosigned checkpoint (signed note, text/plain)
``GET  /checkpoint/{size}``  checkpoint of one size
``GET  /entries/{index}``    one entry (canonical JSON) and its leaf hash
``GET  /proof/inclusion``    ``?index=&size=``
``GET  /proof/consistency``  ``?old=&new=``
``GET  /proof/bundle``       ``?index=``: self-contained offline-verifiable proof
``POST /cosignatures/{size}`` witness cosignature lines (signed, text/plain)
===========================  =====================================================
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from healthmesh.errors import HealthmeshError, InvalidInput, PayloadTooLarge
from healthmesh.ledger.bundle import make_bundle
from healthmesh.ledger.hashing import leaf_hash
from healthmesh.ledger.service import LedgerService

T = TypeVar("T")
MAX_BODY = 16 * 1024 * 1024
NOTE_MEDIA = "text/plain; charset=utf-8"


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in items]


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except HealthmeshError as exc:
        raise HTTPException(
            exc.status, {"status": exc.status, "code": exc.code, "message": exc.message}
        ) from exc


async def _authenticated(service: LedgerService, request: Request) -> tuple[str, bytes]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(
            413, {"status": 413, "code": PayloadTooLarge.code, "message": "request body too large"}
        )
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    inst = _guard(lambda: service.auth.authenticate(request.method, path, request.headers, body))
    return inst, body


def create_router(service: LedgerService) -> APIRouter:
    """Routes of the ledger API bound to ``service``; mount with a prefix such as
    ``app.include_router(create_router(svc), prefix="/ledger")``."""
    router = APIRouter(tags=["ledger"])

    @router.post("/entries")
    async def append(request: Request) -> JSONResponse:
        inst, body = await _authenticated(service, request)

        def run() -> dict[str, Any]:
            try:
                doc = json.loads(body)
            except ValueError as exc:
                raise InvalidInput("body is not JSON") from exc
            events = doc.get("entries") if isinstance(doc, dict) else None
            if not isinstance(events, list) or not events:
                raise InvalidInput('body must be {"entries": [event, ...]}')
            idx = service.append_as(inst, events)
            return {"indexes": idx, "size": idx[-1] + 1}

        return JSONResponse(await run_in_threadpool(_guard, run), status_code=201)

    @router.get("/checkpoint")
    def latest_checkpoint() -> PlainTextResponse:
        size, note = _guard(lambda: service.log.checkpoint())
        if size < service.log.size():
            size, _ = _guard(service.log.publish_checkpoint)
            size, note = _guard(lambda: service.log.checkpoint(size))
        return PlainTextResponse(note, media_type=NOTE_MEDIA)

    @router.get("/checkpoint/{size}")
    def checkpoint_at(size: int) -> PlainTextResponse:
        return PlainTextResponse(
            _guard(lambda: service.log.checkpoint(size))[1], media_type=NOTE_MEDIA
        )

    @router.get("/entries/{index}")
    def entry(index: int) -> dict[str, Any]:
        raw = _guard(lambda: service.log.entry(index))
        return {
            "index": index,
            "entry": json.loads(raw),
            "leaf_hash": base64.b64encode(leaf_hash(raw)).decode(),
        }

    @router.get("/proof/inclusion")
    def inclusion(index: int, size: int | None = None) -> dict[str, Any]:
        n = size if size is not None else service.log.size()
        proof = _guard(lambda: service.log.inclusion_proof(index, n))
        return {"index": index, "size": n, "hashes": _b64(proof)}

    @router.get("/proof/consistency")
    def consistency(old: int, new: int | None = None) -> dict[str, Any]:
        n = new if new is not None else service.log.size()
        proof = _guard(lambda: service.log.consistency_proof(old, n))
        return {"old": old, "new": n, "hashes": _b64(proof)}

    @router.get("/proof/bundle")
    def bundle(index: int, size: int | None = None) -> dict[str, Any]:
        return _guard(lambda: make_bundle(service.log, index, size))

    @router.post("/cosignatures/{size}")
    async def cosign(size: int, request: Request) -> dict[str, Any]:
        inst, body = await _authenticated(service, request)
        try:
            lines = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPException(
                400, {"status": 400, "code": "invalid", "message": "body is not UTF-8"}
            ) from exc
        names = _guard(lambda: service.add_cosignature_as(inst, size, lines))
        return {"size": size, "cosigners": names, "final": service.log.is_final(size)}

    return router
