"""The plaintext linker: candidate pairs and comparison vectors in DuckDB, Fellegi-Sunter by EM
in numpy, a label-free threshold, then one-to-one assignment (linking) or clusters (dedup).

Splink (also DuckDB) is the reference; this path is kept because it is several times faster
on FEBRL4 for the same F1 (see ``benchmarks/linkage_febrl4_vs_splink.py``) and its fitted
parameters are plain arrays the master patient index reuses for incremental scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from healthmesh.identity.engine.clustering import connected_clusters, greedy_one_to_one
from healthmesh.identity.engine.comparisons import Spec
from healthmesh.identity.engine.fellegi_sunter import FSParameters, fit_em


@dataclass
class LinkResult:
    """Scored candidate pairs, the fitted model and the accepted matches.

    ``left``/``right`` are row positions in the input frames; ``ids`` maps them back.
    """

    left: NDArray[np.int64]
    right: NDArray[np.int64]
    gamma: NDArray[np.int8]
    weight: NDArray[np.float64]
    params: FSParameters
    threshold: float
    accepted: NDArray[np.bool_]
    left_ids: NDArray[np.object_]
    right_ids: NDArray[np.object_]

    def matches(self) -> list[tuple[object, object]]:
        """Accepted pairs as (left id, right id)."""
        idx = np.flatnonzero(self.accepted)
        return list(
            zip(
                self.left_ids[self.left[idx]].tolist(),
                self.right_ids[self.right[idx]].tolist(),
                strict=True,
            )
        )

    def clusters(self) -> NDArray[np.int64]:
        """Cluster label per record (deduplication: left and right are the same table)."""
        idx = np.flatnonzero(self.accepted)
        return connected_clusters(len(self.left_ids), self.left[idx], self.right[idx])


def _candidates_sql(spec: Spec, dedupe: bool) -> str:
    selects = []
    for group in spec.blocking:
        cond = " AND ".join(f"l.{c} = r.{c}" for c in group)
        if dedupe:
            cond += " AND l.__i < r.__i"
        selects.append(f"SELECT l.__i AS il, r.__i AS ir FROM L l JOIN R r ON {cond}")
    return " UNION ".join(selects)


def compare(
    left: pd.DataFrame,
    right: pd.DataFrame | None,
    spec: Spec,
    *,
    threads: int | None = None,
    pairs: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int8]]:
    """Candidate pairs (by the blocking groups, or the given ``pairs``) and their comparison
    vectors.

    Returns row positions in ``left`` and ``right`` (``right`` is ``left`` when deduplicating)
    and an int8 matrix with one column per comparison.
    """
    dedupe = right is None
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.register("L_src", left)
        con.execute("CREATE TEMP TABLE L AS SELECT row_number() OVER () - 1 AS __i, * FROM L_src")
        if dedupe:
            con.execute("CREATE TEMP VIEW R AS SELECT * FROM L")
        else:
            con.register("R_src", right)
            con.execute(
                "CREATE TEMP TABLE R AS SELECT row_number() OVER () - 1 AS __i, * FROM R_src"
            )
        levels = ", ".join(f"({c.sql()})::TINYINT AS g{i}" for i, c in enumerate(spec.comparisons))
        if pairs is not None:
            con.register("P_src", pd.DataFrame({"il": pairs[0], "ir": pairs[1]}))
            cand_sql = "SELECT il, ir FROM P_src"
        else:
            cand_sql = _candidates_sql(spec, dedupe)
        sql = (
            f"WITH cand AS ({cand_sql}) "
            f"SELECT c.il, c.ir, {levels} FROM cand c "
            "JOIN L l ON l.__i = c.il JOIN R r ON r.__i = c.ir ORDER BY c.il, c.ir"
        )
        cols = con.execute(sql).fetchnumpy()
    finally:
        con.close()
    il = np.asarray(cols["il"], dtype=np.int64)
    ir = np.asarray(cols["ir"], dtype=np.int64)
    gamma = np.column_stack(
        [np.asarray(cols[f"g{i}"], dtype=np.int8) for i in range(len(spec.comparisons))]
    )
    return il, ir, gamma.reshape(il.shape[0], len(spec.comparisons))


def random_pair_vectors(
    left: pd.DataFrame,
    right: pd.DataFrame | None,
    spec: Spec,
    *,
    max_pairs: int = 50_000,
    seed: int = 1,
) -> NDArray[np.int8]:
    """Comparison vectors of random record pairs (almost all non-matches).

    Added to the blocked pairs for EM so the non-match distribution stays identifiable even
    when the blocks hold few non-matches (small tables, tight blocking).
    """
    rng = np.random.default_rng(seed)
    n_left = len(left)
    n_right = n_left if right is None else len(right)
    il = rng.integers(0, n_left, max_pairs)
    ir = rng.integers(0, n_right, max_pairs)
    keep = il != ir if right is None else np.ones(max_pairs, dtype=bool)
    return compare(left, right, spec, pairs=(il[keep], ir[keep]))[2]


def link(
    left: pd.DataFrame,
    right: pd.DataFrame | None,
    spec: Spec,
    *,
    probability_threshold: float = 0.5,
    one_to_one: bool = True,
    params: FSParameters | None = None,
) -> LinkResult:
    """Link two tables (or deduplicate one when ``right`` is None), unsupervised.

    The threshold is a posterior match probability from the EM-fitted model (0.5 by
    default: "more likely a match than not"), so it needs no labels. ``one_to_one`` applies
    greedy best-first assignment, appropriate when each source holds a person once.

    Example:
        >>> from healthmesh.identity.engine.comparisons import Exact
        >>> df = pd.DataFrame({"id": [1, 2], "x": ["a", "b"]})
        >>> fixed = FSParameters([np.array([0.1, 0.9])], [np.array([0.9, 0.1])], 0.5)
        >>> link(df, df.copy(), Spec([Exact("x")], [("x",)]), params=fixed).matches()
        [(1, 1), (2, 2)]
    """
    il, ir, gamma = compare(left, right, spec)
    levels = [c.levels for c in spec.comparisons]
    if params is None:
        n_random = min(50_000, max(len(left), 1) * 10)
        fit_on = np.concatenate([gamma, random_pair_vectors(left, right, spec, max_pairs=n_random)])
        params = fit_em(fit_on, levels)
    weight = params.match_weight(gamma)
    threshold = float(np.log2(probability_threshold / (1.0 - probability_threshold)))
    accepted = weight >= threshold
    if one_to_one and right is not None and accepted.any():
        idx = np.flatnonzero(accepted)
        keep = greedy_one_to_one(il[idx], ir[idx], weight[idx])
        accepted = np.zeros_like(accepted)
        accepted[idx[keep]] = True
    other = left if right is None else right
    return LinkResult(
        il,
        ir,
        gamma,
        weight,
        params,
        threshold,
        accepted,
        left[spec.id_column].to_numpy(dtype=object),
        other[spec.id_column].to_numpy(dtype=object),
    )
