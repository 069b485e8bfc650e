"""The in-process federation: run an algorithm over several ``NodeData`` in one process.

Like vantage6's mock client, it lets an algorithm author (and every pooled-equality test) run
the hub part and node parts of a federated computation with no infrastructure, through exactly
the path the real federation takes: arguments and released partials cross a JSON boundary (so
nothing non-serialisable or unreleased leaks), each node's releases pass its own guard, and a
node that refuses (:class:`~healthmesh.errors.DisclosureRisk`) is dropped with the rule it named.

:class:`FederatedCalls` is that "call every node, book refusals" part on its own: the hub's job
runner builds one with a dispatcher that sends tasks to real nodes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthmesh.analytics.data import NodeData
from healthmesh.analytics.sdk import Algorithm, Params, Released, ReleaseGuard
from healthmesh.errors import DisclosureRisk, HealthmeshError

RULES = ("min-cell-size", "differencing", "glm-parameters", "privacy-budget", "dp-required")


@dataclass(frozen=True)
class Refusal:
    """A node's refusal: the rule it named (no data)."""

    rule: str


#: runs one method at the given nodes; per node a released dict or a Refusal
Dispatch = Callable[[Sequence[str], str, Params], Mapping[str, Released | Refusal]]


def rule_of(error: DisclosureRisk) -> str:
    """The rule a refusal names (the text before the first colon), ``disclosure`` if none."""
    head = error.message.split(":", 1)[0].strip()
    return head if head in RULES else "disclosure"


def over_the_wire(value: Any, what: str) -> Any:
    """``value`` after a JSON round trip (strict: no NaN/inf, only JSON types)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise HealthmeshError(f"{what} is not strict JSON ({type(exc).__name__})") from None


class FederatedCalls:
    """A :class:`~healthmesh.analytics.sdk.HubContext` over a dispatcher: calls the nodes still
    taking part, drops those that refuse and remembers their rules."""

    def __init__(self, nodes: Sequence[str], dispatch: Dispatch) -> None:
        self._nodes = list(nodes)
        self._refused: dict[str, str] = {}
        self._dispatch = dispatch

    @property
    def nodes(self) -> list[str]:
        """Nodes still taking part."""
        return list(self._nodes)

    @property
    def refused(self) -> dict[str, str]:
        """node -> the rule it named."""
        return dict(self._refused)

    def call(self, method: str, args: Params) -> dict[str, Released]:
        """Run ``method`` at every taking-part node; released partials by node."""
        if not self._nodes:
            return {}
        outcomes = self._dispatch(list(self._nodes), method, over_the_wire(args, "arguments"))
        released: dict[str, Released] = {}
        for node in list(self._nodes):
            out = outcomes.get(node)
            if isinstance(out, Refusal):
                self._refused[node] = out.rule
                self._nodes.remove(node)
            elif out is None:
                raise HealthmeshError(f"node {node!r} gave no answer to {method!r}")
            else:
                released[node] = over_the_wire(out, f"the release of {method!r}")
        return released


@dataclass(frozen=True)
class _NodeContext:
    node: str
    data: NodeData
    guard: ReleaseGuard


@dataclass(frozen=True)
class RunResult:
    """What a federated run produced: the hub's combined result and who took part."""

    result: dict[str, Any]
    nodes: list[str]
    refused: dict[str, str] = field(default_factory=dict)


GuardFactory = Callable[[str], ReleaseGuard]


def default_guard_factory(task_id: str | None = None) -> GuardFactory:
    """Guards with the default policy and fresh in-memory stores, one per node."""
    from healthmesh.privacy import Guard, MemoryBudgetStore, MemoryReleaseLog, PrivacyPolicy

    task = task_id or uuid.uuid4().hex

    def make(node: str) -> ReleaseGuard:
        return Guard(
            PrivacyPolicy(),
            researcher="local",
            study="local",
            task_id=task,
            log=MemoryReleaseLog(),
            budget=MemoryBudgetStore(),
        )

    return make


def run_local(
    algorithm: Algorithm,
    params: Params,
    nodes: Mapping[str, NodeData],
    *,
    guard_factory: GuardFactory | None = None,
) -> RunResult:
    """Run ``algorithm`` with ``params`` over ``nodes`` in this process.

    Example::

        run = run_local(count.ALGORITHM, {"cohort": {}}, {"a": data_a, "b": data_b})
        run.result["n"], run.refused
    """
    params = over_the_wire(dict(params), "parameters")
    algorithm.validate(params)
    factory = guard_factory or default_guard_factory()
    contexts = {name: _NodeContext(name, data, factory(name)) for name, data in nodes.items()}

    def dispatch(names: Sequence[str], method: str, args: Params) -> dict[str, Released | Refusal]:
        fn = algorithm.node_methods.get(method)
        if fn is None:
            raise HealthmeshError(f"algorithm {algorithm.name!r} has no node method {method!r}")
        out: dict[str, Released | Refusal] = {}
        for name in names:
            try:
                out[name] = fn(contexts[name], args)
            except DisclosureRisk as exc:
                out[name] = Refusal(rule_of(exc))
        return out

    hub = FederatedCalls(list(nodes), dispatch)
    result = over_the_wire(algorithm.central(hub, params), "the result")
    return RunResult(result=result, nodes=hub.nodes, refused=hub.refused)
