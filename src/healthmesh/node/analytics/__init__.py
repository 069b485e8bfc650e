"""Node-side federated analytics: the node's data as SQL over its FHIR store
(:class:`SqlNodeData`) and the SQL privacy stores (budgets, release log)."""

from healthmesh.node.analytics.data import SqlNodeData

__all__ = ["SqlNodeData"]
