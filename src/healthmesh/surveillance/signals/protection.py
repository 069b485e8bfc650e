"""Small-count protection of aggregate counts before they leave a node.

``suppress`` withholds cells with ``0 < count < threshold`` (reported as ``None``); ``noise``
adds two-sided geometric noise (the discrete Laplace mechanism, epsilon-differentially private
for one count) and clips at zero; ``none`` passes counts through (for tests and trusted
deployments). Suppression leaves no partial information in the released cell; noise keeps
every cell usable for detection at the cost of variance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from healthmesh.errors import InvalidInput

K = TypeVar("K")


@dataclass(frozen=True)
class Protection:
    """Configuration of small-count protection."""

    method: Literal["suppress", "noise", "none"] = "suppress"
    threshold: int = 5
    epsilon: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in ("suppress", "noise", "none"):
            raise InvalidInput("protection method must be suppress, noise or none")
        if self.threshold < 1 or self.epsilon <= 0:
            raise InvalidInput("protection needs threshold >= 1 and epsilon > 0")


def protect(
    counts: Mapping[K, int], config: Protection, *, seed: int | None = None
) -> dict[K, int | None]:
    """Apply ``config`` to every cell.

    >>> protect({"a": 2, "b": 9}, Protection("suppress", threshold=5))
    {'a': None, 'b': 9}
    """
    if config.method == "none":
        return dict(counts)
    if config.method == "suppress":
        return {k: (None if 0 < v < config.threshold else v) for k, v in counts.items()}
    rng = np.random.default_rng(seed)
    p = 1 - np.exp(-config.epsilon)
    keys = list(counts)
    noise = rng.geometric(p, len(keys)) - rng.geometric(p, len(keys))
    return {k: max(0, int(counts[k]) + int(n)) for k, n in zip(keys, noise, strict=True)}
