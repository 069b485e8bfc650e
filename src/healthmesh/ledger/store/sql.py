"""The ledger store on SQLite or PostgreSQL (SQLAlchemy Core, component ``ledger``).

Perfect nodes are keyed by their in-order position in the tree,
``(index << (level + 1)) + (1 << level) - 1``, so every proof is a single ``WHERE id IN (...)``
read of ``O(log n)`` rows, and the low-level siblings of one leaf sit next to each other on
the same B-tree pages (one page read instead of one per level). Each append is one
transaction that also moves the tree head with a compare-and-set on the old size, so a crash
(even ``kill -9``) leaves either the whole batch or none of it, and two writers can never
interleave. SQLite connections made by this store run with ``synchronous=FULL`` so an
acknowledged append also survives power loss, not only a process crash.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from healthmesh.db import Migration, apply_migrations, make_engine
from healthmesh.errors import LedgerIntegrityError
from healthmesh.ledger.hashing import EMPTY_ROOT, Coord
from healthmesh.ledger.store.base import KeyRecord, NodeRow, StaleHead

COMPONENT = "ledger"
meta = MetaData()
entries_t = Table(
    "ledger_entries",
    meta,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)
nodes_t = Table(
    "ledger_nodes",
    meta,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)
head_t = Table(
    "ledger_head",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
)
checkpoints_t = Table(
    "ledger_checkpoints",
    meta,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("note", Text, nullable=False),
)
cosigs_t = Table(
    "ledger_cosignatures",
    meta,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("witness", String(200), primary_key=True),
    Column("line", Text, nullable=False),
)
keys_t = Table(
    "ledger_keys",
    meta,
    Column("institution", String(128), primary_key=True),
    Column("purpose", String(32), primary_key=True),
    Column("vkey", String(400), primary_key=True),
    Column("active", Boolean, nullable=False),
)
nonces_t = Table(
    "ledger_nonces",
    meta,
    Column("scope", String(200), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)


def _v1(conn: Connection) -> None:
    meta.create_all(conn)
    conn.execute(insert(head_t).values(id=1, size=0, root=EMPTY_ROOT))


MIGRATIONS = [Migration(1, "ledger entries, nodes, head, checkpoints, keys, nonces", _v1)]


def node_id(level: int, index: int) -> int:
    """Integer key of the perfect node ``(level, index)``."""
    return (index << (level + 1)) + (1 << level) - 1


def _full_sync(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


class SqlStore:
    """:class:`~healthmesh.ledger.store.base.LedgerStore` on a SQL database.

    >>> store = SqlStore(":memory:")
    >>> store.head()[0]
    0
    """

    def __init__(
        self, db: str | Path | Engine, *, durable: bool = True, cache_nodes: int = 1 << 18
    ) -> None:
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        if self.engine.dialect.name == "sqlite" and durable:
            event.listen(self.engine, "connect", _full_sync)
            self.engine.dispose()
        apply_migrations(self.engine, COMPONENT, MIGRATIONS)
        # Perfect nodes never change once committed, so a bounded cache is always coherent.
        self.cache_nodes = cache_nodes
        self._node_cache: dict[Coord, bytes] = {}
        self._pg = self.engine.dialect.name == "postgresql"
        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self._sqlite_path = path or ""
        self._local = threading.local() if path and path != ":memory:" else None
        self._readers: list[Any] = []
        self._readers_lock = threading.Lock()
        mark = self._mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._insert_entries = f"INSERT INTO ledger_entries (idx, data) VALUES ({mark}, {mark})"
        self._insert_nodes = f"INSERT INTO ledger_nodes (id, hash) VALUES ({mark}, {mark})"

    def head(self) -> tuple[int, bytes]:
        with self.engine.connect() as conn:
            row = conn.execute(select(head_t.c.size, head_t.c.root).where(head_t.c.id == 1)).one()
        return int(row[0]), bytes(row[1])

    def append(
        self, old_size: int, entries: Sequence[bytes], nodes: Sequence[NodeRow], root: bytes
    ) -> None:
        new_size = old_size + len(entries)
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(head_t)
                .where(head_t.c.id == 1, head_t.c.size == old_size)
                .values(size=new_size, root=root)
            ).rowcount
            if moved != 1:
                raise StaleHead("the ledger grew under this writer")
            # Straight to the driver: SQLAlchemy's per-row parameter processing would cost
            # more than the database itself on large batches. PostgreSQL takes each batch as
            # binary COPY; SQLite uses executemany.
            if self._pg:
                self._pg_copy(conn, old_size, entries, nodes)
                return
            if entries:
                conn.exec_driver_sql(
                    self._insert_entries, [(old_size + i, e) for i, e in enumerate(entries)]
                )
            if nodes:
                conn.exec_driver_sql(
                    self._insert_nodes, [(node_id(lv, ix), h) for lv, ix, h in nodes]
                )

    @staticmethod
    def _pg_copy(
        conn: Connection, old_size: int, entries: Sequence[bytes], nodes: Sequence[NodeRow]
    ) -> None:
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur:
            with cur.copy("COPY ledger_entries (idx, data) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "bytea"])
                for i, e in enumerate(entries):
                    cp.write_row((old_size + i, e))
            with cur.copy("COPY ledger_nodes (id, hash) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "bytea"])
                for lv, ix, h in nodes:
                    cp.write_row((node_id(lv, ix), h))

    def get_entries(self, start: int, end: int) -> list[bytes]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(entries_t.c.data)
                .where(entries_t.c.idx >= start, entries_t.c.idx < end)
                .order_by(entries_t.c.idx)
            ).all()
        return [bytes(r[0]) for r in rows]

    def get_nodes(self, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        out: dict[Coord, bytes] = {}
        missing: dict[int, Coord] = {}
        cache = self._node_cache
        for c in coords:
            h = cache.get(c)
            if h is None:
                missing[node_id(c[0], c[1])] = c
            else:
                out[c] = h
        if missing:
            sql = "SELECT id, hash FROM ledger_nodes WHERE id IN ({})".format(
                ",".join([self._mark] * len(missing))
            )
            if self._local is not None:
                rows = self._sqlite_reader().execute(sql, tuple(missing)).fetchall()
            else:
                with self.engine.connect() as conn:
                    rows = conn.exec_driver_sql(sql, tuple(missing)).all()
            if len(rows) != len(missing):
                raise LedgerIntegrityError("a tree node is missing from the store")
            if len(cache) + len(rows) > self.cache_nodes:
                cache.clear()
            for node, h in rows:
                c = missing[int(node)]
                out[c] = cache[c] = bytes(h)
        return out

    def _sqlite_reader(self) -> Any:
        """This thread's own read connection (SQLite only): proofs skip the pool round trip.
        Outside a transaction every SELECT sees the latest commit (WAL)."""
        assert self._local is not None
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._sqlite_path, timeout=30, check_same_thread=False)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def save_checkpoint(self, size: int, note: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(checkpoints_t).values(size=size, note=note))
        except IntegrityError:
            pass  # first one wins

    def get_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        q = select(checkpoints_t.c.size, checkpoints_t.c.note)
        if size is None:
            q = q.order_by(checkpoints_t.c.size.desc()).limit(1)
        else:
            q = q.where(checkpoints_t.c.size == size)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(cosigs_t).where(cosigs_t.c.size == size, cosigs_t.c.witness == witness)
            )
            conn.execute(insert(cosigs_t).values(size=size, witness=witness, line=line))

    def get_cosignatures(self, size: int) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(cosigs_t.c.witness, cosigs_t.c.line).where(cosigs_t.c.size == size)
            ).all()
        return {str(r[0]): str(r[1]) for r in rows}

    def largest_cosigned(self, min_cosigners: int) -> int | None:
        q = (
            select(cosigs_t.c.size)
            .group_by(cosigs_t.c.size)
            .having(func.count() >= min_cosigners)
            .order_by(cosigs_t.c.size.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else int(row[0])

    def put_key(self, record: KeyRecord) -> None:
        key = (
            (keys_t.c.institution == record.institution)
            & (keys_t.c.purpose == record.purpose)
            & (keys_t.c.vkey == record.vkey)
        )
        with self.engine.begin() as conn:
            conn.execute(delete(keys_t).where(key))
            conn.execute(
                insert(keys_t).values(
                    institution=record.institution,
                    purpose=record.purpose,
                    vkey=record.vkey,
                    active=record.active,
                )
            )

    def get_keys(self, institution: str | None = None) -> list[KeyRecord]:
        q = select(keys_t.c.institution, keys_t.c.purpose, keys_t.c.vkey, keys_t.c.active)
        if institution is not None:
            q = q.where(keys_t.c.institution == institution)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [KeyRecord(str(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows]

    def use_nonce(self, scope: str, nonce: str, expires_at: int, now: int) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(nonces_t).where(nonces_t.c.expires_at < now))
                conn.execute(
                    insert(nonces_t).values(scope=scope, nonce=nonce, expires_at=expires_at)
                )
        except IntegrityError:
            return False
        return True

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self.engine.dispose()
