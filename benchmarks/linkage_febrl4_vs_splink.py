"""Plaintext FEBRL4 linkage: healthmesh's linker against Splink 5 (DuckDB), same run.

Both are unsupervised (EM / random-sampling u) and use a 0.5 match-probability threshold;
healthmesh additionally resolves one-to-one. Two Splink models run: ``splink`` (our blocking
rules, no term-frequency adjustments) and ``splink-detailed`` (the "detailed model" of Splink's
own FEBRL4 example: its blocking rules, term-frequency adjustments on names, street number
and postcode, EM blocked on date of birth and on postcode; the issue's F1 anchor of 0.9991).
Prints median wall time over ``--repeat`` runs, precision/recall/F1, the time ratio against
each and the load average. Usage::

    .venv/bin/python benchmarks/linkage_febrl4_vs_splink.py --repeat 3
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from pathlib import Path

import pandas as pd

from healthmesh.identity.engine.linker import link
from healthmesh.identity.engine.presets import febrl_spec, prepare_febrl

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/febrl"


def prf(pred: set, truth: set) -> tuple[float, float, float]:
    tp = len(pred & truth)
    p, r = tp / max(len(pred), 1), tp / len(truth)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def run_healthmesh(a: pd.DataFrame, b: pd.DataFrame) -> set:
    result = link(prepare_febrl(a), prepare_febrl(b), febrl_spec(with_ssn=True))
    return set(result.matches())


def run_splink(a: pd.DataFrame, b: pd.DataFrame) -> set:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    db_api = DuckDBAPI()
    frames = []
    for name, df in (("a", a), ("b", b)):
        df = df.copy()
        df["dob"] = pd.to_datetime(df["date_of_birth"], format="%Y%m%d", errors="coerce")
        frames.append(db_api.register(df, dataset_display_name=name))
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("surname", "date_of_birth"),
            block_on("given_name", "date_of_birth"),
            block_on("postcode", "given_name"),
            block_on("postcode", "surname"),
            block_on("soc_sec_id"),
        ],
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("dob", input_is_string=False),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number"),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.8]),
            cl.JaroWinklerAtThresholds("suburb", [0.9]),
            cl.DamerauLevenshteinAtThresholds("postcode", [1]),
            cl.ExactMatch("state"),
        ],
    )
    linker = Linker(frames, settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname"), block_on("soc_sec_id")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    training = linker.training
    training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    preds = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    return set(zip(preds["rec_id_l"], preds["rec_id_r"], strict=True))


def run_splink_detailed(a: pd.DataFrame, b: pd.DataFrame) -> set:
    """The detailed model of Splink's FEBRL4 example (docs/demos/examples/duckdb/febrl4)."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    db_api = DuckDBAPI()
    frames = [
        db_api.register(df.copy(), dataset_display_name=name) for name, df in (("a", a), ("b", b))
    ]
    rules = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    tf = {"term_frequency_adjustments": True}
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=rules,
        comparisons=[
            cl.NameComparison("given_name").configure(**tf),
            cl.NameComparison("surname").configure(**tf),
            cl.DateOfBirthComparison(
                "date_of_birth",
                input_is_string=True,
                datetime_format="%Y%m%d",
                invalid_dates_as_null=True,
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(**tf),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(**tf),
        ],
    )
    linker = Linker(frames, settings, log_level=logging.ERROR)
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.8
    )
    training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in ("date_of_birth", "postcode"):
        training.estimate_parameters_using_expectation_maximisation(
            block_on(rule), estimate_without_term_frequencies=True
        )
    preds = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    return set(zip(preds["rec_id_l"], preds["rec_id_r"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    a = pd.read_csv(DATA / "febrl4a.csv", dtype=str)
    b = pd.read_csv(DATA / "febrl4b.csv", dtype=str)
    truth = {tuple(x) for x in pd.read_csv(DATA / "febrl4_true_links.csv").values.tolist()}
    results = {}
    runs = (
        ("healthmesh", run_healthmesh),
        ("splink", run_splink),
        ("splink-detailed", run_splink_detailed),
    )
    for name, fn in runs:
        times, pred = [], set()
        for _ in range(args.repeat):
            start = time.perf_counter()
            pred = fn(a, b)
            times.append(time.perf_counter() - start)
        p, r, f1 = prf(pred, truth)
        results[name] = statistics.median(times)
        print(
            f"{name:15s} median {results[name]:.2f}s P={p:.4f} R={r:.4f} F1={f1:.4f} runs={times}"
        )
    for ref in ("splink", "splink-detailed"):
        ratio = results["healthmesh"] / results[ref]
        print(f"time ratio healthmesh/{ref} = {ratio:.3f} (target <= 0.5)")
    print(f"load average (1/5/15 min) {os.getloadavg()}")


if __name__ == "__main__":
    main()
