"""Federated-learning scale figures: (1) seconds per round with and without SecAgg+ (median
of ``--repeats`` runs), (2) a run with many clients (default 50) under SecAgg+: seconds per
round and peak memory, (3) optionally the deployment engine with and without SecAgg+.

Clients hold synthetic tabular data (logistic model, 13 features, 200 rows each) so any number
of them can be made. Runs use Flower's legacy workflow (+ SecAggPlusWorkflow) through the
in-process grid (healthmesh.learning.local_grid): by default every client one after another
in this process (the figures are the protocol's compute cost, summed over clients); with
``--workers N --processes`` the clients of a stage run in N worker processes at once, as they
do at separate institutions (messages cross as Flower protobuf). ``--deployment`` times rounds
on the real deployment engine (SuperLink + SuperNodes, one ClientApp process per message).

    .venv/bin/python benchmarks/fl_scale.py --overhead-only [--repeats 3] [--shares 1.0]
        [--workers 2 --processes] [--deployment [--deployment-clients 2]]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from flwr.common.logger import FLOWER_LOGGER

CLIENT_APP = "healthmesh.learning.apps:client_app"


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


def per_round(result: dict[str, Any]) -> list[float]:
    return [r["seconds"] for r in result["rounds"] if r["seconds"] is not None]


def load() -> str:
    return "/".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_seconds() -> float:
    t = os.times()  # this process and its reaped children (the worker processes)
    return t.user + t.system + t.children_user + t.children_system


def run_grid(spec: dict[str, Any], files: dict[str, str], out: Path, workers: int,
             processes: bool) -> dict[str, Any]:
    from healthmesh.learning.apps import server_app
    from healthmesh.learning.local_grid import run_local

    cfgs = [{"data": p, "institution": k} for k, p in files.items()]
    rc = {"spec": json.dumps(spec), "result-dir": str(out), "clients": len(cfgs)}
    run_local(server_app, CLIENT_APP, cfgs, rc, workers=workers, processes=processes)
    result: dict[str, Any] = json.loads((out / "result.json").read_text())
    return result


class StageClock:
    """Times every ClientApp call of the sequential grid and every round start, so a round can
    be re-timed as if the institutions had answered each stage at the same time (their
    slowest one instead of their sum; no network): round − Σ_stages (sum − max) of its calls."""

    def __init__(self) -> None:
        from healthmesh.learning.local_grid import LocalGrid
        from healthmesh.learning.strategies import RunLog

        self.starts: list[float] = []
        self.cpu: list[float] = []  # this process's CPU seconds at each round start
        self.stages: list[tuple[float, float, float]] = []  # (start, sum, max) per exchange
        handle, pull, fit_config = LocalGrid._handle, LocalGrid.pull_messages, RunLog.fit_config
        calls: list[float] = []

        def timed_handle(grid: LocalGrid, msg: Any) -> Any:
            t = time.perf_counter()
            try:
                return handle(grid, msg)
            finally:
                calls.append(time.perf_counter() - t)

        def timed_pull(grid: LocalGrid, ids: Any) -> Any:
            calls.clear()
            t = time.perf_counter()
            out = pull(grid, ids)
            if calls:
                self.stages.append((t, sum(calls), max(calls)))
            return out

        def marked(log: RunLog, server_round: int) -> dict[str, Any]:
            self.starts.append(time.perf_counter())
            self.cpu.append(time.process_time())
            return fit_config(log, server_round)

        LocalGrid._handle = timed_handle  # type: ignore[method-assign]
        LocalGrid.pull_messages = timed_pull  # type: ignore[method-assign]
        RunLog.fit_config = marked  # type: ignore[method-assign]

    def cpu_rounds(self, end: float) -> list[float]:
        """CPU seconds of each round (the sequential grid does all work in this process)."""
        marks = [*self.cpu, end]
        return [b - a for a, b in itertools.pairwise(marks)]

    def parallel_rounds(self, rounds: list[float]) -> list[float]:
        """Each round's seconds less what running its stages' clients at once would save."""
        out = []
        for i, secs in enumerate(rounds):
            lo = self.starts[i]
            hi = self.starts[i + 1] if i + 1 < len(self.starts) else float("inf")
            saved = sum(s - m for t, s, m in self.stages if lo <= t < hi)
            out.append(secs - saved)
        self.starts.clear()
        self.stages.clear()
        self.cpu.clear()
        return out


def overhead(spec: dict[str, Any], tmp: str, args: argparse.Namespace) -> None:
    mode = (f"{args.workers} worker processes" if args.processes
            else f"{args.workers} threads" if args.workers > 1 else "sequential, one process")
    print(f"== SecAgg+ overhead, in-process grid ({mode}), 10 clients, 5 rounds, "
          f"{spec['local_steps']} local steps, {args.repeats} runs each")
    files = make_clients(10, tmp)
    sequential = args.workers == 1 and not args.processes
    clock = StageClock() if sequential else None
    meds: dict[bool, list[float]] = {False: [], True: []}
    cpus: dict[bool, list[float]] = {False: [], True: []}
    crit: dict[bool, list[float]] = {False: [], True: []}
    for rep in range(args.repeats):
        for secagg in (False, True):  # alternated, so drifting load hits both alike
            c0 = cpu_seconds()
            r = run_grid({**spec, "secagg": secagg, "min_clients": 10}, files,
                         Path(tmp) / f"o{secagg}{rep}", args.workers, args.processes)
            c1, end = cpu_seconds(), time.process_time()
            rounds = per_round(r)[1:]  # round 1 includes imports and first-use set-up
            meds[secagg].append(statistics.median(rounds))
            extra = ""
            if clock is not None:  # CPU of rounds 2.., and the critical path
                cpus[secagg].append(statistics.median(clock.cpu_rounds(end)[1:]))
                par = clock.parallel_rounds(per_round(r))[1:]
                crit[secagg].append(statistics.median(par))
                extra = f"\n    institutions at once (critical path) {[round(x, 3) for x in par]}"
                cpu_note = "CPU s/round"
            else:  # workers' CPU is known only once they exit: whole run, start included
                cpus[secagg].append((c1 - c0) / len(per_round(r)))
                cpu_note = "CPU s/round (whole run, incl. worker start)"
            print(f"run {rep + 1} secagg={secagg!s:5s} median s/round {meds[secagg][-1]:.3f}  "
                  f"rounds {[round(x, 3) for x in rounds]}  {cpu_note} {cpus[secagg][-1]:.3f}"
                  f"  accuracy {r['metric']:.3f}  load {load()}{extra}")
    plain, sec = statistics.median(meds[False]), statistics.median(meds[True])
    print(f"median of {args.repeats} runs: plain {plain:.3f} s/round, SecAgg+ {sec:.3f} s/round "
          f"-> {sec / plain:.2f}x (sharing graph: {args.shares:g} of peers, reconstruction "
          f"threshold {spec.get('secagg_threshold', 0.5):g} of shares)")
    p, q = statistics.median(cpus[False]), statistics.median(cpus[True])
    print(f"CPU: plain {p:.3f}, SecAgg+ {q:.3f} s/round -> {q / p:.2f}x")
    if clock is not None:
        p, q = statistics.median(crit[False]), statistics.median(crit[True])
        print(f"critical path (each stage's slowest institution + the server, no network): "
              f"plain {p:.3f}, SecAgg+ {q:.3f} s/round -> {q / p:.2f}x")


def deployment(spec: dict[str, Any], tmp: str, args: argparse.Namespace) -> None:
    from healthmesh.learning.deploy import Deployment

    n = args.deployment_clients
    print(f"\n== deployment engine (SuperLink + {n} SuperNodes), {args.deployment_rounds} "
          f"rounds each, {args.repeats} runs each")
    files = make_clients(n, tmp, seed=2)
    meds: dict[bool, list[float]] = {False: [], True: []}
    with Deployment({k: {"data": v} for k, v in files.items()}) as dep:
        for rep in range(args.repeats):
            for secagg in (False, True):
                r = dep.run(json.dumps({**spec, "rounds": args.deployment_rounds,
                                        "secagg": secagg, "min_clients": n}), timeout=1800)
                rounds = per_round(r)[1:]
                meds[secagg].append(statistics.median(rounds))
                print(f"run {rep + 1} secagg={secagg!s:5s} s/round "
                      f"{[round(x, 2) for x in per_round(r)]}  load {load()}", flush=True)
    plain, sec = statistics.median(meds[False]), statistics.median(meds[True])
    print(f"median: plain {plain:.2f} s/round, SecAgg+ {sec:.2f} s/round -> {sec / plain:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1,
                    help="clients of a stage at once (threads, or processes with --processes)")
    ap.add_argument("--processes", action="store_true")
    ap.add_argument("--deployment", action="store_true")
    ap.add_argument("--deployment-only", action="store_true")
    ap.add_argument("--deployment-clients", type=int, default=2)
    ap.add_argument("--deployment-rounds", type=int, default=4)
    ap.add_argument("--shares", type=float, default=1.0,
                    help="SecAgg+ sharing graph: fraction of peers (1.0 = all)")
    ap.add_argument("--local-steps", type=int, default=100,
                    help="local SGD steps per round (more: SecAgg+'s fixed cost weighs less)")
    ap.add_argument("--overhead-only", action="store_true")
    args = ap.parse_args()
    FLOWER_LOGGER.setLevel(logging.ERROR)
    spec = {"n_features": 13, "rounds": 5, "local_steps": args.local_steps, "batch_size": 32,
            "optimizer": "sgd", "lr": 0.1, "secagg_shares": args.shares}
    with tempfile.TemporaryDirectory() as tmp:
        if args.deployment_only:
            deployment(spec, tmp, args)
            return
        overhead(spec, tmp, args)
        if args.overhead_only:
            return

        print(f"\n== {args.clients} clients, SecAgg+ on, 3 rounds")
        many = make_clients(args.clients, tmp, seed=1)
        t = time.perf_counter()
        r = run_grid({**spec, "rounds": 3, "secagg": True, "min_clients": args.clients},
                     many, Path(tmp) / "many", args.workers, args.processes)
        wall = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"clients aggregated per round {r['clients_per_round']}; "
              f"s/round {[round(x, 2) for x in per_round(r)]}; wall {wall:.1f} s; "
              f"accuracy {r['metric']:.3f}; peak RSS {rss:.0f} MiB (this process)")
        if args.deployment:
            deployment(spec, tmp, args)


if __name__ == "__main__":
    main()
