"""Fed-TCGA-BRCA (FLamby) with healthmesh's Flower training: linear Cox (Breslow), C-index
(Harrell, lifelines' convention, healthmesh.learning.metrics) averaged over the 6 regions'
test sets, 5 rounds, 5 seeds (42-46), mean ± sd, beside FLamby's published table.

Local optimisation: Adam lr 1e-3, 100 full-batch steps per round (FLamby trains minibatches;
the Breslow likelihood needs whole risk sets, so each node uses all its rows). SecAgg+ ON,
in-process grid (same Flower ServerApp/ClientApp, no SuperLink).

    .venv/bin/python benchmarks/fl_tcga.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from flwr.common.logger import FLOWER_LOGGER

from healthmesh.learning.flamby import load_tcga, write_nodes
from healthmesh.learning.train import LocalEngine

FLAMBY = Path(__file__).resolve().parents[2] / "shared" / "data" / "flamby"
PUBLISHED = {
    "pooled (centralised)": "0.676 ± 0.085", "FedAvg": "0.732 ± 0.162", "FedProx": "0.729",
    "FedAdagrad": "0.813 ± 0.004", "FedYogi": "0.815 ± 0.023", "FedAdam": "0.815 ± 0.023",
}
BASE = {"task": "survival", "model": "cox", "n_features": 39, "rounds": 5, "local_steps": 100,
        "lr": 1e-3, "min_clients": 6, "secagg": True}
CONFIGS = {
    "fedavg": {"strategy": "fedavg"},
    "fedyogi (eta 0.1)": {"strategy": "fedyogi", "server_lr": 0.1, "server_tau": 1e-9},
    "fedavg + client-level DP eps=1, delta=1e-3 (clip 0.5)": {
        "strategy": "fedavg", "dp": {"level": "client", "epsilon": 1.0, "delta": 1e-3,
                                     "clip": 0.5}},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    FLOWER_LOGGER.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_nodes(load_tcga(FLAMBY), Path(tmp))
        print("engine: Flower legacy workflow + SecAgg+, in-process grid; 6 clients")
        for name, extra in CONFIGS.items():
            cis, secs = [], []
            for seed in range(42, 42 + args.seeds):
                t = time.perf_counter()
                r = LocalEngine().run(json.dumps({**BASE, **extra, "seed": seed}), files,
                                      Path(tmp) / "out")
                secs.append(time.perf_counter() - t)
                cis.append(r["metric"])
            sd = statistics.stdev(cis) if len(cis) > 1 else 0.0
            print(f"{name:55s} C-index {statistics.mean(cis):.3f} ± {sd:.3f}  "
                  f"seeds {[round(c, 3) for c in cis]}  ({statistics.median(secs):.1f} s/run)",
                  flush=True)
    print("\nFLamby published (mean over client test sets, 5 seeds):")
    for k, v in PUBLISHED.items():
        print(f"  {k:24s} {v}")


if __name__ == "__main__":
    main()
