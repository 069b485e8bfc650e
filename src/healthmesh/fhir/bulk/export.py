"""Bulk Data export (FHIR Bulk Data Access IG 2.0): NDJSON files per resource type.

Resources are streamed from the database as the JSON bytes already stored, so an export
never re-serialises or holds a whole type in memory.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from sqlalchemy import select

from healthmesh.errors import InvalidInput
from healthmesh.fhir.query.conditions import ConditionBuilder
from healthmesh.fhir.query.parse import parse_query
from healthmesh.fhir.store import schema
from healthmesh.fhir.store.records import instant

if TYPE_CHECKING:
    from healthmesh.fhir.store.store import FhirStore

R = schema.resource


@dataclass
class ExportRequest:
    level: str  # system | patient | group
    types: list[str]
    since: float | None = None
    type_filters: dict[str, list[str]] = field(default_factory=dict)
    group_id: str | None = None
    request_url: str = ""
    owner: str = ""
    #: per type, the SQL condition of a query-restricted scope (ANDed into the export)
    restrictions: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportJob:
    id: str
    request: ExportRequest
    directory: Path
    transaction_time: float
    status: str = "in-progress"  # in-progress | completed | failed | cancelled
    progress: str = "queued"
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    exported: int = 0

    def manifest(self, file_base: str) -> dict[str, Any]:
        return {
            "transactionTime": instant(self.transaction_time),
            "request": self.request.request_url,
            "requiresAccessToken": True,
            "output": [
                {"type": o["type"], "url": f"{file_base}/{o['file']}", "count": o["count"]}
                for o in self.outputs
            ],
            "error": [],
        }


def parse_type_filters(values: list[str], store: FhirStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for value in values:
        for item in value.split(","):
            rtype, _, query = item.partition("?")
            if rtype not in store.resource_types or not query:
                raise InvalidInput("_typeFilter entries must be Type?search")
            out.setdefault(rtype, []).append(query)
    return out


class Exporter:
    """Runs export jobs in background threads and keeps their state."""

    def __init__(self, store: FhirStore, directory: Path) -> None:
        self.store = store
        self.directory = directory
        self.jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()

    def start(self, req: ExportRequest, *, background: bool = True) -> ExportJob:
        job_id = uuid.uuid4().hex
        job = ExportJob(job_id, req, self.directory / job_id, time.time())
        with self._lock:
            self.jobs[job_id] = job
        if background:
            threading.Thread(
                target=self._run, args=(job,), daemon=True, name=f"export-{job_id[:8]}"
            ).start()
        else:
            self._run(job)
        return job

    def cancel(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None:
            return False
        job.cancel.set()
        job.status = "cancelled"
        for f in job.directory.glob("*.ndjson"):
            f.unlink(missing_ok=True)
        with self._lock:
            self.jobs.pop(job_id, None)
        return True

    def _conditions(self, job: ExportJob, rtype: str) -> list[Any]:
        req = job.request
        conds: list[Any] = [R.c.res_type == rtype, R.c.deleted == False]  # noqa: E712
        conds.append(R.c.last_updated <= job.transaction_time)
        if req.since is not None:
            conds.append(R.c.last_updated >= req.since)
        builder = ConditionBuilder(self.store)
        filters = req.type_filters.get(rtype)
        if filters:
            from sqlalchemy import and_, or_

            ors = []
            for query in filters:
                q = parse_query(parse_qsl(query, keep_blank_values=True))
                ors.append(and_(*(builder.filter(rtype, f) for f in q.filters)))
            conds.append(or_(*ors))
        if req.level in ("patient", "group"):
            conds.append(self._compartment(rtype, job))
        if rtype in req.restrictions:
            conds.append(req.restrictions[rtype])
        return conds

    def _compartment(self, rtype: str, job: ExportJob) -> Any:
        ref = schema.idx_reference
        patients = self._patients(job)
        if rtype == "Patient":
            return R.c.res_id.in_(patients) if patients is not None else R.c.lid == R.c.lid
        codes = self.store.registry.compartment_params("Patient", rtype)
        pids = [p for c in codes if (p := self.store.params.pid(rtype, c)) is not None]
        sub = select(ref.c.lid).where(ref.c.pid.in_(pids), ref.c.ttype == "Patient")
        if patients is not None:
            sub = sub.where(ref.c.tid.in_(patients))
        return R.c.lid.in_(sub)

    def _patients(self, job: ExportJob) -> list[str] | None:
        if job.request.level != "group":
            return None
        assert job.request.group_id is not None
        group = self.store.read("Group", job.request.group_id).resource()
        ids: list[str] = []
        for member in group.get("member") or []:
            ref = str((member.get("entity") or {}).get("reference", ""))
            if ref.startswith("Patient/"):
                ids.append(ref.split("/")[1])
        return ids

    def _run(self, job: ExportJob) -> None:
        try:
            job.directory.mkdir(parents=True, exist_ok=True)
            types = list(job.request.types)
            if job.request.level in ("patient", "group"):
                allowed = set(self.store.registry.compartment_types("Patient")) | {"Patient"}
                types = [t for t in types if t in allowed]
            for n, rtype in enumerate(types):
                if job.cancel.is_set():
                    return
                job.progress = f"exporting {rtype} ({n + 1}/{len(types)})"
                self._export_type(job, rtype)
            job.status = "completed"
            job.progress = "done"
        except Exception as exc:
            job.status = "failed"
            job.error = exc.message if hasattr(exc, "message") else type(exc).__name__

    def _export_type(self, job: ExportJob, rtype: str) -> None:
        path = job.directory / f"{rtype}.ndjson"
        count = 0
        with self.store.db.read() as conn, path.open("wb") as out:
            result = conn.execution_options(yield_per=2000).execute(
                select(R.c.content).where(*self._conditions(job, rtype)).order_by(R.c.lid)
            )
            buf: list[bytes] = []
            for (content,) in result:
                buf.append(bytes(content))
                count += 1
                if len(buf) >= 2000:
                    out.write(b"\n".join(buf) + b"\n")
                    buf.clear()
                    job.exported = count
                    if job.cancel.is_set():
                        return
            if buf:
                out.write(b"\n".join(buf) + b"\n")
        if count:
            job.outputs.append({"type": rtype, "file": path.name, "count": count})
        else:
            path.unlink(missing_ok=True)
