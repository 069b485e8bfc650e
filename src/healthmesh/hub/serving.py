"""Serve an ASGI app with uvicorn in a background thread (the demo runs a hub and several
nodes in one process this way; tests use it for real-HTTP end-to-end runs)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from healthmesh.errors import HealthmeshError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving ``app`` at ``host:port`` in a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        log_level: str = "warning",
        certfile: Path | None = None,
        keyfile: Path | None = None,
        name: str = "server",
    ) -> None:
        """``certfile``/``keyfile``: serve HTTPS with them; ``name`` says what in errors."""
        self.host, self.port, self.name = host, port, name
        self.scheme = "https" if certfile is not None else "http"
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            ws="none",
            ssl_certfile=None if certfile is None else str(certfile),
            ssl_keyfile=None if keyfile is None else str(keyfile),
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True, name=f"{name}-{port}")

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise HealthmeshError(f"the {self.name} on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
