"""PPRL at scale: n x n synthetic Chinese patients (default 1,000,000 each side), keyed
blocking, hardened CLKs; prints node-side encoding time, hub-side linkage time, peak memory,
candidates compared and precision/recall/F1 against the generator's truth.

Records are generated already standardised (pinyin names from the public surname
frequencies, dates, GB/T 2260 county codes, phones, valid identity numbers); side B holds half
of A's persons with errors (name typos, date typos, moved, new phone, missing or mistyped
identity numbers) plus as many new persons. Usage::

    .venv/bin/python benchmarks/linkage_pprl_1m.py --n 1000000
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import resource
import time
from pathlib import Path

import numpy as np
from pypinyin import lazy_pinyin

from healthmesh.identity.idnumber import make_id_number
from healthmesh.identity.names import surname_pinyin
from healthmesh.identity.pprl.encode import (
    EncodedTable,
    encode_table,
    load_encoded,
    save_encoded,
)
from healthmesh.identity.pprl.linker import link_encoded
from healthmesh.identity.pprl.presets import CHINESE_BLOCKING, chinese_schema

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/cn_reference"
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌"
    "慧宇浩晨欣怡婷雪琳佳颖子轩梓涵诺思雨博俊嘉豪海燕春梅金凤德福"
)
SECRET = b"benchmark-linkage-secret-0123456789"


def _tables() -> tuple[list[str], np.ndarray, list[str]]:
    with open(SHARED / "names/wainshine/chinese_family_name_1k.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    surnames = [surname_pinyin(r["surname"]) for r in rows]
    weights = np.array([float(r["tf"]) for r in rows])
    with open(SHARED / "divisions/divisions_current_mca2024.csv", encoding="utf-8") as fh:
        counties = [r["code"] for r in csv.DictReader(fh) if r["level"] == "county"]
    return surnames, weights / weights.sum(), counties


def generate(n_persons: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    surnames, weights, counties = _tables()
    syll = np.array(["".join(lazy_pinyin(c)) for c in GIVEN])
    g1 = syll[rng.integers(0, len(syll), n_persons)]
    g2 = np.where(rng.random(n_persons) < 0.75, syll[rng.integers(0, len(syll), n_persons)], "")
    days = rng.integers(0, 90 * 365, n_persons)
    births = np.datetime64("1930-01-01") + days.astype("timedelta64[D]")
    return {
        "surname": np.array(surnames)[rng.choice(len(surnames), n_persons, p=weights)],
        "given": np.char.add(g1.astype(str), g2.astype(str)),
        "birth": births.astype("datetime64[D]").astype(str),
        "sex": rng.choice(np.array(["1", "2"]), n_persons),
        "county": np.array(counties)[rng.integers(0, len(counties), n_persons)],
        "phone": np.char.add("13", rng.integers(10**8, 10**9, n_persons).astype(str)),
        "street": rng.integers(1, 400, n_persons).astype(str),
        "seq": rng.integers(0, 999, n_persons),
    }


def _typo(text: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(0, max(len(text), 1)))
    return text[:i] + "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(0, 26))] + text[i + 1 :]


def record(
    p: dict[str, np.ndarray], i: int, rid: str, rng: np.random.Generator | None
) -> dict[str, str | None]:
    birth = str(p["birth"][i]).replace("-", "")
    rec: dict[str, str | None] = {
        "id": rid,
        "surname": str(p["surname"][i]),
        "given": str(p["given"][i]),
        "birth_date": birth,
        "sex": str(p["sex"][i]),
        "county": str(p["county"][i]),
        "city": str(p["county"][i])[:4] + "00",
        "street": "lu" + str(p["street"][i]),
        "phone": str(p["phone"][i]),
        "id_number": make_id_number(
            str(p["county"][i]), dt.date.fromisoformat(str(p["birth"][i])), int(p["seq"][i])
        ),
    }
    if rng is not None:  # the second institution's copy, with errors
        if rng.random() < 0.08:
            rec["given"] = _typo(rec["given"] or "", rng)
        if rng.random() < 0.03:
            d = list(birth)
            d[int(rng.integers(4, 8))] = str(int(rng.integers(0, 10)))
            rec["birth_date"] = "".join(d)
        if rng.random() < 0.3:
            rec["phone"] = (
                None if rng.random() < 0.5 else "15" + str(int(rng.integers(10**8, 10**9)))
            )
        if rng.random() < 0.15:
            rec["county"], rec["street"] = None, None
        if rng.random() < 0.4:
            rec["id_number"] = None
        elif rng.random() < 0.05:
            rec["id_number"] = (rec["id_number"] or "")[:-2] + "00"  # mistyped: fails the check
    rec["birth_year"] = (rec["birth_date"] or "")[:4] or None
    rec["birth_md"] = (rec["birth_date"] or "")[4:] or None
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--cache", type=Path, default=None, help="keep/reuse encodings here")
    args = ap.parse_args()
    n = args.n
    cache = args.cache / f"pprl_{n}" if args.cache else None
    if cache and (cache / "a.npz").exists():
        enc_a, enc_b = load_encoded(str(cache / "a.npz")), load_encoded(str(cache / "b.npz"))
        truth = {(f"A{i}", f"B{i}") for i in range(n // 2, n)}
        print(f"loaded cached encodings of {len(enc_a):,} + {len(enc_b):,} records")
        _link(enc_a, enc_b, truth, n)
        return
    rng = np.random.default_rng(42)
    t0 = time.perf_counter()
    people = generate(n + n // 2, rng)
    side_a = [record(people, i, f"A{i}", None) for i in range(n)]
    shared = range(n // 2, n)
    side_b = [record(people, i, f"B{i}", rng) for i in shared]
    side_b += [record(people, i, f"B{i}", rng) for i in range(n, n + n // 2)]
    truth = {(f"A{i}", f"B{i}") for i in shared}
    t1 = time.perf_counter()
    print(f"generated {len(side_a):,} + {len(side_b):,} records in {t1 - t0:.1f}s")
    enc_a = encode_table(
        SECRET,
        chinese_schema(),
        side_a,
        identity_field="id_number",
        blocking_rules=CHINESE_BLOCKING,
    )
    enc_b = encode_table(
        SECRET,
        chinese_schema(),
        side_b,
        identity_field="id_number",
        blocking_rules=CHINESE_BLOCKING,
    )
    t2 = time.perf_counter()
    per_record = (t2 - t1) / (2 * n) * 1e6
    print(f"node-side encoding of both sides: {t2 - t1:.1f}s ({per_record:.1f} us/record)")
    del side_a, side_b, people  # the hub holds encodings only
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
        save_encoded(enc_a, str(cache / "a.npz"))
        save_encoded(enc_b, str(cache / "b.npz"))
    _link(enc_a, enc_b, truth, n)


def _reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process (Linux >= 4.0; ``ru_maxrss`` then
    reads the peak since the reset), so the hub phase's own peak can be reported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _link(enc_a: EncodedTable, enc_b: EncodedTable, truth: set[tuple[str, str]], n: int) -> None:
    held = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reset = _reset_peak_rss()
    t2, cpu = time.perf_counter(), time.process_time()
    result = link_encoded(enc_a, enc_b)
    t3, cpu = time.perf_counter(), time.process_time() - cpu
    pred = set(result.links(enc_a, enc_b))
    tp = len(pred & truth)
    p, r = tp / max(len(pred), 1), tp / len(truth)
    hub_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # since the reset
    peak = max(held, hub_peak)
    print(
        f"hub-side linkage {n:,} x {n:,}: {t3 - t2:.1f}s wall, {cpu:.1f}s CPU, "
        f"comparisons {result.candidates:,}, "
        f"threshold {result.estimate.threshold:.3f}"
    )
    f1 = 2 * p * r / max(p + r, 1e-12)
    print(f"P={p:.4f} R={r:.4f} F1={f1:.4f}; peak RSS of the process {peak:,.0f} MiB")
    print(f"peak RSS before the hub phase (generation, encoding) {held:,.0f} MiB")
    if reset:
        print(f"peak RSS during the hub phase (both sides' encodings held) {hub_peak:,.0f} MiB")


if __name__ == "__main__":
    main()
