"""One contract suite for the hub's task queue: in-memory, SQLite file and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from healthmesh.errors import Conflict, Forbidden, Gone, NotFound
from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import Task, TaskResult
from healthmesh.federation.queue import MemoryTaskQueue, SqlTaskQueue, TaskQueue
from healthmesh.federation.sealing import seal

from .conftest import Clock

HUB = Identity.generate("hub")
NODES = {n: Identity.generate(n) for n in ("hosp-a", "hosp-b")}


@pytest.fixture
def queue(backend: str | None, clock: Clock) -> TaskQueue:
    return MemoryTaskQueue(clock) if backend is None else SqlTaskQueue(backend, clock)


def _task(
    clock: Clock, job: str = "job-1", node: str = "hosp-a", round_: int = 0, ttl: float = 3600
) -> Task:
    issued = dt.datetime.fromtimestamp(clock(), dt.UTC)
    return Task.new(
        job_id=job,
        node=node,
        kind="compute",
        issued_at=issued,
        ttl_s=ttl,
        round_=round_,
        algorithm="count",
        method="count",
        args={"cohort": {}},
    )


def _ok(task: Task, payload: bytes = b'{"n": 7}') -> TaskResult:
    env = seal(payload, HUB.public_record(), NODES[task.node], task.id)
    return TaskResult(task_id=task.id, node=task.node, status="ok", sealed=env)


def test_enqueue_is_idempotent(queue: TaskQueue, clock: Clock) -> None:
    t = _task(clock)
    assert queue.enqueue(t) is True
    assert queue.enqueue(t) is False
    assert queue.enqueue(_task(clock)) is False  # same job, round, node: same id
    assert [q.task for q in queue.tasks("job-1")] == [t]
    assert queue.task(t.id) == t
    with pytest.raises(NotFound):
        queue.task("0" * 64)


def test_lease_hands_out_only_the_nodes_tasks_oldest_first(queue: TaskQueue, clock: Clock) -> None:
    a1 = _task(clock, round_=0)
    clock.advance(1)
    a2 = _task(clock, round_=1)
    b1 = _task(clock, node="hosp-b")
    for t in (a2, b1, a1):
        queue.enqueue(t)
    assert queue.has_work("hosp-a")
    assert queue.lease("hosp-a", max_n=1) == [a1]
    assert queue.lease("hosp-a", max_n=5) == [a2]
    assert queue.lease("hosp-a") == []  # both under a live lease
    assert not queue.has_work("hosp-a")
    assert queue.lease("hosp-b") == [b1]
    assert queue.lease("hosp-c") == []


def test_expired_lease_is_redelivered_at_least_once(queue: TaskQueue, clock: Clock) -> None:
    t = _task(clock)
    queue.enqueue(t)
    assert queue.lease("hosp-a", lease_s=30) == [t]
    clock.advance(29)
    assert queue.lease("hosp-a", lease_s=30) == []
    clock.advance(2)
    assert queue.lease("hosp-a", lease_s=30) == [t]
    (state,) = queue.tasks("job-1")
    assert state.state == "leased" and state.deliveries == 2
    queue.complete(_ok(t))
    clock.advance(60)
    assert queue.lease("hosp-a") == []  # completed tasks are never redelivered
    assert queue.tasks("job-1")[0].state == "completed"


def test_first_result_wins_identical_duplicate_accepted(queue: TaskQueue, clock: Clock) -> None:
    t = _task(clock)
    queue.enqueue(t)
    first = _ok(t)
    assert queue.complete(first) is True
    assert queue.complete(first) is False
    with pytest.raises(Conflict):
        queue.complete(_ok(t, b'{"n": 8}'))
    refused = TaskResult(task_id=t.id, node="hosp-a", status="refused", rule="min-cell-size")
    with pytest.raises(Conflict):
        queue.complete(refused)
    assert queue.results("job-1") == [first]


def test_refused_and_error_results_are_stored(queue: TaskQueue, clock: Clock) -> None:
    ta, tb = _task(clock), _task(clock, node="hosp-b")
    queue.enqueue(ta)
    queue.enqueue(tb)
    ra = TaskResult(task_id=ta.id, node="hosp-a", status="refused", rule="min-cell-size")
    rb = TaskResult(task_id=tb.id, node="hosp-b", status="error", message="node method failed")
    assert queue.complete(ra) and queue.complete(rb)
    assert sorted(queue.results("job-1"), key=lambda r: r.task_id) == sorted(
        [ra, rb], key=lambda r: r.task_id
    )


def test_result_refusals_store_nothing(queue: TaskQueue, clock: Clock) -> None:
    t = _task(clock, ttl=60)
    queue.enqueue(t)
    other = TaskResult(task_id=t.id, node="hosp-b", status="refused", rule="min-cell-size")
    with pytest.raises(Forbidden):
        queue.complete(other)
    unknown = TaskResult(task_id="f" * 64, node="hosp-a", status="refused", rule="min-cell-size")
    with pytest.raises(NotFound):
        queue.complete(unknown)
    clock.advance(61)
    with pytest.raises(Gone):
        queue.complete(_ok(t))
    assert queue.results("job-1") == []
    assert queue.tasks("job-1")[0].state == "expired"


def test_expired_tasks_are_not_delivered_and_purged(queue: TaskQueue, clock: Clock) -> None:
    short, long_ = _task(clock, ttl=60), _task(clock, round_=1, ttl=7200)
    queue.enqueue(short)
    queue.enqueue(long_)
    clock.advance(120)
    assert queue.lease("hosp-a", max_n=10) == [long_]
    assert queue.purge(before=clock()) == 1
    assert [q.task for q in queue.tasks("job-1")] == [long_]
    with pytest.raises(NotFound):
        queue.task(short.id)


def test_node_offline_for_a_day_catches_up(queue: TaskQueue, clock: Clock) -> None:
    """Tasks queued while a node is away are all delivered when it polls again."""
    queue.enqueue(_task(clock, job="before"))
    assert len(queue.lease("hosp-a", lease_s=60)) == 1  # node goes offline holding a lease
    queued = []
    for hour in range(24):
        clock.advance(3600)
        t = _task(clock, job=f"job-{hour:02d}", ttl=3 * 86400)
        queue.enqueue(t)
        queued.append(t)
        queue.enqueue(_task(clock, job=f"job-{hour:02d}", node="hosp-b", ttl=3 * 86400))
    got: list[Task] = []
    while batch := queue.lease("hosp-a", max_n=7, lease_s=60):
        got.extend(batch)
    assert [t.id for t in got] == [t.id for t in queued]  # oldest first; "before" expired
    assert all(t.node == "hosp-a" for t in got)


def test_concurrent_leases_never_share_a_task(queue: TaskQueue, clock: Clock) -> None:
    for i in range(40):
        queue.enqueue(_task(clock, job=f"j{i}"))
    got: list[list[Task]] = [[] for _ in range(4)]

    def worker(k: int) -> None:
        while batch := queue.lease("hosp-a", max_n=3, lease_s=600):
            got[k].extend(batch)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ids = [t.id for batch in got for t in batch]
    assert len(ids) == 40 and len(set(ids)) == 40


def test_enqueue_many_is_one_idempotent_batch(queue: TaskQueue, clock: Clock) -> None:
    a = _task(clock, node="hosp-a")
    b = _task(clock, node="hosp-b")
    assert queue.enqueue_many([]) == 0
    assert queue.enqueue(a) is True
    assert queue.enqueue_many([a, b, b]) == 1  # only b is new
    assert queue.enqueue_many([a, b]) == 0
    assert sorted(q.task.id for q in queue.tasks("job-1")) == sorted([a.id, b.id])
    assert queue.lease("hosp-b", 10) == [b]
    assert queue.lease("hosp-b", 10) == []  # leased
    many = [_task(clock, job="job-2", round_=r) for r in range(1203)]
    assert queue.enqueue_many(many) == 1203
    got = queue.lease("hosp-a", 2000)
    assert {t.id for t in got} == {a.id, *(t.id for t in many)}
    assert [t.id for t in got] == sorted(t.id for t in got)  # one instant: by id
