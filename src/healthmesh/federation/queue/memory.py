"""The in-memory twin of the task queue (tests, the demo, a single-process hub)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from healthmesh.errors import NotFound
from healthmesh.federation.messages import Task, TaskResult
from healthmesh.federation.queue.base import QueuedTask, TaskState, check_result


@dataclass
class _Entry:
    task: Task
    lease_until: float = 0.0
    deliveries: int = 0
    result: TaskResult | None = None


class MemoryTaskQueue:
    """:class:`~.base.TaskQueue` in a dict guarded by a lock."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._tasks: dict[str, _Entry] = {}

    def enqueue(self, task: Task) -> bool:
        """See :meth:`~.base.TaskQueue.enqueue`."""
        with self._lock:
            if task.id in self._tasks:
                return False
            self._tasks[task.id] = _Entry(task)
            return True

    def enqueue_many(self, tasks: Sequence[Task]) -> int:
        """See :meth:`~.base.TaskQueue.enqueue_many`."""
        return sum(self.enqueue(t) for t in tasks)

    def _deliverable(self, node: str, now: float) -> list[_Entry]:
        found = [
            e
            for e in self._tasks.values()
            if e.task.node == node
            and e.result is None
            and e.lease_until <= now
            and e.task.expires_at.timestamp() > now
        ]
        return sorted(found, key=lambda e: (e.task.issued_at, e.task.id))

    def lease(self, node: str, max_n: int = 10, lease_s: float = 60.0) -> list[Task]:
        """See :meth:`~.base.TaskQueue.lease`."""
        with self._lock:
            now = self.clock()
            out = self._deliverable(node, now)[:max_n]
            for e in out:
                e.lease_until = now + lease_s
                e.deliveries += 1
            return [e.task for e in out]

    def has_work(self, node: str) -> bool:
        """See :meth:`~.base.TaskQueue.has_work`."""
        with self._lock:
            return bool(self._deliverable(node, self.clock()))

    def complete(self, result: TaskResult) -> bool:
        """See :meth:`~.base.TaskQueue.complete`."""
        with self._lock:
            entry = self._tasks.get(result.task_id)
            if entry is None:
                raise NotFound("unknown task")
            if not check_result(entry.task, result, self.clock(), entry.result):
                return False
            entry.result = result
            return True

    def task(self, task_id: str) -> Task:
        """See :meth:`~.base.TaskQueue.task`."""
        with self._lock:
            entry = self._tasks.get(task_id)
        if entry is None:
            raise NotFound("unknown task")
        return entry.task

    def results(self, job_id: str) -> list[TaskResult]:
        """See :meth:`~.base.TaskQueue.results`."""
        with self._lock:
            return [
                e.result
                for _, e in sorted(self._tasks.items())
                if e.task.job_id == job_id and e.result is not None
            ]

    def tasks(self, job_id: str) -> list[QueuedTask]:
        """See :meth:`~.base.TaskQueue.tasks`."""
        with self._lock:
            now = self.clock()
            return [
                QueuedTask(task=e.task, state=_state(e, now), deliveries=e.deliveries)
                for _, e in sorted(self._tasks.items())
                if e.task.job_id == job_id
            ]

    def purge(self, before: float) -> int:
        """See :meth:`~.base.TaskQueue.purge`."""
        with self._lock:
            gone = [k for k, e in self._tasks.items() if e.task.expires_at.timestamp() < before]
            for k in gone:
                del self._tasks[k]
            return len(gone)


def _state(e: _Entry, now: float) -> TaskState:
    if e.result is not None:
        return "completed"
    if e.task.expires_at.timestamp() <= now:
        return "expired"
    return "leased" if e.lease_until > now else "queued"
