"""The hub's data catalog: the latest metadata-only entry each institution published
(resource counts by type, date ranges, frequent codes, quality, classification level; see
:mod:`healthmesh.node.catalog`), searchable by resource type, code and institution kind.

Entries arrive signed through the federation transport (``publish("catalog", entry)``); the
hub keeps them as published and never asks a node for more than they say.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from healthmesh.db import apply_migrations
from healthmesh.errors import InvalidInput
from healthmesh.hub import tables as t

MAX_ENTRY_BYTES = 2 * 1024 * 1024


def _codes(doc: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for item in doc.get("codes", []) or []:
        if isinstance(item, Mapping):
            system, code = item.get("system"), item.get("code")
            if code is not None:
                out.append(f"{system or ''}|{code}")
        elif isinstance(item, str):
            out.append(item)
    return out


def _types(doc: Mapping[str, Any]) -> set[str]:
    for key in ("resource_counts", "resources", "counts"):
        value = doc.get(key)
        if isinstance(value, Mapping):
            return {str(k) for k in value}
    return set()


class Catalog:
    """Catalog entries in SQL (component ``hub_studies``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        apply_migrations(engine, t.COMPONENT, t.MIGRATIONS)

    def publish(self, institution: str, entry: Mapping[str, Any]) -> None:
        """Replace the institution's entry with a newly published one."""
        text = json.dumps(dict(entry), sort_keys=True)
        if len(text) > MAX_ENTRY_BYTES:
            raise InvalidInput("catalog entry too large")
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            done = conn.execute(
                t.catalog.update()
                .where(t.catalog.c.institution == institution)
                .values(document=text, published_at=now)
            ).rowcount
            if not done:
                conn.execute(
                    t.catalog.insert().values(
                        institution=institution, document=text, published_at=now
                    )
                )

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every institution's latest entry, with ``published`` added."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.catalog).order_by(t.catalog.c.institution)).all()
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            doc = json.loads(r.document)
            published = (
                r.published_at if r.published_at.tzinfo else r.published_at.replace(tzinfo=UTC)
            )
            out[r.institution] = {**doc, "published": published.isoformat()}
        return out

    def search(
        self,
        *,
        resource_type: str | None = None,
        code: str | None = None,
        institutions: Mapping[str, str] | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """Entries matching every given filter: holds ``resource_type``; lists a code that
        starts with ``code`` (``system|code`` or a bare code); institution of ``kind``
        (``institutions`` maps institution -> kind)."""
        found = []
        for inst, doc in self.entries().items():
            if resource_type and resource_type not in _types(doc):
                continue
            if code:
                codes = _codes(doc)
                if not any(
                    c.startswith(code) or c.split("|", 1)[-1].startswith(code) for c in codes
                ):
                    continue
            if kind and (institutions or {}).get(inst) != kind:
                continue
            found.append({"institution": inst, **doc})
        return found
