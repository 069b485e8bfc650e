"""Time every detector on synthetic district x syndrome series and compare with R.

3,000 series (default): daily counts for two years (EARS C1-C3, CUSUM) and weekly counts with
six years of history and two monitored years (Farrington, Noufaily, Bayes, GLR). When
``Rscript`` with the ``surveillance`` package is present, R runs on a sample of the same
series in the same run; its time per series is extrapolated to all series, and R's upper
bounds and alarms on the sample are compared with ours. Prints medians and ratios.

    .venv/bin/python benchmarks/surveillance_detectors.py [--series 3000] [--r-sample 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

# One BLAS thread: the batched fits are many small products; oversubscribed BLAS threads on a
# shared machine made them 3x slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from healthmesh.surveillance.detectors import (  # noqa: E402
    Cusum,
    EarsC,
    Farrington,
    FarringtonFlexible,
    GlrNb,
    SeriesFrame,
    bayes_system,
)

DAYS, WEEKS, MONITOR_WEEKS = 730, 6 * 52 + 4, 104


def synth(n_series: int, n_time: int, freq: int, seed: int) -> np.ndarray:
    """Seasonal negative binomial counts with a few injected outbreaks."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_time)
    level = rng.uniform(0.5, 4.0, n_series)[:, None]
    amp = rng.uniform(0.0, 0.8, n_series)[:, None]
    mu = np.exp(level + amp * np.sin(2 * np.pi * t / freq + rng.uniform(0, 6, n_series)[:, None]))
    y = rng.negative_binomial(5, 5 / (5 + mu)).astype(float)
    starts = rng.integers(n_time // 2, n_time - 5, n_series)
    for i, s in enumerate(starts):
        y[i, s : s + 4] += rng.poisson(3 * mu[i, s], 4)
    return y


DETECTORS = {
    "EARS_C1": ("daily", lambda: EarsC("C1"), "earsC(s, control=list(range=rng, method='C1'))"),
    "EARS_C2": ("daily", lambda: EarsC("C2"), "earsC(s, control=list(range=rng, method='C2'))"),
    "EARS_C3": ("daily", lambda: EarsC("C3"), "earsC(s, control=list(range=rng, method='C3'))"),
    "CUSUM": ("daily", lambda: Cusum(), "cusum(s, control=list(range=rng))"),
    "Farrington": ("weekly", lambda: FarringtonFlexible.farrington(alpha=0.005),
                   "farringtonFlexible(s, control=list(range=rng, b=4, w=3, noPeriods=1, "
                   "weightsThreshold=1, pastWeeksNotIncluded=3, pThresholdTrend=0.05, "
                   "thresholdMethod='delta', alpha=0.005))"),
    "Noufaily": ("weekly", lambda: FarringtonFlexible.noufaily(alpha=0.005),
                 "farringtonFlexible(s, control=list(range=rng, b=4, w=3, noPeriods=10, "
                 "weightsThreshold=2.58, pastWeeksNotIncluded=26, pThresholdTrend=1, "
                 "thresholdMethod='nbPlugin', alpha=0.005))"),
    "Farrington_classic": ("weekly", lambda: Farrington(b=4, w=3, alpha=0.01),
                           "farrington(s, control=list(range=rng, b=4, w=3, alpha=0.01))"),
    "Bayes2": ("weekly", lambda: bayes_system(2),
               "bayes(s, control=list(range=rng, b=1, w=6, actY=TRUE, alpha=0.05))"),
    "GLR_Poisson": ("weekly", lambda: GlrNb(alpha=0.0),
                    "glrnb(s, control=list(range=rng, alpha=0, ret='value'))"),
    "GLR_NB": ("weekly", lambda: GlrNb(alpha=None),
               "glrnb(s, control=list(range=rng, alpha=NULL, ret='value'))"),
    "CUSUM_rossi": ("daily", lambda: Cusum(trans="rossi"),
                    "cusum(s, control=list(range=rng, trans='rossi'))"),
}

R_TEMPLATE = """
suppressMessages(library(surveillance))
obs <- as.matrix(read.csv("{csv}", header=FALSE))
rng <- {first}:{last}
out <- list(); secs <- c()
for (j in 1:ncol(obs)) {{
  s <- sts(observed=obs[, j, drop=FALSE], frequency={freq}, start=c(2000, 1))
  tm <- system.time(res <- suppressWarnings({call}))
  secs <- c(secs, tm[["elapsed"]])
  out[[j]] <- list(ub=as.numeric(upperbound(res)), al=as.integer(alarms(res)))
}}
cat(jsonlite::toJSON(list(secs=secs, out=out), digits=NA, na="null"))
"""


def run_r(name: str, obs: np.ndarray, first: int, last: int, freq: int, call: str) -> dict | None:
    """Run one R detector on the sample columns; None when R is absent."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "obs.csv"
        np.savetxt(csv, obs.T, fmt="%d", delimiter=",")
        script = Path(tmp) / "run.R"
        script.write_text(R_TEMPLATE.format(csv=csv, first=first, last=last, freq=freq,
                                            call=call))
        proc = subprocess.run(["Rscript", str(script)], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            print(f"  R failed for {name}: {proc.stderr.strip()[-300:]}")
            return None
        return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=3000)
    ap.add_argument("--r-sample", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    daily = synth(args.series, DAYS, 365, 1)
    weekly = synth(args.series, WEEKS, 52, 2)
    print(f"{args.series} series; daily {DAYS} days, weekly {WEEKS} weeks "
          f"(monitor last {MONITOR_WEEKS}); R sample {args.r_sample} series")
    print(f"{'detector':20s} {'ours_s':>9s} {'R_s/series':>11s} {'R_all_s':>9s} "
          f"{'speedup':>8s}  sample identical")
    for name, (kind, make, call) in DETECTORS.items():
        if args.only and name not in args.only.split(","):
            continue
        obs, freq = (daily, 365) if kind == "daily" else (weekly, 52)
        n_time = obs.shape[1]
        first = 15 if kind == "daily" else n_time - MONITOR_WEEKS + 1
        rng = np.arange(first, n_time + 1)
        det = make()
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = det.run(SeriesFrame(observed=obs, freq=freq), rng)
            times.append(time.perf_counter() - t0)
        ours = statistics.median(times)
        sample = obs[: args.r_sample]
        r = run_r(name, sample, first, n_time, freq, call) if args.r_sample else None
        if r is None:
            print(f"{name:20s} {ours:9.2f} {'n/a':>11s}")
            continue
        per = statistics.median(r["secs"])
        r_all = per * args.series
        same = True
        for j, item in enumerate(r["out"]):
            ub = np.array([np.nan if v is None else v for v in item["ub"]], dtype=float)
            al = np.array([0 if v is None else v for v in item["al"]], dtype=bool)
            ours_ub = res.upperbound[j]
            ok = (np.isnan(ub) & np.isnan(ours_ub)) | (np.abs(ub - ours_ub)
                                                       <= 1e-6 * np.maximum(np.abs(ub), 1e-12))
            same &= bool(ok.all()) and bool((al == res.alarm[j]).all())
        print(f"{name:20s} {ours:9.2f} {per:11.4f} {r_all:9.1f} {r_all / ours:8.1f}x  {same}")


if __name__ == "__main__":
    main()
