"""An in-process Flower ``Grid``: the same ServerApp and ClientApp (SecAgg+ and DP mods
included) run in one process, each simulated institution with its own ``Context``.

Flower's simulation engine needs Ray, which is not a dependency; its deployment engine needs a
SuperLink and SuperNodes (:mod:`healthmesh.learning.deploy`, slow to start). This ~100-line grid
fills the gap for benchmarks with many clients and for fast tests: messages are handed to the
ClientApp directly instead of travelling through a SuperLink, one node after another, or on a
thread pool (``workers``), or in ``workers`` processes (``processes=True``,
:mod:`healthmesh.learning.node_workers`) so that the clients of one stage run at the same time
as they do at separate institutions. A node listed in ``drop_after`` stops answering from that
message count on (dropout tests).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flwr.app import Context, Message, RecordDict
from flwr.client import ClientApp
from flwr.server import Grid, ServerApp
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from healthmesh.errors import InvalidInput
from healthmesh.learning.node_workers import (
    SERVER_NODE,
    NodeWorkers,
    decode,
    encode,
    handle,
    load_client_app,
)

_SERVER_NODE = SERVER_NODE


class LocalGrid(Grid):
    """A Grid whose nodes are ClientApp instances in this process."""

    def __init__(
        self,
        client_app: ClientApp | str,
        node_configs: list[dict[str, Any]],
        run_config: Mapping[str, Any],
        *,
        run_id: int = 1,
        workers: int = 1,
        processes: bool = False,
        drop_after: Mapping[int, int] | None = None,
    ) -> None:
        """``client_app``: the ClientApp or its ``"module:attribute"`` reference (required
        with ``processes``); ``workers``: threads, or processes with ``processes=True``."""
        if workers < 1:
            raise InvalidInput("workers must be at least 1")
        if processes and not isinstance(client_app, str):
            raise InvalidInput("worker processes need the client app as 'module:attribute'")
        self._app = load_client_app(client_app) if isinstance(client_app, str) else client_app
        self._run = Run.create_empty(run_id)
        self._contexts = {
            i + 1: Context(run_id, i + 1, dict(cfg), RecordDict(), dict(run_config))
            for i, cfg in enumerate(node_configs)
        }
        self._pending: dict[str, Message] = {}
        self._workers = workers
        self._drop_after = dict(drop_after or {})
        self._handled: dict[int, int] = dict.fromkeys(self._contexts, 0)
        self._procs: NodeWorkers | None = None
        if processes:
            self._procs = NodeWorkers(
                str(client_app), {n: c.node_config for n, c in self._contexts.items()},
                run_config, workers, run_id,
            )

    def close(self) -> None:
        """Stop the worker processes, if any (idempotent)."""
        if self._procs is not None:
            self._procs.close()
            self._procs = None

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for sent in messages:
            # a copy per node, as if it had travelled: the workflows share one content object
            # among messages and the SecAgg+ mod consumes what it reads (worker processes get
            # the encoded message instead, which is a copy too)
            msg = sent if self._procs is not None else copy.deepcopy(sent)
            msg.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            msg.metadata.__dict__["_run_id"] = self._run.run_id
            msg.metadata.__dict__["_src_node_id"] = _SERVER_NODE
            self._pending[msg.metadata.message_id] = msg
            ids.append(msg.metadata.message_id)
        return ids

    def _answers(self, msg: Message) -> bool:
        """Count a message to its node; False once the node has dropped out."""
        node = msg.metadata.dst_node_id
        self._handled[node] += 1
        return not (node in self._drop_after and self._handled[node] > self._drop_after[node])

    def _handle(self, msg: Message) -> Message:
        return handle(self._app, msg, self._contexts[msg.metadata.dst_node_id])

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        todo = [self._pending.pop(i) for i in list(message_ids) if i in self._pending]
        todo = [m for m in todo if self._answers(m)]  # a dropped institution sends no reply
        if self._procs is not None:
            encoded = self._procs.exchange(
                [encode(m) for m in todo], [m.metadata.dst_node_id for m in todo])
            return [decode(r) for r in encoded]
        if self._workers > 1 and len(todo) > 1:
            with ThreadPoolExecutor(self._workers) as pool:
                return list(pool.map(self._handle, todo))
        return [self._handle(m) for m in todo]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))


def run_local(
    server_app: ServerApp,
    client_app: ClientApp | str,
    node_configs: list[dict[str, Any]],
    run_config: Mapping[str, Any],
    *,
    workers: int = 1,
    processes: bool = False,
    drop_after: Mapping[int, int] | None = None,
) -> float:
    """Run ``server_app`` against in-process ``client_app`` nodes; the wall seconds taken
    (worker processes, if any, are started before and stopped after the timed part)."""
    grid = LocalGrid(client_app, node_configs, run_config, workers=workers, processes=processes,
                     drop_after=drop_after)
    ctx = Context(1, _SERVER_NODE, {}, RecordDict(), dict(run_config))
    # Flower stamps new messages with the process's task identity (set by its runtime)
    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, _SERVER_NODE
    started = time.perf_counter()
    try:
        server_app(grid, ctx)
        return time.perf_counter() - started
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved
        grid.close()
