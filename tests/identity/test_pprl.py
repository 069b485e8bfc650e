"""PPRL: hardened CLKs, Dice kernels, keyed blocking, and accuracy on FEBRL4 and Chinese data."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from healthmesh.identity.engine.presets import prepare_febrl
from healthmesh.identity.pprl.blocking import (
    blocking_tokens,
    candidate_pairs,
    iter_rule_pairs,
    rule_pairs,
)
from healthmesh.identity.pprl.bloom import BloomEncoder, EncodingSchema, FieldEncoding
from healthmesh.identity.pprl.encode import encode_table, identity_token
from healthmesh.identity.pprl.linker import link_encoded
from healthmesh.identity.pprl.presets import CHINESE_BLOCKING, chinese_schema, febrl_schema
from healthmesh.identity.pprl.similarity import as_words, dice_all_pairs, dice_pairs
from healthmesh.identity.pprl.threshold import estimate_threshold
from healthmesh.identity.standardise import standardise_record

from .cn_synth import hospital_and_clinic
from .metrics import prf

SECRET = b"project-secret-shared-by-nodes-only"


def _random_filters(n: int, words: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**63, size=(n, words), dtype=np.uint64) & rng.integers(
        0, 2**63, size=(n, words), dtype=np.uint64
    )


def test_compiled_kernels_equal_numpy_reference() -> None:
    a, b = _random_filters(70, 16, 1), _random_filters(90, 16, 2)
    ref = dice_all_pairs(a, b, 0.3, kernel="numpy")
    fast = dice_all_pairs(a, b, 0.3, kernel="compiled", block=7)
    assert np.array_equal(ref[0], fast[0])
    assert np.array_equal(ref[1], fast[1])
    assert np.allclose(ref[2], fast[2])
    ia = np.repeat(np.arange(70), 40)  # enough pairs for the compiled path
    ib = np.arange(ia.shape[0]) % 90
    assert np.allclose(dice_pairs(a, b, ia, ib), dice_pairs(a, b, ia, ib, kernel="numpy"))


def test_balanced_filters_have_constant_weight_and_depend_on_the_key() -> None:
    schema = EncodingSchema([FieldEncoding("name", "bigram", 20)], length=512)
    enc = BloomEncoder(SECRET, schema)
    rows = enc.encode_many([{"name": "li"}, {"name": "ouyangxiaoming"}, {"name": None}])
    weights = np.unpackbits(rows, axis=1).sum(axis=1)
    assert weights.tolist() == [512, 512, 512]  # the Hamming weight reveals nothing
    other = BloomEncoder(b"another-project-secret-0123456789", schema).encode_many([{"name": "li"}])
    same = BloomEncoder(SECRET, schema).encode_many([{"name": "li"}])
    assert np.array_equal(rows[:1], same)
    w = as_words(np.concatenate([rows[:1], other]))
    assert dice_pairs(w, w, np.array([0]), np.array([1]))[0] < 0.7
    with pytest.raises(ValueError):
        BloomEncoder(b"short", schema)


def test_identity_tokens_are_keyed_and_only_for_valid_numbers() -> None:
    tok = identity_token(SECRET, "11010519491231002x")
    assert tok == identity_token(SECRET, "11010519491231002X")
    assert tok != identity_token(b"x" * 32, "11010519491231002X")
    assert identity_token(SECRET, "110105194912310021") is None  # bad check digit
    assert identity_token(SECRET, None) is None


def test_keyed_blocking_equals_brute_force() -> None:
    rng = random.Random(4)
    recs_a = [
        {"s": rng.choice("abcde"), "y": rng.choice(["1990", "1991", None])} for _ in range(60)
    ]
    recs_b = [{"s": rng.choice("abcdef"), "y": rng.choice(["1990", "1992"])} for _ in range(50)]
    rules = [("s", "y"), ("y",)]
    ta, tb = blocking_tokens(SECRET, rules, recs_a), blocking_tokens(SECRET, rules, recs_b)
    ia, ib = candidate_pairs(ta, tb)
    expected = {
        (i, j)
        for i, x in enumerate(recs_a)
        for j, y in enumerate(recs_b)
        if (x["y"] and x["y"] == y["y"])
    }
    assert set(zip(ia.tolist(), ib.tolist(), strict=True)) == expected


@pytest.mark.slow
def test_febrl4_pprl_without_ssn_f1_at_least_0999(shared_data: Path) -> None:
    d = shared_data / "febrl"
    a = prepare_febrl(pd.read_csv(d / "febrl4a.csv", dtype=str)).drop(columns=["soc_sec_id"])
    b = prepare_febrl(pd.read_csv(d / "febrl4b.csv", dtype=str)).drop(columns=["soc_sec_id"])
    truth = {tuple(x) for x in pd.read_csv(d / "febrl4_true_links.csv").values.tolist()}
    ea = encode_table(SECRET, febrl_schema(), a.to_dict("records"))
    eb = encode_table(SECRET, febrl_schema(), b.to_dict("records"))
    result = link_encoded(ea, eb)  # threshold estimated without labels
    p, r, f1 = prf(result.links(ea, eb), truth)
    print(f"FEBRL4 PPRL no SSN P={p:.4f} R={r:.4f} F1={f1:.4f} t={result.estimate.threshold}")
    assert f1 >= 0.999


def test_chinese_pprl_f1_at_least_099(shared_data: Path) -> None:
    hosp, clinic, truth = hospital_and_clinic(shared_data, 2000)
    hs = [standardise_record(r) for r in hosp]
    cs = [standardise_record(r) for r in clinic]
    ea = encode_table(
        SECRET, chinese_schema(), hs, identity_field="id_number", blocking_rules=CHINESE_BLOCKING
    )
    eb = encode_table(
        SECRET, chinese_schema(), cs, identity_field="id_number", blocking_rules=CHINESE_BLOCKING
    )
    result = link_encoded(ea, eb)
    p, r, f1 = prf(result.links(ea, eb), truth)
    print(f"Chinese PPRL P={p:.4f} R={r:.4f} F1={f1:.4f} candidates={result.candidates}")
    assert result.candidates < len(ea) * len(eb) / 100  # blocking did its job
    assert f1 >= 0.99


def test_streamed_rule_pairs_equal_the_whole() -> None:
    rng = np.random.default_rng(0)
    ta = rng.integers(0, 50, 3000).astype(np.uint64)
    tb = rng.integers(0, 50, 2000).astype(np.uint64)
    whole = rule_pairs(ta, tb)
    parts = list(iter_rule_pairs(ta, tb, batch=10_000))
    assert len(parts) > 5
    assert all(p[0].shape[0] <= 10_000 + 4000 for p in parts)  # whole blocks per batch
    streamed = {(x, y) for p in parts for x, y in zip(p[0].tolist(), p[1].tolist(), strict=True)}
    assert streamed == set(zip(whole[0].tolist(), whole[1].tolist(), strict=True))
    brute = int(sum(((ta[:, None] == tb[None, :]) & (ta[:, None] != 0)).sum(axis=1)))
    assert len(streamed) == brute


def test_threshold_estimate_recovers_share_without_partner() -> None:
    rng = np.random.default_rng(9)
    n, k = 4000, 6
    has_partner = rng.random(n) < 0.5
    left = np.repeat(np.arange(n), k)
    score = rng.normal(0.7, 0.05, n * k)  # non-match candidates
    score[::k] = np.where(has_partner, rng.normal(0.93, 0.03, n), score[::k])
    est = estimate_threshold(left, score.astype(np.float32), n)
    assert est.pi0 == pytest.approx(0.5, abs=0.05)
    best = score.reshape(n, k).max(axis=1)
    linked = best >= est.threshold
    tp = int((linked & has_partner).sum())
    precision, recall = tp / linked.sum(), tp / has_partner.sum()
    assert 2 * precision * recall / (precision + recall) >= 0.98
