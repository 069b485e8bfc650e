"""The hub's model registry: every trained model version with its weights, hash, metrics per
institution, lineage (institutions, cohort definition, consent snapshots, privacy spent) and a
model card. SQL through SQLAlchemy Core, SQLite by default and PostgreSQL in production.

A model is named by ``name``; each registration adds version ``1, 2, ...``. The model hash is
the SHA-256 of the canonical weights bytes (:func:`weights_digest`), so a node that receives a
model can check it is the one the ledger recorded.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError

from healthmesh.db import Migration, apply_migrations
from healthmesh.errors import Conflict, InvalidInput, NotFound

COMPONENT = "learning_registry"
_meta = MetaData()
models_t = Table(
    "learning_models",
    _meta,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("study_id", String(64), nullable=False),
    Column("job_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("metric_name", String(32), nullable=False),
    Column("metric", Float, nullable=True),
    Column("spec", Text, nullable=False),
    Column("lineage", Text, nullable=False),
    Column("weights", LargeBinary, nullable=False),
)
metrics_t = Table(
    "learning_model_metrics",
    _meta,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("institution", String(64), primary_key=True),
    Column("metric", Float, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["learning_models.name", "learning_models.version"]),
)
MIGRATIONS = [
    Migration(1, "model versions and per-institution metrics", lambda c: _meta.create_all(c)),
]
Weights = list[npt.NDArray[np.float32]]


def weights_bytes(weights: Sequence[npt.NDArray[Any]]) -> bytes:
    """Canonical bytes of a model's weights: shapes then little-endian float32 values."""
    out = io.BytesIO()
    for w in weights:
        a = np.ascontiguousarray(np.asarray(w, dtype="<f4"))
        out.write(json.dumps(list(a.shape)).encode() + b"\n")
        out.write(a.tobytes())
    return out.getvalue()


def weights_digest(weights: Sequence[npt.NDArray[Any]]) -> str:
    """``sha256:<hex>`` of :func:`weights_bytes` (the form ledger entries use)."""
    return "sha256:" + hashlib.sha256(weights_bytes(weights)).hexdigest()


def pack_weights(weights: Sequence[npt.NDArray[Any]]) -> bytes:
    """Weights as a NumPy ``.npz`` (float32 arrays ``arr_0, arr_1, ...``; no pickles)."""
    buf = io.BytesIO()
    np.savez(buf, *[np.asarray(w, dtype=np.float32) for w in weights])
    return buf.getvalue()


def unpack_weights(blob: bytes) -> Weights:
    """The arrays of :func:`pack_weights` (pickled objects refused)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version."""

    name: str
    version: int
    created_at: datetime
    study_id: str
    job_id: str
    kind: str
    digest: str
    metric_name: str
    metric: float | None
    spec: dict[str, Any]
    lineage: dict[str, Any]
    per_institution: dict[str, float]
    weights: Weights


class ModelRegistry:
    """Model versions in a database (tables created or upgraded on first use)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        apply_migrations(engine, COMPONENT, MIGRATIONS)

    def register(
        self,
        name: str,
        *,
        study_id: str,
        job_id: str,
        spec: dict[str, Any],
        weights: Sequence[npt.NDArray[Any]],
        metric: float | None,
        per_institution: dict[str, float],
        lineage: dict[str, Any],
    ) -> ModelVersion:
        """Store a new version of ``name``; the version number is one past the latest."""
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
            raise InvalidInput("model name: letters, digits, '-' and '_' (at most 64)")
        kind = str(spec.get("model", ""))
        metric_name = "c_index" if spec.get("task") == "survival" else "accuracy"
        digest = weights_digest(weights)
        now = datetime.now(UTC)
        for _attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    version = self._next_version(conn, name)
                    conn.execute(
                        models_t.insert().values(
                            name=name, version=version, created_at=now, study_id=study_id,
                            job_id=job_id, kind=kind, digest=digest, metric_name=metric_name,
                            metric=metric, spec=json.dumps(spec, sort_keys=True),
                            lineage=json.dumps(lineage, sort_keys=True),
                            weights=pack_weights(weights),
                        )
                    )
                    if per_institution:
                        conn.execute(
                            metrics_t.insert(),
                            [
                                {"name": name, "version": version, "institution": k,
                                 "metric": float(v)}
                                for k, v in sorted(per_institution.items())
                            ],
                        )
                return self.get(name, version)
            except IntegrityError:
                continue  # another registration took this version number; take the next
        raise Conflict(f"could not register a new version of model {name!r}")

    @staticmethod
    def _next_version(conn: Connection, name: str) -> int:
        latest = conn.execute(
            select(func.max(models_t.c.version)).where(models_t.c.name == name)
        ).scalar()
        return int(latest or 0) + 1

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """A model version (the latest when ``version`` is None); NotFound if absent."""
        with self.engine.connect() as conn:
            q = select(models_t).where(models_t.c.name == name)
            if version is None:
                q = q.order_by(models_t.c.version.desc()).limit(1)
            else:
                q = q.where(models_t.c.version == version)
            row = conn.execute(q).mappings().first()
            if row is None:
                raise NotFound(f"model {name!r} version {version or 'latest'} not found")
            per = {
                r[0]: r[1]
                for r in conn.execute(
                    select(metrics_t.c.institution, metrics_t.c.metric).where(
                        (metrics_t.c.name == name) & (metrics_t.c.version == row["version"])
                    )
                )
            }
        return ModelVersion(
            name=row["name"], version=row["version"], created_at=row["created_at"],
            study_id=row["study_id"], job_id=row["job_id"], kind=row["kind"],
            digest=row["digest"], metric_name=row["metric_name"], metric=row["metric"],
            spec=json.loads(row["spec"]), lineage=json.loads(row["lineage"]),
            per_institution={str(k): float(v) for k, v in per.items()},
            weights=unpack_weights(row["weights"]),
        )

    def versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Summaries (no weights) of every version, or of ``name``'s, newest first."""
        cols = [c for c in models_t.c if c.name not in ("weights", "spec", "lineage")]
        q = select(*cols).order_by(models_t.c.name, models_t.c.version.desc())
        if name is not None:
            q = q.where(models_t.c.name == name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]
