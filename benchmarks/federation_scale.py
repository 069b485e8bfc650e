"""Federation at regional scale: 620 in-process nodes (100 hospitals, 500 clinics, 20
disease-control centres) with small data each, one hub; times a count study and a logistic
GLM (medians of repeats) and reports the process's peak RSS.

Targets (issue 6): count < 10 s, logistic GLM < 60 s with 620 nodes.

    .venv/bin/python benchmarks/federation_scale.py [--hospitals 100 --clinics 500 --cdcs 20]
        [--repeats 3] [--threads]

Everything runs in this one process (hub + nodes over the in-process transport, which still
signs and verifies every request and seals every result); agents are driven synchronously by
the hub while it waits (``--threads``: each agent in its own polling thread instead).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hub"))

from data import resources, study

from healthmesh.federation.inprocess import InProcessFederation, NodeSpec


class Split:
    """Splits wall time into hub work and node work: every call into the hub's endpoint is
    hub work; the rest of an agent's poll-and-handle is node work. In the simulation the
    nodes' work is serial; deployed, nodes work in parallel, so a round costs the hub work
    plus the slowest node: ``projected = wall - node work + sum over waves of the slowest
    node's work in that wave`` (a wave is one pass of every agent)."""

    def __init__(self, fed: InProcessFederation) -> None:
        self.hub = 0.0
        self.node = 0.0
        self.waves = 0.0
        endpoint = fed.hub.endpoint
        handle = endpoint.handle

        def timed_handle(*a: object, **k: object) -> object:
            t = time.perf_counter()
            try:
                return handle(*a, **k)  # type: ignore[arg-type]
            finally:
                self.hub += time.perf_counter() - t

        endpoint.handle = timed_handle  # type: ignore[method-assign]
        for node in fed.nodes.values():
            node.agent.run_once = self._timed_agent(node.agent.run_once)  # type: ignore[method-assign]
        pump = fed.pump

        def timed_pump() -> int:
            self._wave: list[float] = []
            n = pump()
            self.waves += max(self._wave, default=0.0)
            return n

        fed.pump = timed_pump  # type: ignore[method-assign]
        fed.hub.jobs.pump = timed_pump

    def _timed_agent(self, run_once):  # type: ignore[no-untyped-def]
        def timed(*a: object, **k: object) -> int:
            hub0, t = self.hub, time.perf_counter()
            n = run_once(*a, **k)
            own = time.perf_counter() - t - (self.hub - hub0)
            self.node += own
            self._wave.append(own)
            return int(n)

        return timed

    def reset(self) -> None:
        self.hub = self.node = self.waves = 0.0


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hospitals", type=int, default=100)
    ap.add_argument("--clinics", type=int, default=500)
    ap.add_argument("--cdcs", type=int, default=20)
    ap.add_argument(
        "--patients", type=str, default="60,25,15", help="patients per hospital, clinic, CDC"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", action="store_true")
    ap.add_argument(
        "--profile", type=Path, default=None, help="write a cProfile of the first repeat of "
        "each computation to PATH.<name>.prof"
    )
    args = ap.parse_args()
    sizes = dict(
        zip(("hospital", "clinic", "cdc"), map(int, args.patients.split(",")), strict=True)
    )
    specs = (
        [NodeSpec(f"H{i:03d}", "hospital") for i in range(args.hospitals)]
        + [NodeSpec(f"C{i:03d}", "clinic") for i in range(args.clinics)]
        + [NodeSpec(f"CDC{i:02d}", "cdc") for i in range(args.cdcs)]
    )
    t0 = time.perf_counter()
    fed = InProcessFederation(specs, job_timeout=600, catalog=False)
    t_build = time.perf_counter() - t0
    for k, spec in enumerate(specs):
        fed.load(spec.institution, resources(spec.institution, sizes[spec.kind], k, refusals=0))
    t_load = time.perf_counter() - t0 - t_build
    print(
        f"nodes: {len(specs)} ({args.hospitals} hospitals, {args.clinics} clinics, "
        f"{args.cdcs} CDCs; patients each {args.patients})"
    )
    print(f"setup: build {t_build:.1f} s, load {t_load:.1f} s, RSS {rss_mb():.0f} MB")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 shared cores)")
    if args.threads:
        fed.start(wait_s=0.5)
    st = fed.submit(study(fed.names, cohort={}))
    fed.pump()
    fed.approve(st.study_id, computations=["model"])
    split = Split(fed) if not args.threads else None
    for name in ("n", "model"):
        times, cpus, projected, rec = [], [], [], None
        for _ in range(args.repeats):
            if split:
                split.reset()
            for node in fed.nodes.values():  # cold: no design kept from an earlier run
                node.agent.data.clear()  # type: ignore[attr-defined]
            prof = cProfile.Profile() if args.profile and not times else None
            t, cpu = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            rec = fed.run(st.study_id, name)
            if prof:
                prof.disable()
                prof.dump_stats(f"{args.profile}.{name}.prof")
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - cpu)
            if split:
                projected.append(times[-1] - split.node + split.waves)
        assert rec is not None
        extra = ""
        if rec.result and "n" in rec.result:
            extra = f"n={rec.result['n']}"
        if rec.result and "iterations" in rec.result:
            extra += f" iterations={rec.result['iterations']}"
        print(
            f"{name}: median {statistics.median(times):.2f} s over {args.repeats} "
            f"(runs {', '.join(f'{x:.2f}' for x in times)}); {rec.status}, "
            f"{len(rec.participants)} took part, {len(rec.refused)} refused "
            f"{sorted(set(rec.refused.values()))}, {len(rec.not_responded)} silent; {extra}"
        )
        print(
            f"{name}: CPU time of this process median {statistics.median(cpus):.2f} s "
            f"(the machine is shared: load average {os.getloadavg()[0]:.1f})"
        )
        if projected:
            print(
                f"{name}: with the nodes working in parallel (hub work + slowest node per "
                f"wave): median {statistics.median(projected):.2f} s; last run: hub "
                f"{split.hub:.2f} s, all nodes' work {split.node:.2f} s"
            )  # type: ignore[union-attr]
    print(f"peak RSS (hub and all nodes in one process): {rss_mb():.0f} MB")
    fed.close()


if __name__ == "__main__":
    main()
