"""The algorithm SDK: a federated computation is one module with a node part and a hub part.

An algorithm module exposes ``ALGORITHM = Algorithm(...)``:

- ``node_methods``: functions ``(ctx: NodeContext, args) -> dict`` run at each node on its own
  data. What they return leaves the node, so they pass every released figure through
  ``ctx.guard`` (minimum cell size, differencing, GLM limit, optional differential privacy).
  The returned dict must be JSON-serialisable (numbers, strings, lists, dicts).
- ``central``: ``(ctx: HubContext, params) -> dict`` runs at the hub, calls node methods with
  ``ctx.call`` (as many rounds as it needs) and combines the partial results.

The same module runs unchanged in the in-process federation
(:func:`healthmesh.analytics.local.run_local`, for tests and algorithm authors; it returns a
``RunResult`` with the result, the nodes that took part and those that refused), in the demo
and in production (tasks carried by the federation transport).

Released counts come back from the guard as floats (noised under DP); the built-in algorithms
round them to whole numbers before releasing.

Example::

    def _count(ctx, args):
        cohort = Cohort.model_validate(args["cohort"])
        n = ctx.data.count(cohort)
        ctx.guard.cohort(ctx.data.members(cohort))
        return {"n": ctx.guard.release_count(n)}

    def _central(ctx, params):
        parts = ctx.call("count", {"cohort": params["cohort"]})
        return {"n": sum(p["n"] for p in parts.values())}

    ALGORITHM = Algorithm("count", "cohort size", {"count": _count}, _central)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from healthmesh.analytics.data import NodeData

Params = Mapping[str, Any]
Released = dict[str, Any]


class ReleaseGuard(Protocol):
    """Disclosure control a node applies to everything a node method releases.

    Each check raises :class:`healthmesh.errors.DisclosureRisk` whose message names the rule
    (``min-cell-size``, ``differencing``, ``glm-parameters``, ``privacy-budget``,
    ``dp-required``) and never
    contains patient data. Implemented in :mod:`healthmesh.privacy.guard`.
    """

    @property
    def min_cell(self) -> int: ...

    def cohort(self, members: frozenset[str]) -> None:
        """The cohort about to be described: refuses a non-empty cohort smaller than the
        minimum cell size (an empty one is allowed: it describes nobody), or one that differs
        from an earlier released cohort of the same researcher by 1 to min_cell - 1 patients
        (differencing). Records it when allowed."""
        ...

    def cells(self, counts: Sequence[int], *, what: str) -> None:
        """Refuses when any non-zero count is below the minimum cell size."""
        ...

    def glm(self, n: int, p: int) -> None:
        """Refuses a model with too many parameters for the sample (p > ratio * n)."""
        ...

    def exact(self, what: str) -> None:
        """Refuses (rule ``dp-required``) when the node's policy requires differential privacy:
        called by computations that can only release exact figures (GLM, Kaplan–Meier, Cox)."""
        ...

    def charge(self, epsilon: float, delta: float) -> None:
        """Charges a privacy loss accounted elsewhere (a DP training run's accountant) to the
        researcher's budget for the study at this node, once per task; refuses
        (``privacy-budget``) and charges nothing beyond the node's caps."""
        ...

    def release_counts(self, counts: Sequence[float], *, sensitivity: float = 1.0) -> list[float]:
        """Counts as released: unchanged without DP; with DP noised (Laplace/Gaussian via
        OpenDP) and charged to the researcher's budget for the study (refused when exhausted)."""
        ...

    def release_sums(self, sums: Sequence[float], *, bound: float) -> list[float]:
        """Sums of values clipped to ``[-bound, bound]``: as :meth:`release_counts`."""
        ...

    def release_count(self, count: int) -> float: ...


class NodeContext(Protocol):
    @property
    def node(self) -> str: ...

    @property
    def data(self) -> NodeData: ...

    @property
    def guard(self) -> ReleaseGuard: ...


class HubContext(Protocol):
    @property
    def nodes(self) -> Sequence[str]:
        """Nodes still taking part (a node that refused a release is dropped)."""
        ...

    @property
    def refused(self) -> Mapping[str, str]:
        """node -> the rule it named when it refused (no data in it)."""
        ...

    def call(self, method: str, args: Params) -> dict[str, Released]:
        """Run ``method`` at every taking-part node; their released partials by node. A node
        that refuses is dropped from this and later calls and listed in :attr:`refused`."""
        ...


NodeMethod = Callable[[NodeContext, Params], Released]
Central = Callable[[HubContext, Params], dict[str, Any]]


@dataclass(frozen=True)
class Algorithm:
    name: str
    summary: str
    node_methods: Mapping[str, NodeMethod]
    central: Central
    #: parameter validation run at the hub when a study is submitted (raise InvalidInput)
    validate: Callable[[Params], None] = field(default=lambda _p: None)
