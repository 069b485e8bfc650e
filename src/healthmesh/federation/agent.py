"""The node agent: the node's side of the federation, calling out to the hub (hospitals
accept no inbound connections).

Loop: ``transport.poll`` → for each task:

- ``study``: record the announced study locally (pending), apply the node's auto-approval
  policy, publish the decision signed to the hub when one was taken;
- ``compute``: run only when this node's OWN record approves the study for the task's
  algorithm and cohort (:meth:`healthmesh.node.studies.NodeStudies.require_approval`), with a
  :class:`~healthmesh.analytics.sdk.NodeContext` over the node's data and a release guard for
  (researcher, study, task); the released dict is sealed to the hub and submitted. A refusal
  names its rule (``not-approved``, ``min-cell-size``, ``privacy-budget``, ...) and releases
  nothing;
- ``catalog-request``: publish the catalog entry now.

Idempotent: the result of a task is stored before it is submitted, and a re-delivered task is
answered with the stored result (no second computation, no second budget charge).
The catalog is also published at start and every ``catalog_interval`` seconds.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from healthmesh.analytics.data import NodeData
from healthmesh.analytics.local import RULES
from healthmesh.analytics.sdk import Algorithm, ReleaseGuard
from healthmesh.errors import DisclosureRisk, Forbidden, HealthmeshError
from healthmesh.federation.identity import Identity, PublicRecord
from healthmesh.federation.messages import Task, TaskResult
from healthmesh.federation.sealing import seal
from healthmesh.federation.transport.base import NodeTransport, TransportError
from healthmesh.node.studies import NodeStudies, NodeStudy

log = logging.getLogger(__name__)

_RULE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")

#: the release guard for one compute task (researcher, study and task id are on the task)
GuardFactory = Callable[[Task], ReleaseGuard]


def refusal_rule(exc: DisclosureRisk) -> str:
    """The rule a disclosure refusal names (its ``rule`` attribute, else found in its message)."""
    rule = getattr(exc, "rule", None)
    if isinstance(rule, str) and _RULE.fullmatch(rule):
        return rule
    for name in RULES:
        if name in exc.message:
            return name
    return "disclosure-risk"


@dataclass(frozen=True)
class _Context:
    """A :class:`~healthmesh.analytics.sdk.NodeContext`."""

    node: str
    data: NodeData
    guard: ReleaseGuard


def _builtin(name: str) -> Algorithm:
    from healthmesh.hub.studies import builtin_algorithm

    return builtin_algorithm(name)


class NodeAgent:
    """One node's agent (see the module docstring). Drive it with :meth:`run_once` (tests,
    the in-process federation) or :meth:`run` (a thread or ``healthmesh node agent``)."""

    def __init__(
        self,
        *,
        identity: Identity,
        transport: NodeTransport,
        studies: NodeStudies,
        data: NodeData,
        guard_factory: GuardFactory,
        hub: PublicRecord | None = None,
        catalog: Callable[[], Mapping[str, Any]] | None = None,
        catalog_interval: float = 3600.0,
        algorithms: Callable[[str], Algorithm] = _builtin,
    ) -> None:
        self.identity = identity
        self.institution = identity.institution
        self.transport = transport
        self.studies = studies
        self.data = data
        self.guard_factory = guard_factory
        self._hub = hub
        self.catalog = catalog
        self.catalog_interval = catalog_interval
        self.algorithms = algorithms
        self._catalog_due = 0.0
        self.handled = 0

    @property
    def hub(self) -> PublicRecord:
        """The hub's identity (pinned, or fetched once through the transport)."""
        if self._hub is None:
            self._hub = self.transport.hub_identity()
        return self._hub

    # -- the loop ------------------------------------------------------------------------
    def run_once(self, max_n: int = 50, wait_s: float = 0.0) -> int:
        """Publish the catalog when due, poll once and handle what came; tasks handled."""
        if self.catalog is not None and time.monotonic() >= self._catalog_due:
            self.publish_catalog()
        tasks = self.transport.poll(max_n, wait_s)
        for task in tasks:
            self.handle(task)
        return len(tasks)

    def run(self, stop: threading.Event, *, wait_s: float = 20.0, backoff_s: float = 5.0) -> None:
        """Poll until ``stop`` is set; a hub that cannot be reached is retried after a pause."""
        while not stop.is_set():
            try:
                self.run_once(wait_s=wait_s)
            except TransportError as exc:
                log.warning("hub unreachable (%s); retrying in %.0f s", exc.message, backoff_s)
                stop.wait(backoff_s)
            except HealthmeshError as exc:
                log.warning("hub refused a call: %s", exc.message)
                stop.wait(backoff_s)

    # -- publications --------------------------------------------------------------------
    def publish_catalog(self) -> None:
        """Publish the node's catalog entry (metadata only) now."""
        if self.catalog is None:
            return
        self.transport.publish("catalog", dict(self.catalog()))
        self._catalog_due = time.monotonic() + self.catalog_interval

    def publish_decision(self, study: NodeStudy) -> None:
        """Publish this node's decision on a study (signed by the transport)."""
        self.transport.publish("study-decision", study.decision_body())

    # -- tasks ---------------------------------------------------------------------------
    def handle(self, task: Task) -> TaskResult:
        """Answer one task (see the module docstring) and submit the answer."""
        stored = self.studies.stored_result(task.id)
        if stored is not None:
            result = TaskResult.model_validate_json(stored)
        else:
            result = self._answer(task)
            kept = self.studies.store_result(task.id, task.study_id, result.model_dump_json())
            result = TaskResult.model_validate_json(kept)
        self.transport.submit(result)
        self.handled += 1
        return result

    def _answer(self, task: Task) -> TaskResult:
        try:
            if task.kind == "study":
                return self._ok(task, self._on_study(task))
            if task.kind == "catalog-request":
                self.publish_catalog()
                return self._ok(task, {"published": self.catalog is not None})
            if task.kind == "compute":
                return self._ok(task, self._compute(task))
            return self._error(task, "this node does not run tasks of this kind")
        except TransportError:
            raise  # nothing is stored: the task comes again once the hub is reachable
        except DisclosureRisk as exc:
            log.info("task %s refused: %s", task.id[:12], refusal_rule(exc))
            return TaskResult(
                task_id=task.id, node=self.institution, status="refused", rule=refusal_rule(exc)
            )
        except Forbidden as exc:
            log.info("task %s refused: %s", task.id[:12], exc.message)
            return TaskResult(
                task_id=task.id,
                node=self.institution,
                status="refused",
                rule="not-approved",
                message=exc.message[:500],
            )
        except HealthmeshError as exc:
            return self._error(task, exc.message)
        except Exception:  # the node's log has the trace; nothing of it leaves
            log.exception("task %s failed", task.id[:12])
            return self._error(task, "the node failed to compute")

    def _on_study(self, task: Task) -> dict[str, Any]:
        study, _ = self.studies.receive(task.args)
        if study.state != "pending":  # decided by policy now, or earlier (publish again)
            self.publish_decision(study)
        return {"study_id": study.study_id, "state": study.state}

    def _compute(self, task: Task) -> dict[str, Any]:
        study = self.studies.require_approval(task.study_id, task.algorithm, task.args)
        if task.researcher != study.researcher:
            raise Forbidden("the task's researcher is not the study's")
        algorithm = self.algorithms(str(task.algorithm))
        method = algorithm.node_methods.get(str(task.method))
        if method is None:
            raise Forbidden("the algorithm has no such node method")
        ctx = _Context(self.institution, self.data, self.guard_factory(task))
        released = method(ctx, task.args)
        return json.loads(json.dumps(released))  # type: ignore[no-any-return]

    def _ok(self, task: Task, body: Mapping[str, Any]) -> TaskResult:
        payload = json.dumps(body, separators=(",", ":")).encode()
        envelope = seal(payload, self.hub, self.identity, task.id)
        return TaskResult(task_id=task.id, node=self.institution, status="ok", sealed=envelope)

    def _error(self, task: Task, message: str) -> TaskResult:
        return TaskResult(
            task_id=task.id, node=self.institution, status="error", message=message[:500]
        )
