"""Readers of the FLamby tabular benchmarks (Fed-Heart-Disease, Fed-TCGA-BRCA) following
FLamby's exact preprocessing and splits, so results compare with its published table.

The caller passes the folder holding the files (``../shared/data/flamby`` in benchmarks and
tests); the product itself never reads benchmark data. Each centre becomes one
:class:`NodeSplit` — the rows one institution would hold.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import train_test_split

from healthmesh.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
HEART_CENTRES = ("cleveland", "hungarian", "switzerland", "va")


@dataclass(frozen=True)
class NodeSplit:
    """One institution's training and test rows. For survival ``y`` is (n, 2): time, event."""

    name: str
    x_train: FloatArray
    y_train: FloatArray
    x_test: FloatArray
    y_test: FloatArray


def write_nodes(splits: list[NodeSplit], folder: Path) -> dict[str, str]:
    """Each split as the ``.npz`` an institution's ClientApp reads; institution -> path."""
    out = {}
    for s in splits:
        path = folder / f"{s.name}.npz"
        np.savez(path, x_train=s.x_train, y_train=s.y_train, x_test=s.x_test, y_test=s.y_test)
        out[s.name] = str(path)
    return out


def _one_hot_drop_first(col: FloatArray, levels: list[float]) -> FloatArray:
    return np.stack([(col == lv).astype(np.float64) for lv in levels[1:]], axis=1)


def load_heart(folder: Path) -> list[NodeSplit]:
    """Fed-Heart-Disease: 4 centres, 13 features, binary label (README protocol, steps 1-6)."""
    raw: list[FloatArray] = []
    for centre in HEART_CENTRES:
        path = folder / "fed_heart_disease" / f"processed.{centre}.data"
        if not path.is_file():
            raise InvalidInput(f"FLamby heart file missing: {path.name}")
        rows = []
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            vals = line.strip().split(",")
            keep = vals[:10] + vals[13:14]  # drop slope, ca, thal
            if "?" in keep:
                continue
            rows.append([float(v) for v in keep])
        raw.append(np.array(rows, dtype=np.float64))
    # one-hot levels over all centres (cp: 1-4, restecg: 0-2), as pandas get_dummies would
    cp_levels = sorted({float(v) for a in raw for v in a[:, 2]})
    ecg_levels = sorted({float(v) for a in raw for v in a[:, 6]})
    out = []
    for centre, a in zip(HEART_CENTRES, raw, strict=True):
        y = (a[:, 10] > 0).astype(np.float64)
        x = np.concatenate(
            [
                a[:, [0, 1]],
                _one_hot_drop_first(a[:, 2], cp_levels),
                a[:, [3, 4, 5]],
                _one_hot_drop_first(a[:, 6], ecg_levels),
                a[:, [7, 8, 9]],
            ],
            axis=1,
        )
        # FLamby stratifies only when every class has more than 2 rows (not Switzerland)
        levels, counts = np.unique(y, return_counts=True)
        strat = y if len(levels) > 1 and (counts > 2).all() else None
        tr, te = train_test_split(
            np.arange(len(a)), train_size=0.66, test_size=0.34, random_state=43,
            shuffle=True, stratify=strat,
        )
        mu = x[tr].mean(axis=0)
        sd = x[tr].std(axis=0, ddof=1)
        xn = (x - mu) / (sd + 1e-9)
        out.append(NodeSplit(centre, xn[tr], y[tr], xn[te], y[te]))
    return out


def load_tcga(folder: Path) -> list[NodeSplit]:
    """Fed-TCGA-BRCA: 6 regions, 39 raw features, ``y`` = (time, event) per row."""
    base = folder / "fed_tcga_brca"
    with (base / "brca.csv").open(newline="") as f:
        reader = csv.reader(f)
        next(reader)
        rows = {r[0]: [float(v) for v in r[1:]] for r in reader}
    with (base / "train_test_split.csv").open(newline="") as f:
        split = {r["pid"]: r["fold2"] for r in csv.DictReader(f)}
    out = []
    for k in range(6):
        parts = []
        for fold in (f"train_{k}", f"test_{k}"):
            pids = sorted(p for p, v in split.items() if v == fold and p in rows)
            a = np.array([rows[p] for p in pids], dtype=np.float64)
            # columns 1..39 are features; the last two are E (event) and T (time)
            parts.append((a[:, :39], np.stack([a[:, -1], a[:, -2]], axis=1)))
        (xtr, ytr), (xte, yte) = parts
        out.append(NodeSplit(f"region_{k}", xtr, ytr, xte, yte))
    return out
