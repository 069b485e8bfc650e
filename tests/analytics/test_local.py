"""The in-process federation: JSON boundary, refusal bookkeeping, parameter validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from healthmesh.analytics.local import FederatedCalls, Refusal, rule_of, run_local
from healthmesh.analytics.memory_data import ResourceData
from healthmesh.analytics.registry import BUILTINS, NAMES, get
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params
from healthmesh.errors import DisclosureRisk, HealthmeshError, InvalidInput, NotFound

from .contract_resources import RESOURCES


def _nodes() -> dict[str, ResourceData]:
    return {"a": ResourceData(RESOURCES), "b": ResourceData(RESOURCES)}


def _algorithm(node_fn: Any, central: Any = None) -> Algorithm:
    def default_central(ctx: HubContext, params: Params) -> dict[str, Any]:
        return {"parts": ctx.call("m", params), "refused": dict(ctx.refused)}

    return Algorithm("test", "test", {"m": node_fn}, central or default_central)


def test_arguments_and_releases_cross_a_json_boundary() -> None:
    seen: list[Any] = []

    def node(ctx: NodeContext, args: Params) -> dict[str, Any]:
        seen.append(args)
        return {"t": (1, 2), "node": ctx.node}

    run = run_local(_algorithm(node), {"x": (1, 2)}, _nodes())
    assert seen == [{"x": [1, 2]}, {"x": [1, 2]}]  # tuples arrive as lists, as over the wire
    assert run.result["parts"] == {"a": {"t": [1, 2], "node": "a"}, "b": {"t": [1, 2], "node": "b"}}
    assert run.nodes == ["a", "b"] and run.refused == {}


@pytest.mark.parametrize("leak", [np.array([1.0]), np.int64(3), {1, 2}, float("nan"), object()])
def test_non_json_releases_are_stopped(leak: Any) -> None:
    with pytest.raises(HealthmeshError, match="not strict JSON"):
        run_local(_algorithm(lambda ctx, args: {"v": leak}), {}, _nodes())


def test_refusing_node_dropped_from_this_and_later_calls() -> None:
    calls: list[str] = []

    def node(ctx: NodeContext, args: Params) -> dict[str, Any]:
        calls.append(ctx.node)
        if ctx.node == "a":
            ctx.guard.cells([2], what="test")
        return {"ok": True}

    def central(ctx: HubContext, params: Params) -> dict[str, Any]:
        first = ctx.call("m", {})
        second = ctx.call("m", {})
        return {"first": sorted(first), "second": sorted(second)}

    run = run_local(_algorithm(node, central), {}, _nodes())
    assert run.result == {"first": ["b"], "second": ["b"]}
    assert calls == ["a", "b", "b"]
    assert run.refused == {"a": "min-cell-size"} and run.nodes == ["b"]


def test_other_errors_propagate() -> None:
    def node(ctx: NodeContext, args: Params) -> dict[str, Any]:
        raise InvalidInput("bad")

    with pytest.raises(InvalidInput):
        run_local(_algorithm(node), {}, _nodes())
    with pytest.raises(HealthmeshError, match="no node method"):
        run_local(_algorithm(lambda c, a: {}, lambda ctx, p: ctx.call("other", {})), {}, _nodes())


def test_validation_runs_first() -> None:
    with pytest.raises(InvalidInput, match="parameter variables"):
        run_local(BUILTINS["crosstab"], {"variables": [{"kind": "nope"}]}, _nodes())
    with pytest.raises(InvalidInput, match="parameter cohort"):
        run_local(BUILTINS["count"], {"cohort": {"include": [{"kind": "age", "min": -1}]}}, _nodes())


def test_rule_of() -> None:
    assert rule_of(DisclosureRisk("differencing: x")) == "differencing"
    assert rule_of(DisclosureRisk("something else")) == "disclosure"


def test_federated_calls_books_refusals_from_any_dispatcher() -> None:
    def dispatch(nodes: Any, method: str, args: Params) -> dict[str, Any]:
        return {n: Refusal("privacy-budget") if n == "x" else {"n": 1} for n in nodes}

    hub = FederatedCalls(["x", "y"], dispatch)
    assert hub.call("m", {}) == {"y": {"n": 1}}
    assert hub.nodes == ["y"] and hub.refused == {"x": "privacy-budget"}
    with pytest.raises(HealthmeshError, match="no answer"):
        FederatedCalls(["z"], lambda nodes, m, a: {}).call("m", {})


def test_registry() -> None:
    assert list(BUILTINS) == list(NAMES) and len(BUILTINS) == 10
    for name in ("count", "crosstab", "moments", "histogram", "quantiles", "correlation"):
        assert BUILTINS[name].name == name
    with pytest.raises(NotFound):
        get("nope")


def test_all_nodes_refusing_is_a_refusal_at_the_hub() -> None:
    tiny = {"a": ResourceData(RESOURCES[:3])}  # three patients
    with pytest.raises(DisclosureRisk, match=r"^min-cell-size: no node released"):
        run_local(BUILTINS["count"], {}, tiny)
