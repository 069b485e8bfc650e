"""Hub configuration: flags override environment variables (``HEALTHMESH_HUB_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".healthmesh-hub"


class HubSettings(BaseSettings):
    """Settings of one hub process. Every field is also ``HEALTHMESH_HUB_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HEALTHMESH_HUB_", extra="ignore")

    #: the hub's own identifier (actor of its ledger entries)
    hub_id: str = "hub"
    #: data directory: SQLite file and keys
    data_dir: Path = Field(default_factory=default_data_dir)
    #: database: a SQLite path or a postgresql:// URL; default <data_dir>/hub.sqlite
    db: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    #: public base URL of the hub as researchers and nodes see it (default http://host:port)
    public_url: str | None = None
    #: access-token lifetime in seconds
    token_lifetime: int = 600
    #: how long a federated computation waits for the nodes' results of one round, seconds
    job_timeout: float = 60.0
    #: witness quorum of the ledger's checkpoints (0: the log signature alone)
    ledger_quorum: int = 0

    def database(self) -> str:
        return self.db or str(self.data_dir / "hub.sqlite")

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
