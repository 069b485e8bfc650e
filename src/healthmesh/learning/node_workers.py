"""Worker processes for the in-process grid: each process hosts some simulated institutions
(their ClientApp and ``Context``, kept across messages like a SuperNode keeps them) so the
clients of one stage run at the same time, as they do at separate institutions.

Messages cross the process boundary as Flower's protobuf (``message_to_proto``), the form they
take on the wire in a deployment. Processes are started with ``spawn`` (no fork after torch has
started threads) and import the ClientApp by reference (``"package.module:attribute"``).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import uuid
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from flwr.app import Context, Message, RecordDict
from flwr.app.error import Error
from flwr.client import ClientApp
from flwr.common.constant import ErrorCode
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.proto.message_pb2 import Message as ProtoMessage
from flwr.supercore.task_identity import TaskIdentity

from healthmesh.errors import InvalidInput

SERVER_NODE = 0


class NodeWorkerError(RuntimeError):
    """A worker process died or answered out of protocol."""


def load_client_app(ref: str) -> ClientApp:
    """The ClientApp named ``"package.module:attribute"``."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise InvalidInput(f"client app reference must be 'module:attribute', got {ref!r}")
    app = getattr(importlib.import_module(module), attr, None)
    if not isinstance(app, ClientApp):
        raise InvalidInput(f"{ref!r} is not a Flower ClientApp")
    return app


def encode(msg: Message) -> bytes:
    """A message as the bytes Flower sends."""
    data: bytes = message_to_proto(msg).SerializeToString()
    return data


def decode(data: bytes) -> Message:
    """A message back from :func:`encode`'s bytes."""
    return message_from_proto(ProtoMessage.FromString(data))


def handle(app: ClientApp, msg: Message, ctx: Context) -> Message:
    """Run ``app`` on ``msg`` for the node of ``ctx``; the reply as the node's runtime stamps it.
    A ClientApp failure becomes an error reply (its type only: no data in the reason)."""
    node = ctx.node_id
    try:
        reply = app(msg, ctx)
    except Exception as exc:
        reply = Message(
            Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=type(exc).__name__),
            reply_to=msg,
        )
    meta = reply.metadata.__dict__
    meta["_message_id"] = str(uuid.uuid4())
    meta["_src_node_id"] = node  # Flower's runtime would stamp these
    meta["_dst_node_id"] = SERVER_NODE
    return reply


def _serve(conn: Connection, app_ref: str, contexts: dict[int, dict[str, Any]],
           run_id: int) -> None:
    """A worker's loop: a batch of encoded messages in, their encoded replies out."""
    app = load_client_app(app_ref)
    ctxs = {
        node: Context(run_id, node, dict(c["node_config"]), RecordDict(), dict(c["run_config"]))
        for node, c in contexts.items()
    }
    TaskIdentity.task_id, TaskIdentity.run_id = 1, run_id
    conn.send("ready")
    while True:
        batch = conn.recv()
        if batch is None:
            return
        replies = []
        for data in batch:
            msg = decode(data)
            node = msg.metadata.dst_node_id
            TaskIdentity.node_id = node  # this process acts as the node's SuperNode
            replies.append(encode(handle(app, msg, ctxs[node])))
        conn.send(replies)


class NodeWorkers:
    """``processes`` worker processes sharing the nodes round-robin."""

    def __init__(
        self,
        app_ref: str,
        node_configs: Mapping[int, Mapping[str, Any]],
        run_config: Mapping[str, Any],
        processes: int,
        run_id: int = 1,
        start_timeout: float = 120.0,
    ) -> None:
        if processes < 1:
            raise InvalidInput("processes must be at least 1")
        load_client_app(app_ref)  # a bad reference fails here, not in a child
        nodes = sorted(node_configs)
        self._home = {node: i % processes for i, node in enumerate(nodes)}
        ctx = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        try:
            for w in range(min(processes, len(nodes))):
                mine = {
                    n: {"node_config": dict(node_configs[n]), "run_config": dict(run_config)}
                    for n in nodes if self._home[n] == w
                }
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(child, app_ref, mine, run_id),
                                   daemon=True, name=f"hm-node-worker-{w}")
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            for w, conn in enumerate(self._conns):  # imports done before any round is timed
                if not conn.poll(start_timeout) or self._recv(w) != "ready":
                    raise NodeWorkerError(f"node worker {w} did not start")
        except BaseException:
            self.close()
            raise

    def exchange(self, messages: Sequence[bytes], dst_nodes: Sequence[int]) -> list[bytes]:
        """Hand every encoded message to its node's worker (all workers at once); the encoded
        replies in the order of ``messages``."""
        batches: dict[int, list[int]] = {}
        for i, node in enumerate(dst_nodes):
            batches.setdefault(self._home[node], []).append(i)
        for w, idx in batches.items():
            self._conns[w].send([messages[i] for i in idx])
        out: list[bytes] = [b""] * len(messages)
        for w, idx in batches.items():
            replies = self._recv(w)
            if not isinstance(replies, list) or len(replies) != len(idx):
                raise NodeWorkerError(f"node worker {w} answered out of protocol")
            for i, r in zip(idx, replies, strict=True):
                out[i] = r
        return out

    def _recv(self, w: int) -> Any:
        try:
            return self._conns[w].recv()
        except EOFError:
            raise NodeWorkerError(f"node worker {w} exited") from None

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        for conn in self._conns:
            with contextlib.suppress(OSError):  # a worker that already died
                conn.send(None)
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._conns.clear()
        self._procs.clear()
