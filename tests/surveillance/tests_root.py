"""Where the shared reference data lives, for building test parameters at collection time."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("HEALTHMESH_SHARED_DATA", ROOT.parent / "shared" / "data"))
