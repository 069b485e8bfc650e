"""kill -9 in the middle of appends: no acknowledged entry lost, tree never corrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from healthmesh.ledger.hashing import leaf_hash, root_from_entries
from healthmesh.ledger.proofs import MemoryNodes, consistency_proof, inclusion_proof
from healthmesh.ledger.store import SqlStore
from healthmesh.ledger.verify import verify_consistency, verify_inclusion

CHILD = Path(__file__).with_name("crash_child.py")


def _run_and_kill(db: Path, tag: str, acks_wanted: int) -> dict[int, bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), tag], stdout=subprocess.PIPE, env=env, text=True
    )
    acked: dict[int, bytes] = {}
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            idx, payload = line.split()
            acked[int(idx)] = payload.encode()
            if len(acked) >= acks_wanted:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return acked


def test_kill_9_mid_append_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    acked_all: dict[int, bytes] = {}
    for round_no, wanted in enumerate((400, 900, 300)):
        acked = _run_and_kill(db, f"r{round_no}", wanted)
        assert not set(acked) & set(acked_all)
        acked_all.update(acked)
        store = SqlStore(db)
        size, root = store.head()
        entries = store.get_entries(0, size)
        assert len(entries) == size
        assert max(acked_all) < size
        for idx, payload in acked_all.items():
            assert entries[idx] == payload
        assert root == root_from_entries(entries)
        ref = MemoryNodes([leaf_hash(e) for e in entries])
        for i in range(0, size, max(1, size // 25)):
            proof = inclusion_proof(i, size, store)
            assert proof == inclusion_proof(i, size, ref)
            verify_inclusion(i, size, leaf_hash(entries[i]), proof, root)
        for m in range(1, size, max(1, size // 10)):
            verify_consistency(
                m, size, root_from_entries(entries[:m]), root, consistency_proof(m, size, store)
            )
        store.close()
