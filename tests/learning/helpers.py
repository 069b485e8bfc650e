"""Shared helpers of the learning tests: FLamby nodes written as the .npz files ClientApps read,
and running a spec through the in-process grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from healthmesh.learning.flamby import NodeSplit

from ..conftest import SHARED_DATA

FLAMBY = SHARED_DATA / "flamby"


def write_nodes(splits: list[NodeSplit], folder: Path) -> dict[str, str]:
    """institution -> path of its .npz."""
    import numpy as np

    out = {}
    for s in splits:
        p = folder / f"{s.name}.npz"
        np.savez(p, x_train=s.x_train, y_train=s.y_train, x_test=s.x_test, y_test=s.y_test)
        out[s.name] = str(p)
    return out


def run_spec(files: dict[str, str], spec: dict[str, Any], out: Path, **kw: Any) -> dict[str, Any]:
    """Train ``spec`` on the nodes in-process; the server's result (with model_path)."""
    from healthmesh.learning.train import LocalEngine

    return LocalEngine(**kw).run(json.dumps(spec), files, out)
