"""Federated learning on Flower: governed training runs, secure aggregation (SecAgg+),
differential privacy, a model registry and node-side scoring (issue 7).

The public face: :func:`healthmesh.learning.train.train` runs one governed training run;
:mod:`healthmesh.learning.registry` stores what it produced; :mod:`healthmesh.learning.scoring`
scores a node's own rows with a registered model. See ``docs/learning.md``.
"""
