"""Group commit: many concurrent appends share one database transaction.

Callers hand a batch of entry bytes to :meth:`GroupCommitter.submit` and block on the
returned future; one writer thread drains the queue, hashes the leaves, extends the frontier
and writes everything queued in one transaction, then resolves every future with the indexes
its entries received. A future resolves only after the commit, so an acknowledged append is
durable. If the write fails, the frontier is reloaded from the store and every caller in that
group gets the error; nothing partial is visible. When another process appended first (the
head moved), the group is re-hashed onto the new head and retried.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from healthmesh.errors import HealthmeshError
from healthmesh.ledger.compact import Frontier
from healthmesh.ledger.hashing import leaf_hash
from healthmesh.ledger.store.base import LedgerStore, StaleHead

Commit = tuple[int, int]
"""``(first index, tree size after the commit)`` of one submitted batch."""
_Item = tuple[list[bytes], "Future[Commit]"]


class LedgerClosed(HealthmeshError):
    """The log is shut down."""

    status = 503
    code = "transient"


class GroupCommitter:
    """Single writer of one log. ``max_batch`` bounds the entries per transaction."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        max_batch: int = 8192,
        on_commit: Callable[[int, bytes], None] | None = None,
        retries: int = 3,
    ) -> None:
        self.store = store
        self.retries = retries
        self.max_batch = max_batch
        self.on_commit = on_commit
        size, _ = store.head()
        self.frontier = Frontier.load(size, store)
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, entries: Sequence[bytes]) -> Future[Commit]:
        """Queue entries for the next group; the future resolves after the commit."""
        fut: Future[Commit] = Future()
        if self._closed:
            fut.set_exception(LedgerClosed("the ledger is closed"))
            return fut
        self._queue.put((list(entries), fut))
        return fut

    def append(self, entries: Sequence[bytes], timeout: float | None = 60.0) -> Commit:
        """Submit and wait for the commit."""
        return self.submit(entries).result(timeout)

    def close(self) -> None:
        """Finish queued work and stop the writer."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _drain(self, first: _Item) -> tuple[list[_Item], bool]:
        group = [first]
        count = len(first[0])
        stop = False
        while count < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            group.append(item)
            count += len(item[0])
        return group, stop

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group, stop = self._drain(item)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Item]) -> None:
        entries = [e for batch, _ in group for e in batch]
        leaves = [leaf_hash(e) for e in entries]
        for attempt in range(self.retries + 1):
            before = self.frontier.copy()
            old_size = before.size
            try:
                rows = self.frontier.extend(leaves)
                root = self.frontier.root()
                self.store.append(old_size, entries, rows, root)
                break
            except Exception as exc:
                try:  # another process may have appended: continue from the stored head
                    size, _ = self.store.head()
                    self.frontier = Frontier.load(size, self.store)
                except Exception:
                    self.frontier = before
                if isinstance(exc, StaleHead) and attempt < self.retries:
                    continue
                for _, fut in group:
                    fut.set_exception(exc)
                return
        if self.on_commit is not None:
            self.on_commit(self.frontier.size, root)
        pos = old_size
        for batch, fut in group:
            fut.set_result((pos, self.frontier.size))
            pos += len(batch)
