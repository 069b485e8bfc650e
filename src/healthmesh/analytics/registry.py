"""The built-in algorithms by name; modules are imported when first asked for.

``BUILTINS["count"]`` is the :class:`~healthmesh.analytics.sdk.Algorithm` of
:mod:`healthmesh.analytics.count`, and so on for ``crosstab``, ``moments``, ``histogram``,
``quantiles``, ``correlation``, ``glm``, ``kaplan_meier``, ``cox`` and
``federated_learning`` (:mod:`healthmesh.learning.study`). Lazy, so that importing the
registry does not import statsmodels.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from healthmesh.analytics.sdk import Algorithm
from healthmesh.errors import NotFound

NAMES = (
    "count",
    "crosstab",
    "moments",
    "histogram",
    "quantiles",
    "correlation",
    "glm",
    "kaplan_meier",
    "cox",
    "federated_learning",
)
#: built-ins that live outside this package (default: ``healthmesh.analytics.<name>``)
MODULES = {"federated_learning": "healthmesh.learning.study"}


class _Builtins(Mapping[str, Algorithm]):
    def __init__(self) -> None:
        self._loaded: dict[str, Algorithm] = {}

    def __getitem__(self, name: str) -> Algorithm:
        if name not in NAMES:
            raise KeyError(name)
        if name not in self._loaded:
            module = importlib.import_module(MODULES.get(name, f"healthmesh.analytics.{name}"))
            algorithm: Algorithm = module.ALGORITHM
            self._loaded[name] = algorithm
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)


BUILTINS: Mapping[str, Algorithm] = _Builtins()


def get(name: str) -> Algorithm:
    """The built-in algorithm ``name``; :class:`~healthmesh.errors.NotFound` otherwise."""
    try:
        return BUILTINS[name]
    except KeyError:
        raise NotFound(f"no built-in algorithm named {name!r}") from None
