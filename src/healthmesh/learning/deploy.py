"""Flower's deployment engine, offline: a SuperLink for the hub, a SuperNode per institution,
each a subprocess, and ``flwr run`` submitting this package's apps to them.

Flower 1.42 facts this relies on: the SuperLink serves its Fleet/Control/Runtime APIs on one
HTTP port (``--port``); each SuperNode serves its own Runtime API port for the ClientApp
processes it spawns (``--isolation subprocess``, the default); ``flwr run`` packages an app
directory (a ``pyproject.toml`` naming the components) into a FAB. Nothing is installed at run
time and nothing calls home: telemetry, update checks and runtime dependency installation are
switched off in every process's environment. The app directory holds only that
``pyproject.toml``; the components are imported from this (installed) package.

The link is secure by default (:mod:`healthmesh.learning.tls`): the SuperLink serves TLS
(``--ssl-certfile/--ssl-keyfile/--ssl-ca-certfile``) with SuperNode authentication on
(``--enable-supernode-auth``); a SuperNode verifies the SuperLink with the CA certificate
(``--root-certificates``) and proves itself with its private key
(``--auth-supernode-private-key``), whose public key the hub registered first
(:meth:`SuperLink.register_node`, ``flwr supernode register``). A SuperNode whose key is not
registered is refused by the SuperLink and exits (Flower exit code 305). ``insecure=True``
(plaintext, no node authentication) is a development option only and never the default.

:class:`SuperLink` (the hub's part, which also submits runs) and :class:`SuperNode` (one
institution's part) are used apart by a study run (:mod:`healthmesh.learning.study`: the hub
starts the SuperLink, each node agent its SuperNode); :class:`Deployment` starts both on one
machine (the CLI, tests).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from healthmesh.errors import HealthmeshError, InvalidInput
from healthmesh.hub.serving import free_port
from healthmesh.learning.fleet_proxy import FleetProxy
from healthmesh.learning.process_stop import stop_processes as _stop
from healthmesh.learning.tls import (
    LinkSecurity,
    LinkTLS,
    NodeKey,
    check_node_public_key,
    new_node_key,
)

#: environment every Flower process gets (no network at run time)
OFFLINE_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
}

_APP_TOML = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "healthmesh-training"
version = "1.0.0"
description = "healthmesh governed federated training"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "healthmesh"

[tool.flwr.app.components]
serverapp = "healthmesh.learning.apps:server_app"
clientapp = "healthmesh.learning.apps:client_app"

[tool.flwr.app.config]
spec = "{}"
result-dir = ""
clients = 2
"""


class DeploymentError(HealthmeshError):
    """A Flower process failed to start or a run did not finish."""

    status = 503
    code = "transient"


class RunTimedOut(DeploymentError):
    """A training run did not finish within its time limit."""

    status = 504
    code = "timeout"


def _bin(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise DeploymentError(f"{what} exited with status {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise DeploymentError(f"{what} did not open port {port} within {timeout:.0f}s")


def flower_env(workdir: Path) -> dict[str, str]:
    """The environment of a Flower process working in ``workdir`` (offline, private home)."""
    # the SuperLink and SuperNodes spawn flower-superexec / flwr-* from PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    home = str(workdir / "flwr-home")
    return {**os.environ, **OFFLINE_ENV, "FLWR_HOME": home, "PATH": path}


def _spawn(argv: Sequence[str], log: Path, workdir: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("ab")
    # the argv is built here from fixed program names, ports and our own paths
    proc = subprocess.Popen(  # noqa: S603
        list(argv), stdout=out, stderr=subprocess.STDOUT, env=flower_env(workdir),
        cwd=workdir, start_new_session=True,
    )
    out.close()
    return proc


def superlink_args(port: int, database: Path, tls: LinkTLS | None) -> list[str]:
    """``flower-superlink`` arguments: TLS and SuperNode authentication unless ``tls`` is
    None (``--insecure``: development only)."""
    if tls is None:
        security = ["--insecure"]
    else:
        security = ["--ssl-certfile", str(tls.certfile), "--ssl-keyfile", str(tls.keyfile),
                    "--ssl-ca-certfile", str(tls.ca_cert), "--enable-supernode-auth"]
    return [_bin("flower-superlink"), *security, "--port", str(port), "--database",
            str(database), "--disable-runtime-dependency-installation"]


def supernode_args(
    superlink: str, port: int, node_config: Mapping[str, str], *,
    root_certificates: Path | None, auth_key: Path | None, insecure: bool = False,
) -> list[str]:
    """``flower-supernode`` arguments: verify the SuperLink with ``root_certificates`` and
    authenticate with ``auth_key``; ``insecure`` (development only) takes neither."""
    for k, v in node_config.items():
        if not re.fullmatch(r"[a-z][a-z0-9-]*", k) or '"' in v or "\\" in v:
            raise InvalidInput("node configuration keys and values must be plain")
    if insecure:
        if root_certificates is not None or auth_key is not None:
            raise InvalidInput("an insecure SuperNode takes no certificate or key")
        security = ["--insecure"]
    else:
        if root_certificates is None or auth_key is None:
            raise InvalidInput("a SuperNode needs the SuperLink's CA certificate and its key")
        security = ["--root-certificates", str(root_certificates),
                    "--auth-supernode-private-key", str(auth_key)]
    node_cfg = " ".join(f'{k}="{v}"' for k, v in node_config.items())
    return [_bin("flower-supernode"), *security, "--superlink", superlink, "--port", str(port),
            "--node-config", node_cfg]


@dataclass
class SuperNode:
    """One institution's SuperNode (a subprocess) connected to the SuperLink at ``superlink``
    (``host:port``); its ClientApp reads ``data`` (the institution's ``.npz``).

    ``root_certificates``: the CA certificate the SuperLink's TLS certificate chains to;
    ``auth_key``: this SuperNode's private key (OpenSSH), whose public key the SuperLink must
    have registered; ``insecure``: neither (development only)."""

    superlink: str
    institution: str
    data: str
    workdir: Path
    start_timeout: float = 60.0
    root_certificates: Path | None = None
    auth_key: Path | None = None
    insecure: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        """Start the SuperNode; returns once it serves its local port."""
        port = free_port()
        argv = supernode_args(
            self.superlink, port, {"institution": self.institution, "data": self.data},
            root_certificates=self.root_certificates, auth_key=self.auth_key,
            insecure=self.insecure)
        self.proc = _spawn(
            argv, self.workdir / "logs" / f"supernode-{self.institution}.log", self.workdir)
        try:
            _wait_port(port, self.proc, self.start_timeout, f"SuperNode {self.institution}")
        except BaseException:
            self.stop()
            raise

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Terminate the SuperNode (idempotent)."""
        if self.proc is not None:
            _stop([self.proc])
            self.proc = None


@dataclass
class SuperLink:
    """The hub's SuperLink (a subprocess) on ``127.0.0.1:port``; :meth:`run` submits one
    training run to the SuperNodes connected to it and waits for its result.

    ``host``: the address SuperNodes dial (it goes into the TLS certificate beside
    ``127.0.0.1`` and ``localhost``); ``security``: TLS and SuperNode authentication (the
    default, with a CA made for this SuperLink) or insecure (development only). The SuperLink
    listens on 127.0.0.1 only; ``expose`` (an interface, e.g. ``0.0.0.0``) serves its Fleet
    API — and nothing else — to other machines through a
    :class:`~healthmesh.learning.fleet_proxy.FleetProxy` on that interface (TLS only)."""

    workdir: Path | None = None
    start_timeout: float = 60.0
    host: str = "127.0.0.1"
    security: LinkSecurity = field(default_factory=LinkSecurity)
    expose: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    port: int = field(default=0, init=False)
    tls: LinkTLS | None = field(default=None, init=False)
    proxy: FleetProxy | None = field(default=None, init=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False)
    _runs: int = field(default=0, init=False)

    @property
    def address(self) -> str:
        """``host:port`` SuperNodes connect to (the Fleet proxy's port when exposed)."""
        return f"{self.host}:{self.proxy.port if self.proxy is not None else self.port}"

    def _dir(self) -> Path:
        if self.workdir is None:
            raise DeploymentError("the SuperLink has not been started")
        return self.workdir

    @property
    def env(self) -> dict[str, str]:
        """The environment of this SuperLink's Flower processes."""
        return flower_env(self._dir())

    @property
    def insecure(self) -> bool:
        """Whether the link is plaintext without node authentication (development only)."""
        return self.security.insecure

    def ca_pem(self) -> str | None:
        """The CA certificate SuperNodes verify this SuperLink with (None when insecure)."""
        return None if self.tls is None else self.tls.ca_pem()

    def start(self) -> None:
        """Start the SuperLink; returns once it serves its port."""
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hm-flower-")
            self.workdir = Path(self._tmp.name)
        self.port = free_port()
        hosts = [self.host, "127.0.0.1", "localhost"]
        try:
            self.tls = self.security.server_tls(self.workdir, hosts)
            self.proc = _spawn(
                superlink_args(self.port, self.workdir / "superlink.db", self.tls),
                self.workdir / "logs" / "superlink.log", self.workdir,
            )
            _wait_port(self.port, self.proc, self.start_timeout, "SuperLink")
            self._write_config()
            if self.expose is not None:
                self._expose(self.expose)
        except BaseException:
            self.stop()
            raise

    def _expose(self, interface: str) -> None:
        if self.tls is None:
            raise DeploymentError("an insecure SuperLink is never exposed beyond this machine")
        self.proxy = FleetProxy(
            f"https://127.0.0.1:{self.port}", interface, free_port(interface),
            certfile=self.tls.certfile, keyfile=self.tls.keyfile, ca_cert=self.tls.ca_cert,
        ).start(self.start_timeout)

    def _write_config(self) -> None:
        home = self._dir() / "flwr-home"
        home.mkdir(exist_ok=True)
        if self.tls is None:
            security = "insecure = true\n"
        else:
            security = f"root-certificates = {json.dumps(str(self.tls.ca_cert))}\n"
        (home / "config.toml").write_text(
            '[superlink]\ndefault = "healthmesh"\n\n[superlink.healthmesh]\n'
            f'address = "127.0.0.1:{self.port}"\n{security}'
        )
        app = self._dir() / "app"
        app.mkdir(exist_ok=True)
        (app / "pyproject.toml").write_text(_APP_TOML)

    def register_node(self, public_key: object, name: str) -> int:
        """Let the SuperNode holding ``public_key`` (an OpenSSH NIST EC key line) connect;
        its Flower node id. Only on a secure link (an insecure one admits any SuperNode)."""
        if self.tls is None:
            raise DeploymentError("an insecure SuperLink has no SuperNode authentication")
        key = check_node_public_key(public_key)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
            raise InvalidInput("a SuperNode name: letters, digits, '.', '_' and '-'")
        keys = self._dir() / "node-keys"
        keys.mkdir(exist_ok=True)
        path = keys / f"{name}.pub"
        path.write_text(key + "\n")
        proc = subprocess.run(  # noqa: S603 (fixed program, our own arguments)
            [_bin("flwr"), "supernode", "register", str(path), "healthmesh", "--name", name,
             "--format", "json"],
            env=self.env, cwd=self._dir(), capture_output=True, timeout=60, check=False,
        )
        found = re.search(rb'"node-id":\s*"?(\d+)', proc.stdout)
        if proc.returncode != 0 or found is None:
            raise DeploymentError(f"registering the SuperNode key of {name} failed")
        return int(found.group(1))

    def register_nodes(self, keys: Mapping[str, object], workers: int = 4) -> dict[str, int]:
        """:meth:`register_node` for each name -> public key, ``workers`` at a time (each is
        one ``flwr`` process, mostly imports); name -> Flower node id."""
        names = list(keys)
        with ThreadPoolExecutor(max(1, min(workers, len(names)))) as pool:
            ids = list(pool.map(lambda n: self.register_node(keys[n], n), names))
        return dict(zip(names, ids, strict=True))

    def nodes(self) -> list[dict[str, Any]]:
        """The SuperNodes Flower knows (``flwr supernode ls``): node id, status, ..."""
        proc = subprocess.run(  # noqa: S603 (fixed program, our own arguments)
            [_bin("flwr"), "supernode", "ls", "healthmesh", "--format", "json"],
            env=self.env, cwd=self._dir(), capture_output=True, timeout=60, check=False,
        )
        try:
            listed = json.loads(proc.stdout)["nodes"]
        except (ValueError, KeyError, TypeError):
            raise DeploymentError("listing the SuperNodes failed") from None
        return [dict(n) for n in listed]

    def run(
        self, spec_json: str, clients: int, timeout: float = 600.0,
        watch: Sequence[subprocess.Popen[bytes]] = (),
    ) -> dict[str, Any]:
        """Submit one run (``flwr run``) for ``clients`` SuperNodes and wait for the
        ServerApp's ``result.json``; ``watch``: local processes whose exit ends the wait."""
        workdir = self._dir()
        self._runs += 1
        out = workdir / f"run-{self._runs}"
        overrides = workdir / f"run-{self._runs}.toml"
        overrides.write_text(
            f"spec = {json.dumps(spec_json)}\nresult-dir = {json.dumps(str(out))}\n"
            f"clients = {clients}\n"
        )
        proc = subprocess.run(  # noqa: S603 (fixed program, our own paths)
            [_bin("flwr"), "run", str(workdir / "app"), "healthmesh",
             "--run-config", str(overrides), "--format", "json"],
            env=self.env, cwd=workdir, capture_output=True, timeout=120, check=False,
        )
        if proc.returncode != 0:
            raise DeploymentError(f"flwr run failed with status {proc.returncode}")
        found = re.search(rb'"run-id":\s*"?(\d+)', proc.stdout)
        run_id = found.group(1).decode() if found else None  # None: wait for the result only
        end = time.monotonic() + timeout
        result, checked = out / "result.json", time.monotonic()
        procs = [p for p in (self.proc, *watch) if p is not None]
        while not result.exists():
            if time.monotonic() > end:
                raise RunTimedOut(f"run {self._runs} did not finish within {timeout:.0f}s")
            if any(p.poll() is not None for p in procs):
                raise DeploymentError("a Flower process exited during the run")
            if run_id is not None and time.monotonic() - checked > 10:
                checked = time.monotonic()
                if self._run_ended_without_result(run_id) and not result.exists():
                    raise DeploymentError(f"run {self._runs} failed or was stopped in Flower")
            time.sleep(0.2)
        time.sleep(0.05)
        data: dict[str, Any] = json.loads(result.read_text())
        data["model_path"] = str(out / "model.npz")
        return data

    def _run_ended_without_result(self, run_id: str) -> bool:
        """Whether Flower reports the run finished as failed or stopped (``flwr ls``)."""
        ls = subprocess.run(  # noqa: S603 (fixed program, our own arguments)
            [_bin("flwr"), "ls", "healthmesh", "--run-id", run_id, "--format", "json"],
            env=self.env, cwd=self._dir(), capture_output=True, timeout=60, check=False,
        )
        text = ls.stdout.decode(errors="replace")
        return "finished:failed" in text or "finished:stopped" in text

    def stop(self) -> None:
        """Terminate the SuperLink and remove its private directory (idempotent)."""
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        if self.proc is not None:
            _stop([self.proc])
            self.proc = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp.name, ignore_errors=True)
            self._tmp = None


@dataclass
class Deployment:
    """A running SuperLink and its SuperNodes (one per institution), on localhost.

    ``nodes`` maps an institution to its node configuration (``data``: path of its ``.npz``).
    Secure by default: each SuperNode gets a fresh key pair whose public key the SuperLink
    registers before the SuperNode starts; ``insecure=True`` is for development only;
    ``expose``: SuperNodes connect through the Fleet-only proxy on that interface.
    Use as a context manager; :meth:`run` submits one training run and waits for its result.
    """

    nodes: Mapping[str, Mapping[str, str]]
    workdir: Path | None = None
    start_timeout: float = 60.0
    insecure: bool = False
    expose: str | None = None
    link: SuperLink | None = field(default=None, init=False)
    supernodes: list[SuperNode] = field(default_factory=list, init=False)

    def __enter__(self) -> Deployment:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _link(self) -> SuperLink:
        if self.link is None:
            raise DeploymentError("the deployment has not been started")
        return self.link

    @property
    def env(self) -> dict[str, str]:
        """The environment of every Flower process of this deployment."""
        return self._link().env

    def start(self) -> None:
        """Start the SuperLink, then one SuperNode per institution (keys registered first)."""
        if len(self.nodes) < 2:
            raise InvalidInput("a deployment needs at least two institutions")
        self.link = SuperLink(self.workdir, self.start_timeout,
                              security=LinkSecurity(insecure=self.insecure), expose=self.expose)
        try:
            self.link.start()
            keys = {name: self._node_key(name) for name in self.nodes}
            self.link.register_nodes(
                {n: k.public_key for n, k in keys.items() if k is not None})
            for name, cfg in self.nodes.items():
                self._start_node(name, cfg["data"], keys[name])
        except BaseException:
            self.stop()
            raise

    def _node_key(self, name: str) -> NodeKey | None:
        """A fresh key pair for SuperNode ``name`` (None on an insecure link)."""
        link = self._link()
        node_dir = link._dir() / "supernodes" / name
        node_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if link.insecure:
            return None
        (node_dir / "superlink-ca.pem").write_text(link.ca_pem() or "")
        return new_node_key(node_dir)

    def _start_node(self, name: str, data: str, key: NodeKey | None) -> SuperNode:
        link = self._link()
        ca = None if key is None else key.private_path.parent / "superlink-ca.pem"
        node = SuperNode(link.address, name, data, link._dir(), self.start_timeout,
                         root_certificates=ca, auth_key=None if key is None else key.private_path,
                         insecure=link.insecure)
        self.supernodes.append(node)
        node.start()
        return node

    def add_supernode(self, name: str, data: str, *, register: bool = True) -> SuperNode:
        """Start one more SuperNode with a fresh key, registered at the SuperLink unless
        ``register`` is False (such a SuperNode is refused: tests)."""
        key = self._node_key(name)
        if key is not None and register:
            self._link().register_node(key.public_key, name)
        return self._start_node(name, data, key)

    def run(self, spec_json: str, timeout: float = 600.0) -> dict[str, Any]:
        """Submit one run (``flwr run``) and wait for the ServerApp's ``result.json``."""
        watch = [n.proc for n in self.supernodes if n.proc is not None]
        return self._link().run(spec_json, len(self.nodes), timeout, watch)

    def stop(self) -> None:
        """Terminate every process this deployment started (SuperNodes first)."""
        for node in reversed(self.supernodes):
            node.stop()
        self.supernodes.clear()
        if self.link is not None:
            self.link.stop()
            self.link = None
