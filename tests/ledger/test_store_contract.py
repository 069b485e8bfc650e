"""One contract suite for every ledger store: in-memory, SQLite file and PostgreSQL."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthmesh.errors import LedgerIntegrityError
from healthmesh.ledger.compact import Frontier
from healthmesh.ledger.hashing import EMPTY_ROOT, leaf_hash, root_from_entries
from healthmesh.ledger.log import TransparencyLog
from healthmesh.ledger.note import Ed25519Signer
from healthmesh.ledger.proofs import MemoryNodes, consistency_proof, inclusion_proof
from healthmesh.ledger.store import KeyRecord, LedgerStore, MemoryStore, SqlStore, StaleHead
from healthmesh.ledger.verify import verify_consistency, verify_inclusion


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    if request.param == "memory":
        s: LedgerStore = MemoryStore()
    elif request.param == "sqlite":
        s = SqlStore(tmp_path / "ledger.db")
    else:
        s = SqlStore(request.getfixturevalue("pg_url"))
    yield s
    s.close()


def _append(store: LedgerStore, entries: list[bytes]) -> None:
    size, _ = store.head()
    f = Frontier.load(size, store)
    rows = f.extend([leaf_hash(e) for e in entries])
    store.append(size, entries, rows, f.root())


def test_empty_head(store: LedgerStore) -> None:
    assert store.head() == (0, EMPTY_ROOT)
    assert store.get_entries(0, 10) == []
    assert store.get_checkpoint() is None


def test_append_and_proofs_match_reference(store: LedgerStore) -> None:
    rng = random.Random(7)
    entries = [f"e{i}".encode() for i in range(77)]
    pos = 0
    while pos < len(entries):
        k = rng.randint(1, 9)
        _append(store, entries[pos : pos + k])
        pos += k
    size, root = store.head()
    assert size == 77
    assert root == root_from_entries(entries)
    assert store.get_entries(70, 100) == entries[70:]
    ref = MemoryNodes([leaf_hash(e) for e in entries])
    for i in (0, 1, 31, 32, 63, 76):
        proof = inclusion_proof(i, size, store)
        assert proof == inclusion_proof(i, size, ref)
        verify_inclusion(i, size, leaf_hash(entries[i]), proof, root)
    for m in (1, 5, 32, 50, 77):
        verify_consistency(
            m, size, root_from_entries(entries[:m]), root, consistency_proof(m, size, store)
        )


def test_stale_head_writes_nothing(store: LedgerStore) -> None:
    _append(store, [b"a"])
    with pytest.raises(StaleHead):
        store.append(0, [b"x"], [(0, 0, leaf_hash(b"x"))], leaf_hash(b"x"))
    assert store.head() == (1, leaf_hash(b"a"))
    assert store.get_entries(0, 5) == [b"a"]


def test_missing_node_is_an_integrity_error(store: LedgerStore) -> None:
    with pytest.raises(LedgerIntegrityError):
        store.get_nodes([(3, 0)])


def test_checkpoints_and_cosignatures(store: LedgerStore) -> None:
    store.save_checkpoint(3, "note-3")
    store.save_checkpoint(3, "other")  # first one wins
    store.save_checkpoint(9, "note-9")
    assert store.get_checkpoint() == (9, "note-9")
    assert store.get_checkpoint(3) == (3, "note-3")
    assert store.get_checkpoint(4) is None
    store.add_cosignature(3, "w1", "line-a")
    store.add_cosignature(3, "w1", "line-b")
    store.add_cosignature(3, "w2", "line-c")
    store.add_cosignature(9, "w1", "line-d")
    assert store.get_cosignatures(3) == {"w1": "line-b", "w2": "line-c"}
    assert store.largest_cosigned(2) == 3
    assert store.largest_cosigned(1) == 9
    assert store.largest_cosigned(3) is None


def test_keys_and_nonces(store: LedgerStore) -> None:
    store.put_key(KeyRecord("hosp-a", "request-signing", "k1", True))
    store.put_key(KeyRecord("hosp-a", "request-signing", "k1", False))
    store.put_key(KeyRecord("hosp-b", "witness", "k2", True))
    assert store.get_keys("hosp-a") == [KeyRecord("hosp-a", "request-signing", "k1", False)]
    assert len(store.get_keys()) == 2
    assert store.use_nonce("hosp-a", "n1", expires_at=100, now=10)
    assert not store.use_nonce("hosp-a", "n1", expires_at=100, now=20)
    assert store.use_nonce("hosp-b", "n1", expires_at=100, now=20)
    assert store.use_nonce("hosp-a", "n1", expires_at=300, now=200)  # expired, purged


def test_group_commit_concurrent_appends(store: LedgerStore) -> None:
    log = TransparencyLog(store, Ed25519Signer.generate("hub.test/ledger"), max_batch=64)
    got: dict[bytes, int] = {}
    lock = threading.Lock()

    def worker(t: int) -> None:
        for j in range(20):
            batch = [f"t{t}-{j}-{k}".encode() for k in range(3)]
            idx = log.append_raw(batch)
            with lock:
                got.update(zip(batch, idx, strict=True))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    size, root = store.head()
    assert size == 360
    assert sorted(got.values()) == list(range(360))
    stored = store.get_entries(0, size)
    assert all(stored[i] == e for e, i in got.items())
    assert root == root_from_entries(stored)
    log._writer.close()


def test_two_writers_on_one_store(store: LedgerStore) -> None:
    """Two hub processes on one database: a writer whose head moved re-hashes and retries."""
    key = Ed25519Signer.generate("hub.test/ledger")
    a = TransparencyLog(store, key)
    b = TransparencyLog(store, key)
    got = []
    for i in range(6):
        got += a.append_raw([f"a{i}".encode()])
        got += b.append_raw([f"b{i}".encode(), f"b{i}+".encode()])
    size, root = store.head()
    assert sorted(got) == list(range(18))
    assert size == 18
    assert root == root_from_entries(store.get_entries(0, size))
    a._writer.close()
    b._writer.close()
