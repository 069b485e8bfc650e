"""Federated statistics: cohort definitions, the algorithm SDK and built-in computations (pure)."""
