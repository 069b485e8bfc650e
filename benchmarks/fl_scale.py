"""Federated-learning scale figures: (1) seconds per round with and without SecAgg+ (median),
(2) a run with many clients (default 50) under SecAgg+: seconds per round and peak memory.

Clients hold synthetic tabular data (logistic model, 13 features, 200 rows each) so any number
of them can be made. Runs use Flower's legacy workflow (+ SecAggPlusWorkflow) through the
in-process grid (healthmesh.learning.local_grid), sequentially on one core: the figures are
the protocol's compute cost, not network latency. Optionally (--deployment) also times rounds
on the real deployment engine (SuperLink + SuperNodes, one ClientApp process per message).

    .venv/bin/python benchmarks/fl_scale.py [--clients 50] [--deployment]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from flwr.common.logger import FLOWER_LOGGER

from healthmesh.learning.train import LocalEngine


def make_clients(n: int, folder: str, rows: int = 200, seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    beta = rng.normal(0, 0.7, 13)
    files = {}
    for i in range(n):
        x = rng.normal(rng.normal(0, 0.3, 13), 1.0, (rows, 13))
        y = (rng.random(rows) < 1 / (1 + np.exp(-(x @ beta)))).astype(np.float64)
        p = f"{folder}/c{i:03d}.npz"
        k = int(rows * 0.7)
        np.savez(p, x_train=x[:k], y_train=y[:k], x_test=x[k:], y_test=y[k:])
        files[f"c{i:03d}"] = p
    return files


def per_round(result: dict) -> list[float]:
    return [r["seconds"] for r in result["rounds"] if r["seconds"] is not None]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--deployment", action="store_true")
    ap.add_argument("--shares", type=float, default=1.0,
                    help="SecAgg+ sharing graph: fraction of peers (1.0 = all)")
    ap.add_argument("--overhead-only", action="store_true")
    args = ap.parse_args()
    FLOWER_LOGGER.setLevel(logging.ERROR)
    spec = {"n_features": 13, "rounds": 5, "local_steps": 100, "batch_size": 32,
            "optimizer": "sgd", "lr": 0.1, "secagg_shares": args.shares}
    with tempfile.TemporaryDirectory() as tmp:
        print("== SecAgg+ overhead, in-process grid, 10 clients, 5 rounds, 100 local steps")
        files = make_clients(10, tmp)
        med = {}
        for secagg in (False, True):
            r = LocalEngine().run(json.dumps({**spec, "secagg": secagg, "min_clients": 10}),
                                  files, Path(tmp) / f"o{secagg}")
            rounds = per_round(r)[1:]  # round 1 includes imports and first-use set-up
            med[secagg] = statistics.median(rounds)
            print(f"secagg={secagg!s:5s} median s/round {med[secagg]:.3f}  "
                  f"rounds {[round(x, 3) for x in rounds]}  accuracy {r['metric']:.3f}")
        print(f"SecAgg+ / plain time per round: {med[True] / med[False]:.2f}x "
              f"(sharing graph: {args.shares:g} of peers)")
        if args.overhead_only:
            return

        print(f"\n== {args.clients} clients, SecAgg+ on, 3 rounds")
        many = make_clients(args.clients, tmp, seed=1)
        t = time.perf_counter()
        r = LocalEngine().run(
            json.dumps({**spec, "rounds": 3, "secagg": True, "min_clients": args.clients}),
            many, Path(tmp) / "many")
        wall = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"clients aggregated per round {r['clients_per_round']}; "
              f"s/round {[round(x, 2) for x in per_round(r)]}; wall {wall:.1f} s; "
              f"accuracy {r['metric']:.3f}; peak RSS {rss:.0f} MiB (whole process)")

        if args.deployment:
            from healthmesh.learning.deploy import Deployment

            print("\n== deployment engine (SuperLink + 2 SuperNodes), 2 rounds each")
            two = dict(list(files.items())[:2])
            with Deployment({k: {"data": v} for k, v in two.items()}) as dep:
                for secagg in (False, True):
                    r = dep.run(json.dumps({**spec, "rounds": 2, "secagg": secagg,
                                            "min_clients": 2}), timeout=1200)
                    print(f"secagg={secagg!s:5s} s/round {[round(x, 1) for x in per_round(r)]}")


if __name__ == "__main__":
    main()
