"""PPRL on the synthetic region: every institution's Patients linked at the hub into persons.

Generates a region (or takes ``--region DIR``), reads each institution's Patients as its
node holds them after ingestion (the shipped adapters and the pipeline's update rule),
encodes them at the "node" (field-group Bloom filters, keyed identity and blocking tokens),
links all institutions at the "hub" on encodings only (Fellegi-Sunter fitted by EM, no
labels) and scores the person clustering against ``truth/records.csv`` (pairwise precision,
recall, F1). With ``--plaintext`` the plaintext engine's comparisons of the same
standardised records go through the same decision rule; with ``--record-clk`` the earlier
record-level CLK linker (Dice, estimated threshold) does, for comparison.

    python benchmarks/linkage_region.py --people 20000 --seed 42 [--plaintext] [--record-clk]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from healthmesh.identity.divisions import DivisionTable
from healthmesh.identity.engine.clustering import connected_clusters, greedy_one_to_one
from healthmesh.identity.engine.comparisons import JaroWinkler
from healthmesh.identity.engine.fellegi_sunter import FSParameters, fit_em
from healthmesh.identity.engine.linker import compare, random_pair_vectors
from healthmesh.identity.engine.presets import chinese_spec
from healthmesh.identity.evaluation import pairwise_scores, region_patients, truth_of
from healthmesh.identity.fhir_patient import encode_groups, merged_into, standardised
from healthmesh.identity.pprl.encode import EncodedTable, encode_table
from healthmesh.identity.pprl.groups import chinese_groups
from healthmesh.identity.pprl.linker import link_encoded
from healthmesh.identity.pprl.multiparty import link_region
from healthmesh.identity.pprl.presets import CHINESE_BLOCKING, chinese_schema
from healthmesh.synth.region.config import RegionConfig
from healthmesh.synth.region.ingest import region_institutions
from healthmesh.synth.region.region import generate_region

SECRET = b"region-linkage-project-secret-held-by-nodes"
NAME_RULE = CHINESE_BLOCKING.index(("surname", "given"))


def _components(
    keys: list[tuple[str, str]], pairs: list[tuple[tuple[str, str], tuple[str, str]]]
) -> dict[tuple[str, str], int]:
    index = {k: i for i, k in enumerate(keys)}
    la = np.asarray([index[a] for a, _ in pairs], dtype=np.int64)
    lb = np.asarray([index[b] for _, b in pairs], dtype=np.int64)
    labels = connected_clusters(len(keys), la, lb)
    return {k: int(c) for k, c in zip(keys, labels.tolist(), strict=True)}


def _with_merged(
    clusters: dict[tuple[str, str], int], merged: dict[tuple[str, str], tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Patients an institution merged away take their survivor's cluster."""
    out = dict(clusters)
    for key, survivor in merged.items():
        out[key] = clusters[survivor]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--region", type=Path, help="an existing region folder")
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--plaintext", action="store_true", help="also the plaintext engine")
    ap.add_argument("--record-clk", action="store_true", help="also record-level CLKs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        region = args.region
        if region is None:
            region = Path(tmp) / "region"
            t0 = time.perf_counter()
            generate_region(
                RegionConfig(seed=args.seed, people=args.people, days=args.days), region
            )
            print(f"generated {args.people} people in {time.perf_counter() - t0:.1f} s")
        run(region, args.plaintext, args.record_clk)


def run(region: Path, plaintext: bool, record_clk: bool) -> None:
    """Extract, encode, link and score one region; prints the figures."""
    divisions = DivisionTable.load()
    t0 = time.perf_counter()
    truth: dict[tuple[str, str], str] = {}
    merged: dict[tuple[str, str], tuple[str, str]] = {}
    records: dict[str, list[dict[str, str | None]]] = {}
    for inst in region_institutions(region):
        patients = region_patients(region, inst)
        for pid, person in truth_of(region, inst, patients).items():
            truth[(inst, pid)] = person
        live = []
        for pid, patient in patients.items():
            survivor = merged_into(patient)
            if survivor is None:
                live.append((pid, patient))
            else:
                merged[(inst, pid)] = (inst, survivor.removeprefix("Patient/"))
        records[inst] = standardised(live, divisions)
    t_extract = time.perf_counter() - t0
    n = sum(len(r) for r in records.values())
    print(
        f"region {region.name}: {len(records)} institutions, {n} Patients linked "
        f"(+{len(merged)} merged away at their institution), "
        f"{len(set(truth.values()))} persons; extraction {t_extract:.1f} s"
    )
    t0 = time.perf_counter()
    tables = {inst: encode_groups(SECRET, recs) for inst, recs in records.items()}
    t_encode = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = link_region(tables, chinese_groups(), tf_adjust={0: NAME_RULE})
    t_link = time.perf_counter() - t0
    scores = pairwise_scores(_with_merged(result.clusters(), merged), truth)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"PPRL (field groups, FS/EM):  P {scores.precision:.4f} R {scores.recall:.4f} "
        f"F1 {scores.f1:.4f}  true pairs {scores.true_pairs}, predicted {scores.predicted_pairs}"
    )
    print(
        f"  node encoding {t_encode:.1f} s ({t_encode / n * 1e6:.0f} us/record), hub linking "
        f"{t_link:.1f} s, {result.candidates} candidate pairs, {result.links} links, "
        f"peak RSS {rss:.0f} MiB"
    )
    _errors(region, result.clusters(), merged, truth)
    if record_clk:
        flat = {
            inst: encode_table(
                SECRET,
                chinese_schema(),
                recs,
                identity_field="id_number",
                blocking_rules=CHINESE_BLOCKING,
            )
            for inst, recs in records.items()
        }
        s = pairwise_scores(_with_merged(_record_clk(flat), merged), truth)
        print(f"PPRL (record-level CLK, Dice): P {s.precision:.4f} R {s.recall:.4f} F1 {s.f1:.4f}")
    if plaintext:
        t0 = time.perf_counter()
        clusters = _plaintext(records)
        s = pairwise_scores(_with_merged(clusters, merged), truth)
        print(
            f"plaintext (engine comparisons, hub rule): P {s.precision:.4f} R {s.recall:.4f} "
            f"F1 {s.f1:.4f} ({time.perf_counter() - t0:.1f} s)"
        )


def _record_clk(tables: dict[str, EncodedTable]) -> dict[tuple[str, str], int]:
    keys = [(inst, str(x)) for inst, t in tables.items() for x in t.ids.tolist()]
    pairs = []
    for a, b in itertools.combinations(tables, 2):
        res = link_encoded(tables[a], tables[b])
        pairs += [((a, str(x)), (b, str(y))) for x, y in res.links(tables[a], tables[b])]
    return _components(keys, pairs)


def _plaintext(records: dict[str, list[dict[str, str | None]]]) -> dict[tuple[str, str], int]:
    """The plaintext engine's comparisons (Jaro-Winkler, edit distances) with the hub's
    decision rule: one EM fit over all institution pairs, u from random pairs (weighted by
    their non-match posterior), prior over
    all pairs of each institution pair, exact names term-frequency adjusted (the name pair
    compared once), posterior
    >= 0.5, one-to-one, components."""
    spec = chinese_spec()
    # the two-table spec also compares given name and surname alone next to the name pair;
    # with sources that know little but the name (pharmacies) that counts the name thrice
    spec.comparisons = [
        c
        for c in spec.comparisons
        if not (isinstance(c, JaroWinkler) and c.column in ("given", "surname"))
    ]
    cols = sorted({c for recs in records.values() for r in recs for c in r})
    frames = {
        inst: pd.DataFrame([{c: r.get(c) for c in cols} for r in recs], columns=cols)
        for inst, recs in records.items()
    }
    levels = [c.levels for c in spec.comparisons]
    scored, rand = [], []
    for a, b in itertools.combinations(frames, 2):
        il, ir, gamma = compare(frames[a], frames[b], spec)
        scored.append((a, b, il, ir, gamma))
        rand.append(random_pair_vectors(frames[a], frames[b], spec, max_pairs=20_000))
    random_gamma = np.concatenate(rand)
    fitted = fit_em(np.concatenate([*(g for *_, g in scored), random_gamma]), levels)
    non_match = 1.0 - fitted.probability(random_gamma)  # as the hub does
    u = []
    for k, n in enumerate(levels):
        col = random_gamma[:, k].astype(np.int64)
        ok = col >= 0
        counts = np.bincount(col[ok], weights=non_match[ok], minlength=n)[:n]
        u.append(np.maximum(counts / max(counts.sum(), 1.0), 1e-6))
    keys = [(inst, str(x)) for inst, f in frames.items() for x in f["id"].tolist()]
    names = {
        inst: (f["surname"].fillna("") + "|" + f["given"].fillna("")) for inst, f in frames.items()
    }
    share = pd.concat(list(names.values())).value_counts(normalize=True)
    top = levels[0] - 1  # NamePair: exact agreement of both names
    pairs = []
    for a, b, il, ir, gamma in scored:
        if not gamma.shape[0]:
            continue
        expected = float(fitted.probability(gamma).sum())
        prior = min(max(expected, 0.5) / (len(frames[a]) * len(frames[b])), 0.5)
        weight = FSParameters(fitted.m, u, prior).match_weight(gamma)
        exact = np.flatnonzero(gamma[:, 0] == top)  # term-frequency adjustment, as at the hub
        value_share = share.reindex(names[a].to_numpy()[il[exact]]).to_numpy(dtype=np.float64)
        weight[exact] += np.log2(u[0][top] / np.maximum(value_share, 1e-9))
        idx = np.flatnonzero(weight >= 0)
        keep = idx[greedy_one_to_one(il[idx], ir[idx], weight[idx])]
        ida, idb = frames[a]["id"].to_numpy(), frames[b]["id"].to_numpy()
        pairs += [
            ((a, str(ida[x])), (b, str(idb[y]))) for x, y in zip(il[keep], ir[keep], strict=True)
        ]
    return _components(keys, pairs)


def _errors(
    region: Path,
    clusters: dict[tuple[str, str], int],
    merged: dict[tuple[str, str], tuple[str, str]],
    truth: dict[tuple[str, str], str],
) -> None:
    """Records outside their person's main cluster, by institution kind (diagnostics)."""
    pred = _with_merged(clusters, merged)
    by_person: dict[str, list[tuple[str, str]]] = {}
    for key, person in truth.items():
        by_person.setdefault(person, []).append(key)
    split: Counter[str] = Counter()
    for keys in by_person.values():
        labels = Counter(pred[k] for k in keys)
        main_label = labels.most_common(1)[0][0]
        split.update(k[0][0] for k in keys if pred[k] != main_label)
    by_cluster: dict[int, list[tuple[str, str]]] = {}
    for key, label in pred.items():
        by_cluster.setdefault(label, []).append(key)
    wrong: Counter[str] = Counter()
    for keys in by_cluster.values():
        persons = Counter(truth[k] for k in keys)
        main_person = persons.most_common(1)[0][0]
        wrong.update(k[0][0] for k in keys if truth[k] != main_person)
    print(f"  records split from their person (by kind): {dict(split)}")
    print(f"  records in another person's cluster (by kind): {dict(wrong)}")


if __name__ == "__main__":
    main()
