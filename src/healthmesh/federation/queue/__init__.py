"""The hub's task queue: contract, in-memory twin and SQL implementation (SQLite/PostgreSQL)."""

from healthmesh.federation.queue.base import QueuedTask, TaskQueue, TaskState
from healthmesh.federation.queue.memory import MemoryTaskQueue
from healthmesh.federation.queue.sql import SqlTaskQueue

__all__ = ["MemoryTaskQueue", "QueuedTask", "SqlTaskQueue", "TaskQueue", "TaskState"]
