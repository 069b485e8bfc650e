"""An in-process Flower ``Grid``: the same ServerApp and ClientApp (SecAgg+ and DP mods
included) run in one process, each simulated institution with its own ``Context``.

Flower's simulation engine needs Ray, which is not a dependency; its deployment engine needs a
SuperLink and SuperNodes (:mod:`healthmesh.learning.deploy`, slow to start). This ~100-line grid
fills the gap for benchmarks with many clients and for fast tests: messages are handed to the
ClientApp directly (optionally on a thread pool) instead of travelling through a SuperLink.
A node listed in ``drop_after`` stops answering from that message count on (dropout tests).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flwr.app import Context, Message, RecordDict
from flwr.app.error import Error
from flwr.client import ClientApp
from flwr.common.constant import ErrorCode
from flwr.server import Grid, ServerApp
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

_SERVER_NODE = 0


class LocalGrid(Grid):
    """A Grid whose nodes are ClientApp instances in this process."""

    def __init__(
        self,
        client_app: ClientApp,
        node_configs: list[dict[str, Any]],
        run_config: Mapping[str, Any],
        *,
        run_id: int = 1,
        workers: int = 1,
        drop_after: Mapping[int, int] | None = None,
    ) -> None:
        self._app = client_app
        self._run = Run.create_empty(run_id)
        self._contexts = {
            i + 1: Context(run_id, i + 1, dict(cfg), RecordDict(), dict(run_config))
            for i, cfg in enumerate(node_configs)
        }
        self._pending: dict[str, Message] = {}
        self._workers = workers
        self._drop_after = dict(drop_after or {})
        self._handled: dict[int, int] = dict.fromkeys(self._contexts, 0)

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
            # among messages and the SecAgg+ mod consumes what it reads
            msg = copy.deepcopy(sent)
            msg.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            msg.metadata.__dict__["_run_id"] = self._run.run_id
            msg.metadata.__dict__["_src_node_id"] = _SERVER_NODE
            self._pending[msg.metadata.message_id] = msg
            ids.append(msg.metadata.message_id)
        return ids

    def _handle(self, msg: Message) -> Message | None:
        node = msg.metadata.dst_node_id
        self._handled[node] += 1
        if node in self._drop_after and self._handled[node] > self._drop_after[node]:
            return None  # the institution dropped out: no reply
        try:
            reply = self._app(msg, self._contexts[node])
        except Exception as exc:  # a ClientApp failure becomes an error reply, as in Flower
            reply = Message(
                Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=type(exc).__name__),
                reply_to=msg,
            )
        reply.metadata.__dict__["_message_id"] = str(uuid.uuid4())
        reply.metadata.__dict__["_src_node_id"] = node  # Flower's runtime would stamp this
        reply.metadata.__dict__["_dst_node_id"] = _SERVER_NODE
        return reply

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        todo = [self._pending.pop(i) for i in list(message_ids) if i in self._pending]
        if self._workers > 1 and len(todo) > 1:
            with ThreadPoolExecutor(self._workers) as pool:
                replies = list(pool.map(self._handle, todo))
        else:
            replies = [self._handle(m) for m in todo]
        return [r for r in replies if r is not None]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))


def run_local(
    server_app: ServerApp,
    client_app: ClientApp,
    node_configs: list[dict[str, Any]],
    run_config: Mapping[str, Any],
    *,
    workers: int = 1,
    drop_after: Mapping[int, int] | None = None,
) -> float:
    """Run ``server_app`` against in-process ``client_app`` nodes; the wall seconds taken."""
    grid = LocalGrid(client_app, node_configs, run_config, workers=workers, drop_after=drop_after)
    ctx = Context(1, _SERVER_NODE, {}, RecordDict(), dict(run_config))
    # Flower stamps new messages with the process's task identity (set by its runtime)
    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, _SERVER_NODE
    started = time.perf_counter()
    try:
        server_app(grid, ctx)
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved
    return time.perf_counter() - started
