"""Node configuration: flags override environment variables (``HEALTHMESH_NODE_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".healthmesh"


class NodeSettings(BaseSettings):
    """Settings of one node process. Every field is also ``HEALTHMESH_NODE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HEALTHMESH_NODE_", extra="ignore")

    #: institution identifier (used as the audit source and in the ledger)
    institution: str = "node"
    #: data directory: SQLite file, keys, bulk export files
    data_dir: Path = Field(default_factory=default_data_dir)
    #: database: a SQLite path or a postgresql:// URL; default <data_dir>/node.sqlite
    db: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    #: public base URL of the server as clients see it (default http://host:port)
    public_url: str | None = None
    #: access-token lifetime in seconds
    token_lifetime: int = 300
    #: largest accepted request body, bytes
    max_body: int = 64 * 1024 * 1024
    #: how often buffered AuditEvents are written, seconds
    audit_flush_interval: float = 0.5
    #: the hub this node's agent polls (federation); none: the node takes part in no studies
    hub_url: str | None = None
    #: the hub's federation key id, compared with what the hub presents (pinning)
    hub_key_id: str | None = None
    #: what the institution is (hospital, clinic, cdc) and its data classification level 1-4
    kind: str = "hospital"
    classification: int = 2
    #: algorithms this node approves without its operator (comma-separated in the environment)
    auto_approve: str = "count,crosstab"

    def auto_approved(self) -> list[str]:
        return [a.strip() for a in self.auto_approve.split(",") if a.strip()]

    def database(self) -> str:
        return self.db or str(self.data_dir / "node.sqlite")

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
