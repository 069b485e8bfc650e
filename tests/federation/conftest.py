"""Fixtures of the federation tests: an injectable clock and database URLs per backend."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from healthmesh.federation.hub_routes import create_federation_router
from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import InstitutionMetadata
from healthmesh.federation.nonces import SqlNonceStore
from healthmesh.federation.queue import MemoryTaskQueue, SqlTaskQueue, TaskQueue
from healthmesh.federation.registry import (
    InstitutionRegistry,
    MemoryRegistry,
    SqlRegistry,
)
from healthmesh.federation.signing import MemoryNonceStore, NonceStore
from healthmesh.federation.transport import (
    HttpTransport,
    HubEndpoint,
    InProcessTransport,
)
from healthmesh.federation.transport._client import SignedClient
from healthmesh.hub.serving import free_port


class Clock:
    """A settable clock (POSIX seconds) for queue, registry and signature windows."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None for the in-memory twin, else a database URL (SQLite file or PostgreSQL schema)."""
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return str(tmp_path / "fed.sqlite")
    return str(request.getfixturevalue("pg_url"))


# ---- a hub endpoint reachable in-process, through Starlette's TestClient or a real server ----
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

META = InstitutionMetadata(name="Hospital A", kind="hospital", classification=2)


@dataclass
class Fed:
    """A hub endpoint and a way for nodes to reach it."""

    hub: Identity
    endpoint: HubEndpoint
    registry: InstitutionRegistry
    queue: TaskQueue
    connect: Callable[..., SignedClient]
    published: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def approved_node(self, name: str = "hosp-a") -> tuple[Identity, SignedClient]:
        ident = Identity.generate(name)
        t = self.connect(ident)
        t.register(ident.public_record(), META)
        self.registry.approve(name, "op")
        return ident, t


@pytest.fixture(
    params=["inprocess", "inprocess-sqlite", "inprocess-postgres", "testclient", "uvicorn"]
)
def fed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fed]:
    """The transport contract's hub, over each way a node can reach it."""
    hub = Identity.generate("hub")
    registry: InstitutionRegistry
    queue: TaskQueue
    nonces: NonceStore
    if request.param in ("inprocess-sqlite", "inprocess-postgres"):
        sqlite = str(tmp_path / "hub.sqlite")
        db = sqlite if request.param.endswith("sqlite") else request.getfixturevalue("pg_url")
        registry, queue, nonces = SqlRegistry(db), SqlTaskQueue(db), SqlNonceStore(db)
    else:
        registry, queue, nonces = MemoryRegistry(), MemoryTaskQueue(), MemoryNonceStore()
    published: list[tuple[str, str, dict[str, Any]]] = []
    endpoint = HubEndpoint(
        hub,
        queue,
        registry,
        nonces,
        on_publish=lambda i, k, b: published.append((i, k, b)),
        lease_s=0.5,
        poll_interval_s=0.05,
    )
    clients: list[Any] = []
    server = None
    if request.param.startswith("inprocess"):

        def connect(ident: Identity, **kw: Any) -> SignedClient:
            return InProcessTransport(ident, endpoint, **kw)

    else:
        app = FastAPI()
        app.include_router(create_federation_router(endpoint), prefix="/api")
        if request.param == "testclient":
            base = "http://testserver/api"

            def make_client() -> Any:
                c = TestClient(app)
                clients.append(c)
                return c

        else:
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(
                    app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
                )
            )
            threading.Thread(target=server.run, daemon=True).start()
            deadline = time.time() + 20
            while not server.started and time.time() < deadline:
                time.sleep(0.02)
            assert server.started
            base = f"http://127.0.0.1:{port}/api"

            def make_client() -> Any:
                return None

        def connect(ident: Identity, **kw: Any) -> SignedClient:
            kw.setdefault("hub_key_id", hub.key_id)
            t = HttpTransport(ident, base, client=make_client(), **kw)
            clients.append(t)
            return t

    yield Fed(hub, endpoint, registry, queue, connect, published)
    for c in clients:
        c.close()
    if server is not None:
        server.should_exit = True
