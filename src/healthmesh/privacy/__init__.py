"""Disclosure control before anything leaves a node: minimum cells, differencing, GLM limits, differential privacy and budgets (pure)."""
