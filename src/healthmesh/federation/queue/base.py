"""The hub's task queue contract: idempotent enqueue, leases with redelivery, first result wins.

Semantics every implementation keeps (one shared test suite checks them):

- ``enqueue(task)`` is idempotent by ``task.id``: enqueuing it again changes nothing;
  ``enqueue_many(tasks)`` is the same for a batch (a round's tasks).
- ``lease(node, max_n, lease_s)`` hands out up to ``max_n`` of the node's tasks that have no
  result, have not expired and are not under a live lease, oldest first, and leases them for
  ``lease_s`` seconds. A task whose lease runs out without a result is handed out again
  (delivery is at least once), so a node that was offline for a day receives everything
  queued for it meanwhile (unless it expired) when it polls again.
- ``complete(result)`` stores the first result of a task. The same result again is accepted
  (returns ``False``); a different one raises :class:`~healthmesh.errors.Conflict`. A result
  for an unknown task raises :class:`~healthmesh.errors.NotFound`, from a node other than the
  task's :class:`~healthmesh.errors.Forbidden`, after the task expired
  :class:`~healthmesh.errors.Gone`; nothing is stored then.
- Time comes from the queue's injectable ``clock`` (POSIX seconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from healthmesh.errors import Conflict, Forbidden, Gone
from healthmesh.federation.messages import Task, TaskResult

TaskState = Literal["queued", "leased", "completed", "expired"]


class QueuedTask(BaseModel):
    """A task with its delivery state (what :meth:`TaskQueue.tasks` reports)."""

    model_config = ConfigDict(frozen=True)

    task: Task
    state: TaskState
    #: how many times the task was leased
    deliveries: int


class TaskQueue(Protocol):
    """Hub-side queue of tasks for nodes (:class:`MemoryTaskQueue`, :class:`SqlTaskQueue`)."""

    def enqueue(self, task: Task) -> bool:
        """Queue ``task``; ``True`` if it is new, ``False`` if a task with its id exists."""
        ...

    def enqueue_many(self, tasks: Sequence[Task]) -> int:
        """Queue several tasks at once (as :meth:`enqueue` each, in one transaction where
        the store has them); how many were new."""
        ...

    def lease(self, node: str, max_n: int = 10, lease_s: float = 60.0) -> list[Task]:
        """Up to ``max_n`` deliverable tasks of ``node``, now leased for ``lease_s`` seconds."""
        ...

    def has_work(self, node: str) -> bool:
        """Whether :meth:`lease` would hand out at least one task now (cheap, for long polls)."""
        ...

    def complete(self, result: TaskResult) -> bool:
        """Store ``result``; ``True`` if stored now, ``False`` for an identical duplicate."""
        ...

    def task(self, task_id: str) -> Task:
        """The task with this id (:class:`~healthmesh.errors.NotFound` if none)."""
        ...

    def results(self, job_id: str) -> list[TaskResult]:
        """Results stored for the tasks of ``job_id`` (in task id order)."""
        ...

    def tasks(self, job_id: str) -> list[QueuedTask]:
        """Every task of ``job_id`` with its state (in task id order)."""
        ...

    def purge(self, before: float) -> int:
        """Delete tasks (and their results) that expired before ``before``; how many."""
        ...


def check_result(task: Task, result: TaskResult, now: float, existing: TaskResult | None) -> bool:
    """Shared admission rule of :meth:`TaskQueue.complete`: ``True`` to store ``result``,
    ``False`` for an identical duplicate; raises for the refused cases."""
    if result.node != task.node:
        raise Forbidden("result from a node other than the task's node")
    if existing is not None:
        if existing == result:
            return False
        raise Conflict("the task already has a different result")
    if now >= task.expires_at.timestamp():
        raise Gone("the task expired before its result arrived")
    return True
