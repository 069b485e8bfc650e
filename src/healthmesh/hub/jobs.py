"""Run a study computation across the nodes: the hub part of an algorithm over the task queue.

:class:`QueueHubContext` implements :class:`healthmesh.analytics.sdk.HubContext` for real
federations: each ``call`` enqueues one task per taking-part node (idempotent ids: job, round,
node), waits for their results (``timeout`` per round), opens each sealed result with the hub's
key and the node's registered keys, and keeps the bookkeeping the SDK promises: a node that
refuses (``DisclosureRisk`` rule name) or fails is dropped from this and later rounds and listed
with its rule; a node that does not answer in time is dropped and listed as not responded.
:class:`JobRunner` runs one computation of an approved study to its end, stores the outcome
(:mod:`healthmesh.hub.results`) and records the job in the ledger: ``job_start``, then either
``job_result_release`` or ``job_failure`` (the institutions still taking part and a reason
code from :func:`healthmesh.ledger.reasons.failure_reason`, e.g. ``timeout`` for a training run
past its limit; no message text, so nothing about patients can reach the ledger).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from healthmesh.analytics.local import FederatedCalls, Refusal
from healthmesh.analytics.sdk import Algorithm, Params, Released
from healthmesh.errors import DisclosureRisk, Forbidden, HealthmeshError, InvalidInput
from healthmesh.federation.identity import Identity, PublicRecord
from healthmesh.federation.messages import Task, TaskResult
from healthmesh.federation.queue.base import TaskQueue
from healthmesh.federation.registry.base import InstitutionRegistry
from healthmesh.federation.sealing import open_envelope
from healthmesh.hub.ledger import HubLedger
from healthmesh.hub.results import JobRecord, ResultStore, result_digest
from healthmesh.hub.studies import AlgorithmLookup, Study, resolve_params
from healthmesh.ledger.phi import random_id
from healthmesh.ledger.reasons import failure_reason

log = logging.getLogger(__name__)

NO_RESPONSE = "no-response"
#: called while waiting for results (the in-process federation drives its agents with it)
Pump = Callable[[], object]


class ResultSignal:
    """A task queue that wakes the jobs waiting for results as soon as one is stored (the
    endpoint completes tasks through it); everything else is the wrapped queue's."""

    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue
        self._stored = threading.Condition()
        self._count = 0

    def complete(self, result: TaskResult) -> bool:
        stored = self.queue.complete(result)
        with self._stored:
            self._count += 1
            self._stored.notify_all()
        return stored

    def seen(self) -> int:
        """How many results were handed in so far (compare with :meth:`wait`)."""
        with self._stored:
            return self._count

    def wait(self, seen: int, timeout: float) -> None:
        """Return once a result newer than ``seen`` arrived, or after ``timeout`` seconds."""
        with self._stored:
            self._stored.wait_for(lambda: self._count != seen, timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


class QueueHubContext(FederatedCalls):
    """The hub side of one job: :class:`~healthmesh.analytics.sdk.HubContext` over the queue
    (the call and refusal bookkeeping is :class:`~healthmesh.analytics.local.FederatedCalls`)."""

    def __init__(
        self,
        *,
        job_id: str,
        study_id: str,
        algorithm: str,
        researcher: str,
        nodes: Sequence[str],
        queue: TaskQueue,
        enqueue: Callable[[Task], bool],
        hub: Identity,
        registry: InstitutionRegistry,
        timeout: float,
        pump: Pump | None = None,
        signal: ResultSignal | None = None,
        enqueue_many: Callable[[Sequence[Task]], int] | None = None,
    ) -> None:
        super().__init__(nodes, self._dispatch_tasks)
        self._enqueue_many = enqueue_many
        self.signal = signal
        self.job_id, self.study_id, self.algorithm = job_id, study_id, algorithm
        self.researcher = researcher
        self.not_responded: list[str] = []
        self.queue, self._enqueue, self.hub, self.registry = queue, enqueue, hub, registry
        self.timeout, self.pump = timeout, pump
        self.round = 0
        #: each node's registered keys, read once per job (a key revoked meanwhile still
        #: fails at the endpoint, which checks every result before storing it)
        self._keys: dict[str, list[PublicRecord]] = {}

    @property
    def refused(self) -> dict[str, str]:
        """node -> the rule it named (nodes that did not answer are in ``not_responded``)."""
        return {n: r for n, r in super().refused.items() if r != NO_RESPONSE}

    def _dispatch_tasks(
        self, nodes: Sequence[str], method: str, args: Params
    ) -> dict[str, Released | Refusal]:
        now = dt.datetime.now(dt.UTC)
        # each round is its own queue job, so waiting reads only this round's results
        round_job = f"{self.job_id}.r{self.round}"
        tasks = {
            n: Task.new(
                job_id=round_job,
                node=n,
                kind="compute",
                issued_at=now,
                # a task outliving its round would be computed (and charged) for nothing
                ttl_s=self.timeout + 5.0,
                round_=self.round,
                study_id=self.study_id,
                algorithm=self.algorithm,
                method=method,
                args=dict(args),
                researcher=self.researcher,
            )
            for n in nodes
        }
        self.round += 1
        if self._enqueue_many is not None:  # the round's tasks in one transaction
            self._enqueue_many(list(tasks.values()))
        else:
            for task in tasks.values():
                self._enqueue(task)
        got = self._wait(round_job, {t.id for t in tasks.values()})
        out: dict[str, Released | Refusal] = {}
        for node, task in tasks.items():
            result = got.get(task.id)
            if result is None:
                self.not_responded.append(node)
                out[node] = Refusal(NO_RESPONSE)
            else:
                opened = self._open(task, result)
                out[node] = Refusal(opened) if isinstance(opened, str) else opened
        return out

    def _wait(self, round_job: str, ids: set[str]) -> dict[str, TaskResult]:
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            seen = self.signal.seen() if self.signal is not None else 0
            if self.pump is not None:
                self.pump()
            found = {r.task_id: r for r in self.queue.results(round_job) if r.task_id in ids}
            left = deadline - time.monotonic()
            if len(found) == len(ids) or left <= 0:
                return found
            if self.pump is not None:
                continue
            if self.signal is not None:
                self.signal.wait(seen, min(left, 1.0))
            else:
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.2)

    def _open(self, task: Task, result: TaskResult) -> Released | str:
        """A partial, or the rule the node named (``error`` for a failure)."""
        if result.status == "refused":
            return result.rule or "refused"
        if result.status != "ok" or result.sealed is None:
            return "error"
        try:
            keys = self._keys.get(task.node)
            if keys is None:
                keys = self._keys[task.node] = self.registry.active_keys(task.node)
            payload = open_envelope(result.sealed, self.hub, keys, context=task.id)
            value = json.loads(payload)
        except (HealthmeshError, ValueError):
            log.warning("result of node %s could not be opened", task.node)
            return "sealed-result-invalid"
        if not isinstance(value, dict):
            return "error"
        return value


class JobRunner:
    """Runs study computations for researchers (see the module docstring)."""

    def __init__(
        self,
        *,
        queue: TaskQueue,
        enqueue: Callable[[Task], bool],
        hub: Identity,
        registry: InstitutionRegistry,
        results: ResultStore,
        ledger: HubLedger,
        algorithms: AlgorithmLookup,
        timeout: float = 60.0,
        pump: Pump | None = None,
        signal: ResultSignal | None = None,
        enqueue_many: Callable[[Sequence[Task]], int] | None = None,
    ) -> None:
        self.queue, self.enqueue, self.hub, self.registry = queue, enqueue, hub, registry
        self.enqueue_many = enqueue_many
        self.results, self.ledger, self.algorithms = results, ledger, algorithms
        self.timeout, self.pump, self.signal = timeout, pump, signal

    def run(
        self, study: Study, computation: str, researcher: str, *, timeout: float | None = None
    ) -> JobRecord:
        """Run one computation of ``study`` for its researcher; returns the stored record.

        Only the institutions whose recorded decision approves the computation take part
        (each node checks its own approval again before computing)."""
        if researcher != study.researcher:
            raise Forbidden("only the study's researcher may run its computations")
        comp = study.request.computation(computation)
        algorithm: Algorithm = self.algorithms(comp.algorithm)
        params = resolve_params(study.request, comp)
        nodes = study.approved_for(computation)
        if not nodes:
            raise Forbidden("no institution has approved this computation")
        job_id = random_id("job-")
        self.results.start(job_id, study.study_id, computation, nodes)
        try:
            self.ledger.job_started(job_id, study.study_id, comp.algorithm, nodes)
        except Exception:  # no job runs unrecorded, and none is left "running"
            self.results.finish(job_id, result=None, digest=None, participants=nodes,
                                refused={}, not_responded=[],
                                error="the job could not be recorded")
            raise
        ctx = QueueHubContext(
            job_id=job_id,
            study_id=study.study_id,
            algorithm=comp.algorithm,
            researcher=researcher,
            nodes=nodes,
            queue=self.queue,
            enqueue=self.enqueue,
            hub=self.hub,
            registry=self.registry,
            timeout=self.timeout if timeout is None else timeout,
            pump=self.pump,
            signal=self.signal,
            enqueue_many=self.enqueue_many,
        )
        result: dict[str, Any] | None = None
        error: str | None = None
        failure: BaseException | None = None
        unexpected = False
        try:
            if not ctx.nodes:
                raise DisclosureRisk("no-institutions: no institution is left to compute")
            result = json.loads(json.dumps(algorithm.central(ctx, params)))
            if not ctx.nodes:
                raise DisclosureRisk(
                    "no-institutions: every institution refused or did not answer")
        except (HealthmeshError, ArithmeticError, ValueError) as exc:
            failure, result = exc, None  # nothing of a failed job is released
            error = exc.message if isinstance(exc, HealthmeshError) else "computation failed"
            if not isinstance(exc, (DisclosureRisk, InvalidInput)):
                log.warning("job %s failed: %s", job_id, type(exc).__name__)
        except Exception as exc:  # a defect: the job still ends failed and on the ledger
            failure, unexpected, error, result = exc, True, "computation failed", None
            log.error("job %s failed unexpectedly: %s", job_id, type(exc).__name__)
        digest = None if result is None else result_digest(result)
        if digest is not None:  # recorded before it is stored: no release off the ledger
            try:
                self.ledger.released(job_id, study.study_id, digest, researcher)
            except Exception as exc:
                log.error("job %s: release not recorded: %s", job_id, type(exc).__name__)
                failure, error = exc, "the release could not be recorded"
                result = digest = None
        self.results.finish(
            job_id,
            result=result,
            digest=digest,
            participants=ctx.nodes,
            refused=ctx.refused,
            not_responded=sorted(set(ctx.not_responded)),
            error=error,
        )
        if digest is None:
            reason = "error" if failure is None else failure_reason(failure)
            self.ledger.job_failed(job_id, study.study_id, comp.algorithm, ctx.nodes, reason)
        if unexpected and failure is not None:
            raise failure
        return self.results.get(job_id)
