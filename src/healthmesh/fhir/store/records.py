"""Values the store hands out: stored resource versions and write outcomes."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from healthmesh.errors import InvalidInput

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def new_id() -> str:
    return str(uuid.uuid4())


def check_id(res_id: str) -> str:
    if not ID_RE.match(res_id):
        raise InvalidInput("resource id must match [A-Za-z0-9-.]{1,64}", location="id")
    return res_id


def instant(ts: float) -> str:
    """FHIR instant for a POSIX timestamp, millisecond precision, UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def http_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


@dataclass(frozen=True)
class Stored:
    """One stored version of a resource (``content`` is its JSON, ``None`` when deleted)."""

    lid: int
    res_type: str
    res_id: str
    version: int
    last_updated: float
    deleted: bool
    method: str
    content: bytes | None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def location(self) -> str:
        return f"{self.res_type}/{self.res_id}/_history/{self.version}"

    def resource(self) -> dict[str, Any]:
        if self.content is None:
            return {}
        value: dict[str, Any] = orjson.loads(self.content)
        return value


@dataclass(frozen=True)
class WriteResult:
    """Outcome of a write: the stored version and whether it created, changed or matched."""

    stored: Stored
    created: bool = False
    #: conditional create matched an existing resource (nothing written)
    matched: bool = False


def stored_from_row(row: Any) -> Stored:
    content = row.content
    if content is not None and not isinstance(content, bytes):
        content = bytes(content)
    return Stored(
        lid=int(row.lid),
        res_type=row.res_type,
        res_id=row.res_id,
        version=int(row.version),
        last_updated=float(row.last_updated),
        deleted=bool(row.deleted),
        method=row.method,
        content=content,
    )


def parse_etag(value: str) -> int:
    """Version number from an ETag / If-Match value such as ``W/"3"``."""
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise InvalidInput('If-Match must be a version ETag such as W/"3"')
    return int(text)
