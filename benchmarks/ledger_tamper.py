"""1,000 random tamperings of a stored ledger -> detection rate by `verify` or a witness.

A SQLite ledger of --entries provenance events is built, checkpointed and cosigned by three
node witnesses (quorum 2). Each trial copies the database, applies one random tampering to
the stored rows, then the offline verifier checks an export (cosigned checkpoint + entries)
with public keys only; tamperings done by the hub itself (which holds the log key and can
re-sign) are also presented to a witness that saw the honest log.

Tamperings: entry changed, entry deleted (gap or compacted), entries reordered, entry
inserted, root replaced (stored checkpoint edited without the key), history rewritten and
re-signed by the hub, forked view (a different tree of the same or larger size, signed by
the hub, shown to one witness).

Usage: .venv/bin/python benchmarks/ledger_tamper.py [--trials 1000] [--entries 500]
"""

from __future__ import annotations

import argparse
import base64
import random
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path

from healthmesh.errors import HealthmeshError
from healthmesh.ledger.bundle import EXPORT_FORMAT, Trust, verify_export
from healthmesh.ledger.checkpoint import Checkpoint, sign_checkpoint
from healthmesh.ledger.cosign import CosignatureSigner, CosignatureVerifier
from healthmesh.ledger.entries import encode_event, make_event, sha256_digest
from healthmesh.ledger.hashing import leaf_hash, root_from_entries
from healthmesh.ledger.log import TransparencyLog
from healthmesh.ledger.note import Ed25519Signer, ed25519_verifier_from_vkey, parse_note
from healthmesh.ledger.proofs import MemoryNodes, consistency_proof
from healthmesh.ledger.store import SqlStore
from healthmesh.ledger.witness import Witness, WitnessError

ORIGIN = "hub.bench/ledger"
KINDS = (
    "changed",
    "deleted",
    "reordered",
    "inserted",
    "root_replaced",
    "rewritten_resigned",
    "forked_view",
)


def build(path: Path, n: int) -> tuple[Ed25519Signer, list[CosignatureSigner], list[bytes]]:
    key = Ed25519Signer.from_seed(ORIGIN, b"\3" * 32)
    wits = [
        CosignatureSigner.from_seed(f"node{i}.bench/witness", bytes([i + 9]) * 32) for i in range(3)
    ]
    entries = [
        encode_event(
            make_event(
                "data_access",
                f"hosp-{i % 5}",
                {
                    "node": f"hosp-{i % 5}",
                    "audit_digest": sha256_digest(str(i).encode()),
                    "event_count": 1 + i % 300,
                },
                time="2026-11-28T10:00:00Z",
            )
        )
        for i in range(n)
    ]
    log = TransparencyLog(
        SqlStore(path),
        key,
        witnesses=[CosignatureVerifier.from_vkey(w.vkey()) for w in wits],
        quorum=2,
    )
    log.append_raw(entries)
    size, note = log.publish_checkpoint()
    for w in wits:
        log.add_cosignature(size, w.cosign(parse_note(note).text).line())
    log.close()
    return key, wits, entries


def export_of(path: Path) -> dict:
    """What the hub's `ledger export` would emit from this (possibly tampered) database."""
    store = SqlStore(path)
    size, note = store.get_checkpoint()  # type: ignore[misc]
    lines = "".join(store.get_cosignatures(size).values())
    rows = store.get_entries(0, 10**9)
    store.close()
    return {
        "format": EXPORT_FORMAT,
        "checkpoint": note + lines,
        "entries": [r.decode("utf-8", "replace") for r in rows],
    }


def mutate(entry: bytes, rng: random.Random) -> bytes:
    count = entry.index(b'"event_count":') + len(b'"event_count":')
    end = entry.index(b",", count)
    return entry[:count] + str(int(entry[count:end]) + rng.randint(1, 9)).encode() + entry[end:]


def tamper_rows(db: Path, kind: str, n: int, rng: random.Random, entries: list[bytes]) -> None:
    con = sqlite3.connect(db)
    k = rng.randrange(n)
    if kind == "changed":
        con.execute("UPDATE ledger_entries SET data=? WHERE idx=?", (mutate(entries[k], rng), k))
    elif kind == "deleted":
        con.execute("DELETE FROM ledger_entries WHERE idx=?", (k,))
        if rng.random() < 0.5:  # compact the gap away
            con.execute("UPDATE ledger_entries SET idx=-(idx-1) WHERE idx>?", (k,))
            con.execute("UPDATE ledger_entries SET idx=-idx WHERE idx<0")
    elif kind == "reordered":
        j = (k + rng.randrange(1, n)) % n
        con.execute("UPDATE ledger_entries SET data=? WHERE idx=?", (entries[j], k))
        con.execute("UPDATE ledger_entries SET data=? WHERE idx=?", (entries[k], j))
    elif kind == "inserted":
        con.execute("UPDATE ledger_entries SET idx=-(idx+1) WHERE idx>=?", (k,))
        con.execute("UPDATE ledger_entries SET idx=-idx WHERE idx<0")
        con.execute(
            "INSERT INTO ledger_entries (idx, data) VALUES (?, ?)", (k, mutate(entries[k], rng))
        )
    elif kind == "root_replaced":
        (note,) = con.execute("SELECT note FROM ledger_checkpoints").fetchone()
        lines = note.split("\n")
        lines[2] = base64.b64encode(rng.randbytes(32)).decode()
        con.execute("UPDATE ledger_checkpoints SET note=?", ("\n".join(lines),))
    con.commit()
    con.close()


def hub_forgery(
    kind: str, key: Ed25519Signer, entries: list[bytes], rng: random.Random
) -> tuple[list[bytes], str]:
    """The hub (holding the log key) rewrites history and signs a new checkpoint."""
    forged = list(entries)
    k = rng.randrange(len(forged))
    forged[k] = mutate(forged[k], rng)
    if kind == "forked_view" and rng.random() < 0.5:
        forged += [
            mutate(entries[rng.randrange(len(entries))], rng) for _ in range(rng.randint(1, 20))
        ]
    cp = Checkpoint(ORIGIN, len(forged), root_from_entries(forged))
    return forged, sign_checkpoint(cp, key).format()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp())
    base = tmp / "base.db"
    key, wits, entries = build(base, args.entries)
    log_v = ed25519_verifier_from_vkey(key.vkey())
    trust = Trust(log_v, tuple(CosignatureVerifier.from_vkey(w.vkey()) for w in wits), 2, ORIGIN)
    honest = verify_export(export_of(base), trust)
    assert honest["size"] == args.entries, "the untampered log must verify"
    honest_root = root_from_entries(entries)
    detected: Counter[str] = Counter()
    tried: Counter[str] = Counter()
    how: Counter[str] = Counter()
    t0 = time.perf_counter()
    for trial in range(args.trials):
        kind = KINDS[trial % len(KINDS)] if trial < len(KINDS) else rng.choice(KINDS)
        tried[kind] += 1
        caught = False
        if kind in ("rewritten_resigned", "forked_view"):
            forged, note = hub_forgery(kind, key, entries, rng)
            # verify: the re-signed checkpoint has no witness quorum.
            try:
                verify_export(
                    {
                        "format": EXPORT_FORMAT,
                        "checkpoint": note,
                        "entries": [e.decode() for e in forged],
                    },
                    trust,
                )
            except HealthmeshError:
                caught = True
                how["verify"] += 1
            # witness: one that saw the honest tree refuses it (no consistency exists).
            w = Witness(wits[trial % 3], {ORIGIN: log_v})
            w.state.compare_and_set(ORIGIN, 0, len(entries), honest_root)
            proof = (
                consistency_proof(
                    len(entries), len(forged), MemoryNodes([leaf_hash(e) for e in forged])
                )
                if len(forged) > len(entries)
                else []
            )
            try:
                w.add_checkpoint(len(entries), proof, note)
            except WitnessError:
                caught = True
                how["witness"] += 1
        else:
            db = tmp / f"t{trial}.db"
            shutil.copy(base, db)
            tamper_rows(db, kind, args.entries, rng, entries)
            try:
                verify_export(export_of(db), trust)
            except HealthmeshError:
                caught = True
                how["verify"] += 1
            db.unlink()
        detected[kind] += caught
    dt = time.perf_counter() - t0
    total = sum(detected.values())
    print(
        f"ledger of {args.entries} entries, 3 witnesses, quorum 2; {args.trials} trials in "
        f"{dt:.1f} s"
    )
    for kind in KINDS:
        print(f"  {kind:<20} {detected[kind]:>4}/{tried[kind]:<4} detected")
    print(f"  detections by verify: {how['verify']}, by a witness: {how['witness']}")
    print(f"detection rate: {total}/{args.trials} = {100 * total / args.trials:.1f}%")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
