"""Shared helpers of the learning tests: FLamby nodes written as the .npz files ClientApps read,
and running a spec through the in-process grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from healthmesh.learning.flamby import write_nodes

from ..conftest import SHARED_DATA

FLAMBY = SHARED_DATA / "flamby"
__all__ = ["FLAMBY", "run_spec", "write_nodes"]


def run_spec(files: dict[str, str], spec: dict[str, Any], out: Path, **kw: Any) -> dict[str, Any]:
    """Train ``spec`` on the nodes in-process; the server's result (with model_path)."""
    from healthmesh.learning.train import LocalEngine

    return LocalEngine(**kw).run(json.dumps(spec), files, out)
