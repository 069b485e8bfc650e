"""The task queue in SQL (SQLAlchemy Core; SQLite or PostgreSQL; component ``federation_queue``).

Leasing is a conditional ``UPDATE ... WHERE lease_until <= now AND result IS NULL`` per
candidate row, so two hub workers never hand out the same task under one live lease (on
PostgreSQL the candidates are also selected ``FOR UPDATE SKIP LOCKED``). Times are POSIX
seconds from the queue's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert

from healthmesh.db import Migration, apply_migrations, is_postgres, make_engine
from healthmesh.errors import NotFound
from healthmesh.federation.messages import Task, TaskResult
from healthmesh.federation.queue.base import QueuedTask, TaskState, check_result

COMPONENT = "federation_queue"
#: rows per multi-row INSERT (bind-parameter limits: SQLite 32766, PostgreSQL 65535)
_BATCH = 500
metadata = MetaData()
tasks = Table(
    "fed_tasks",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("node", String(64), nullable=False),
    Column("job_id", String(128), nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("lease_until", Float, nullable=False, default=0.0),
    Column("deliveries", Integer, nullable=False, default=0),
    Column("task", Text, nullable=False),
    Column("result", Text, nullable=True),
    Column("completed_at", Float, nullable=True),
)
Index("ix_fed_tasks_node", tasks.c.node, tasks.c.issued_at)
Index("ix_fed_tasks_job", tasks.c.job_id)
Index("ix_fed_tasks_expires", tasks.c.expires_at)


# hot statements built once (bound values at execution): building and keying a Core
# statement costs more than running it on a small queue
_CANDIDATES = (
    select(tasks.c.task_id)
    .where(
        tasks.c.node == bindparam("node"),
        tasks.c.result.is_(None),
        tasks.c.lease_until <= bindparam("now"),
        tasks.c.expires_at > bindparam("now"),
    )
    .order_by(tasks.c.issued_at, tasks.c.task_id)
    .limit(bindparam("max_n"))
)
_LEASE = (
    update(tasks)
    .where(
        tasks.c.task_id.in_(bindparam("ids", expanding=True)),
        tasks.c.lease_until <= bindparam("now"),
        tasks.c.result.is_(None),
    )
    .values(lease_until=bindparam("until"), deliveries=tasks.c.deliveries + 1)
    .returning(tasks.c.issued_at, tasks.c.task_id, tasks.c.task)
)
_ROW = select(tasks.c.task, tasks.c.result).where(tasks.c.task_id == bindparam("tid"))
_COMPLETE = (
    update(tasks)
    .where(tasks.c.task_id == bindparam("tid"), tasks.c.result.is_(None))
    .values(result=bindparam("result"), completed_at=bindparam("at"))
)


def _create(conn: Connection) -> None:
    metadata.create_all(conn)


MIGRATIONS = [Migration(1, "federation task queue", _create)]


class SqlTaskQueue:
    """:class:`~.base.TaskQueue` in a SQLite file or a PostgreSQL database."""

    def __init__(self, db: Engine | str | Path, clock: Callable[[], float] = time.time) -> None:
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        self.clock = clock
        apply_migrations(self.engine, COMPONENT, MIGRATIONS)
        self._lease_query = (
            _CANDIDATES.with_for_update(skip_locked=True)
            if is_postgres(self.engine)
            else _CANDIDATES
        )

    def enqueue(self, task: Task) -> bool:
        """See :meth:`~.base.TaskQueue.enqueue`."""
        return self.enqueue_many([task]) == 1

    def enqueue_many(self, batch: Sequence[Task]) -> int:
        """See :meth:`~.base.TaskQueue.enqueue_many` (one transaction, one statement)."""
        rows = {
            t.id: {
                "task_id": t.id,
                "node": t.node,
                "job_id": t.job_id,
                "issued_at": t.issued_at.timestamp(),
                "expires_at": t.expires_at.timestamp(),
                "lease_until": 0.0,
                "deliveries": 0,
                "task": t.model_dump_json(),
            }
            for t in batch
        }
        if not rows:
            return 0
        insert = pg_insert if is_postgres(self.engine) else lite_insert
        new = 0
        with self.engine.begin() as conn:
            for k in range(0, len(rows), _BATCH):
                part = list(rows.values())[k : k + _BATCH]
                stmt = insert(tasks).values(part).on_conflict_do_nothing()
                new += len(conn.execute(stmt.returning(tasks.c.task_id)).all())
        return new

    def _candidates(self, node: str, now: float) -> Select[Any]:
        return (
            select(tasks.c.task_id, tasks.c.task)
            .where(
                tasks.c.node == node,
                tasks.c.result.is_(None),
                tasks.c.lease_until <= now,
                tasks.c.expires_at > now,
            )
            .order_by(tasks.c.issued_at, tasks.c.task_id)
        )

    def lease(self, node: str, max_n: int = 10, lease_s: float = 60.0) -> list[Task]:
        """See :meth:`~.base.TaskQueue.lease` (one conditional ``UPDATE ... RETURNING`` for
        the candidates: a row another worker leased meanwhile is not matched)."""
        now = self.clock()
        with self.engine.begin() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    self._lease_query, {"node": node, "now": now, "max_n": max_n}
                )
            ]
            if not ids:
                return []
            got = conn.execute(_LEASE, {"ids": ids, "now": now, "until": now + lease_s}).all()
        ordered = sorted(got, key=lambda r: (r[0], r[1]))
        return [Task.model_validate_json(r[2]) for r in ordered]

    def has_work(self, node: str) -> bool:
        """See :meth:`~.base.TaskQueue.has_work`."""
        with self.engine.connect() as conn:
            return conn.execute(self._candidates(node, self.clock()).limit(1)).first() is not None

    def _row(self, conn: Connection, task_id: str) -> tuple[Task, TaskResult | None]:
        row = conn.execute(_ROW, {"tid": task_id}).first()
        if row is None:
            raise NotFound("unknown task")
        result = None if row.result is None else TaskResult.model_validate_json(row.result)
        return Task.model_validate_json(row.task), result

    def complete(self, result: TaskResult) -> bool:
        """See :meth:`~.base.TaskQueue.complete`."""
        now = self.clock()
        with self.engine.begin() as conn:
            task, existing = self._row(conn, result.task_id)
            if not check_result(task, result, now, existing):
                return False
            res = conn.execute(
                _COMPLETE, {"tid": task.id, "result": result.model_dump_json(), "at": now}
            )
            if res.rowcount == 1:
                return True
            _, existing = self._row(conn, result.task_id)  # lost a race: compare with winner
            return check_result(task, result, now, existing)

    def task(self, task_id: str) -> Task:
        """See :meth:`~.base.TaskQueue.task`."""
        with self.engine.connect() as conn:
            return self._row(conn, task_id)[0]

    def results(self, job_id: str) -> list[TaskResult]:
        """See :meth:`~.base.TaskQueue.results`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tasks.c.result)
                .where(tasks.c.job_id == job_id, tasks.c.result.is_not(None))
                .order_by(tasks.c.task_id)
            ).all()
        return [TaskResult.model_validate_json(r.result) for r in rows]

    def tasks(self, job_id: str) -> list[QueuedTask]:
        """See :meth:`~.base.TaskQueue.tasks`."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tasks).where(tasks.c.job_id == job_id).order_by(tasks.c.task_id)
            ).all()
        out = []
        for r in rows:
            state: TaskState
            if r.result is not None:
                state = "completed"
            elif r.expires_at <= now:
                state = "expired"
            else:
                state = "leased" if r.lease_until > now else "queued"
            out.append(
                QueuedTask(
                    task=Task.model_validate_json(r.task), state=state, deliveries=r.deliveries
                )
            )
        return out

    def purge(self, before: float) -> int:
        """See :meth:`~.base.TaskQueue.purge`."""
        with self.engine.begin() as conn:
            return conn.execute(delete(tasks).where(tasks.c.expires_at < before)).rowcount
