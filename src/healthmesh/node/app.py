"""Compose a node: store, token service, client registry, audit trail and the HTTP app."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request

from healthmesh import __version__
from healthmesh.access.clients import ClientRegistry
from healthmesh.access.keys import load_or_create_signing_key
from healthmesh.access.router import bearer_dependency, create_auth_router
from healthmesh.access.tokens import TokenService
from healthmesh.fhir.api.app import create_fhir_router, install_error_handlers
from healthmesh.fhir.api.context import Api
from healthmesh.fhir.store import FhirStore
from healthmesh.node.audit import AuditRecorder
from healthmesh.node.settings import NodeSettings

log = logging.getLogger(__name__)


@dataclass
class Node:
    """Everything one node process holds."""

    settings: NodeSettings
    store: FhirStore
    clients: ClientRegistry
    tokens: TokenService
    audit: AuditRecorder
    app: FastAPI

    @property
    def fhir_base(self) -> str:
        return self.settings.base_url() + "/fhir"

    @property
    def token_url(self) -> str:
        return self.settings.base_url() + "/auth/token"

    def issue_token(self, client_id: str) -> str:
        """A token carrying a registered client's scopes (for the demo and operators)."""
        record = self.clients.get(client_id)
        token, _ = self.tokens.issue(record.client_id, record.scopes)
        return token

    def close(self) -> None:
        self.audit.stop()
        self.store.close()


def build_node(settings: NodeSettings, *, store: FhirStore | None = None) -> Node:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = store or FhirStore(settings.database())
    base = settings.base_url()
    key = load_or_create_signing_key(settings.data_dir / "node-signing-key.pem")
    tokens = TokenService(
        key,
        issuer=base + "/auth",
        audience=base + "/fhir",
        lifetime_s=settings.token_lifetime,
    )
    clients = ClientRegistry(store.db.write_engine)
    audit = AuditRecorder(
        store, source_site=settings.institution, interval=settings.audit_flush_interval
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        audit.start()
        try:
            yield
        finally:
            audit.stop()

    app = FastAPI(
        title=f"healthmesh node ({settings.institution})",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_error_handlers(app)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Any) -> Any:
        # Our own access log: method, path and status only. Query strings carry search values
        # (names, identifiers), so uvicorn's access log is switched off where we run uvicorn.
        start = time.perf_counter()
        response = await call_next(request)
        log.info(
            "%s %s %d %.1fms",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - start) * 1000,
        )
        return response
    api = Api(
        store=store,
        audit=audit,
        public_base=base + "/fhir",
        max_body=settings.max_body,
        export_dir=settings.data_dir / "exports",
    )
    rights = bearer_dependency(tokens, registry=clients)
    token_url = base + "/auth/token"
    app.include_router(create_auth_router(clients, tokens, token_url=token_url))
    app.include_router(create_fhir_router(api, rights, token_url=token_url), prefix="/fhir")
    return Node(settings, store, clients, tokens, audit, app)
