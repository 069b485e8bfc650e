"""A federated training run as a study computation: the SDK algorithm ``federated_learning``.

The hub runs it like any study computation (:mod:`healthmesh.hub.jobs`): ``central`` starts a
Flower SuperLink (:class:`healthmesh.learning.deploy.SuperLink`, TLS with SuperNode
authentication), asks every approving node to ``join`` (the task carries the SuperLink's CA
certificate, so it is authenticated by the federation's request signing), registers the
public key each joined node answered with, asks them to ``start``, submits the run (``flwr
run``, SecAgg+ on by default), waits for it, asks the nodes to ``leave`` (also when the run
fails) and returns the model, its hash, metrics, ε/δ and the participants. Each node's agent
runs ``join`` only when the node's own record approves this study, algorithm and cohort;
``join`` guards the cohort, writes the node's consent-filtered complete-case rows
(:class:`healthmesh.learning.governance.NodeDataProvider` over the node's ``NodeData``) and a
fresh SuperNode key pair for this run into a private temporary directory; ``start`` starts the
SuperNode subprocess whose ClientApp reads them, connected to the hub's SuperLink, verifying
it with the CA certificate. Only ``{"n", "features", "public_key"}`` leaves. A SuperNode
whose key the hub did not register (an institution that did not join this run) is refused by
the SuperLink. An insecure link (plaintext, no node authentication) is a development option
only: the hub's :class:`~healthmesh.learning.tls.LinkSecurity` must say so, and a node joins
such a run only when its own algorithm was built with ``LinkSecurity(insecure=True)`` too.

Parameters: ``cohort``; ``outcome`` (a 0/1 variable; ``logreg``/``mlp``) or ``survival`` (a
survival variable; ``cox``); ``covariates`` (the features); ``spec`` (the
:class:`~healthmesh.learning.spec.TrainingSpec` fields but ``n_features``: model, strategy,
rounds, DP, SecAgg+ ...); ``test_fraction`` (0.3); ``superlink_host`` (the address nodes use to
reach the hub's SuperLink, default ``127.0.0.1``; it is in the SuperLink's TLS
certificate); ``timeout`` (seconds for the whole run, 600); ``model_name`` (registry name,
default ``federated_learning``). The hub resolves study variable names in ``outcome``,
``survival`` and ``covariates``.

Process registry: the SuperNodes a node started live in the module-level ``_SUPERNODES``,
keyed by (node, run key), because a SuperNode must outlive the ``start`` task that started it
(the agent process holds it until ``leave``). Each entry has a deadline (the run's timeout plus
a margin): any later ``join``/``leave`` stops expired entries, and process exit stops all, so
a hub that never sends ``leave`` cannot leave a SuperNode running for ever.

The model registry and the link's security are bound by :func:`federated_learning` (the hub
passes its :class:`~healthmesh.learning.registry.ModelRegistry` and a
:class:`~healthmesh.learning.tls.LinkSecurity` with its CA directory through its algorithm
lookup); ``ALGORITHM`` registers nothing and makes a CA per run.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from healthmesh.analytics import _model_fit as mf
from healthmesh.analytics.cohort import SurvivalVariable, Variable
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released
from healthmesh.errors import DisclosureRisk, InvalidInput
from healthmesh.learning.deploy import DeploymentError, SuperLink, SuperNode
from healthmesh.learning.governance import ALGORITHM as NAME
from healthmesh.learning.governance import NodeDataProvider, cohort_digest
from healthmesh.learning.registry import ModelRegistry, weights_digest
from healthmesh.learning.spec import TrainingSpec, parse_spec
from healthmesh.learning.tls import LinkSecurity, load_ca_pem, new_node_key
from healthmesh.ledger.phi import random_id

_MARGIN_S = 120.0
_LOCAL = ("127.0.0.1", "localhost", "::1")


# ---- parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    cohort: Any
    label: Variable
    covariates: list[Variable]
    spec: TrainingSpec
    test_fraction: float
    timeout: float


def _parse(params: Params) -> _Run:
    cohort = mf.parse_cohort(params)
    if ("outcome" in params) == ("survival" in params):
        raise InvalidInput("give exactly one of 'outcome' (0/1) or 'survival'", location="outcome")
    key = "survival" if "survival" in params else "outcome"
    label = mf.parse_variable(params[key], key)
    if (key == "survival") != isinstance(label, SurvivalVariable):
        raise InvalidInput(f"'{key}' has the wrong kind of variable", location=key)
    covariates = mf.parse_covariates(params, reserved=[label])
    if not covariates:
        raise InvalidInput("'covariates' must name at least one feature", location="covariates")
    raw = params.get("spec") or {}
    if not isinstance(raw, dict):
        raise InvalidInput("'spec' must be an object", location="spec")
    if "n_features" in raw:
        raise InvalidInput("spec.n_features is set from the covariates", location="spec")
    task = "survival" if key == "survival" else "binary"
    spec = parse_spec({"task": task, "model": "cox" if task == "survival" else "logreg",
                       **raw, "n_features": len(mf.design_names(covariates))})
    test_fraction = mf.parse_float(params, "test_fraction", 0.3, 0.05, 0.9)
    timeout = mf.parse_float(params, "timeout", 600.0, 10.0, 86_400.0)
    for k in ("superlink_host", "model_name"):
        if k in params and not (isinstance(params[k], str) and 0 < len(params[k]) <= 64):
            raise InvalidInput(f"'{k}' must be a short string", location=k)
    return _Run(cohort, label, covariates, spec, test_fraction, timeout)


def validate(params: Params) -> None:
    """Hub-side check of a study's parameters (InvalidInput naming the bad one)."""
    _parse(params)


# ---- node side: the SuperNode registry -----------------------------------------------------


@dataclass
class _Joined:
    supernode: SuperNode
    workdir: str
    deadline: float
    released: Released
    started: bool = field(default=False)


_SUPERNODES: dict[tuple[str, str], _Joined] = {}
_LOCK = threading.Lock()


def _drop(entry: _Joined) -> None:
    entry.supernode.stop()
    shutil.rmtree(entry.workdir, ignore_errors=True)


def _reap(now: float | None = None) -> None:
    """Stop SuperNodes whose run is past its deadline."""
    now = time.monotonic() if now is None else now
    with _LOCK:
        expired = [k for k, e in _SUPERNODES.items() if e.deadline < now]
        entries = [_SUPERNODES.pop(k) for k in expired]
    for e in entries:
        _drop(e)


@atexit.register
def stop_all() -> None:
    """Stop every SuperNode this process started (at exit; tests)."""
    with _LOCK:
        entries = list(_SUPERNODES.values())
        _SUPERNODES.clear()
    for e in entries:
        _drop(e)


def active() -> list[tuple[str, str]]:
    """(node, run key) of every SuperNode this process holds now."""
    with _LOCK:
        return sorted(_SUPERNODES)


def _run_key(args: Params) -> str:
    key = args.get("run_key")
    if not (isinstance(key, str) and 0 < len(key) <= 64 and key.replace("-", "").isalnum()):
        raise InvalidInput("'run_key' must be a short alphanumeric id", location="run_key")
    return key


def _link_args(args: Params, allow_insecure: bool) -> str | None:
    """The SuperLink's CA certificate (PEM) from the task; None for an insecure link, which
    this node accepts only when built for development (``allow_insecure``)."""
    if args.get("insecure") is True:
        if not allow_insecure:
            raise DisclosureRisk(
                "link-security: this node joins Flower runs over TLS with authentication only")
        return None
    pem = args.get("ca_cert")
    load_ca_pem(pem)
    return str(pem)


def node_join(ctx: NodeContext, args: Params, *, allow_insecure: bool = False) -> Released:
    """Join a run: guard the cohort, write the node's rows and a fresh SuperNode key pair;
    the public key goes back to the hub, which registers it before :func:`node_start`."""
    _reap()
    run, key = _parse(args), _run_key(args)
    superlink = args.get("superlink")
    if not isinstance(superlink, str) or ":" not in superlink:
        raise InvalidInput("'superlink' must be host:port", location="superlink")
    ca_pem = _link_args(args, allow_insecure)
    with _LOCK:
        known = _SUPERNODES.get((ctx.node, key))
    if known is not None:
        if known.supernode.alive or not known.started:
            return dict(known.released)
        with _LOCK:  # its SuperNode ended: join again from scratch
            _SUPERNODES.pop((ctx.node, key), None)
        _drop(known)
    ctx.guard.cohort(ctx.data.members(run.cohort))
    if run.spec.dp is None:
        ctx.guard.exact("federated training without differential privacy")
    ds = NodeDataProvider(ctx.data).dataset(
        run.cohort, run.covariates, run.label, test_fraction=run.test_fraction,
        seed=run.spec.seed)
    n = len(ds.x_train) + len(ds.x_test)
    ctx.guard.cells([n], what="training rows")
    if len(ds.x_train) == 0 or len(ds.x_test) == 0:
        raise DisclosureRisk("min-cell-size: too few eligible patients to train and test")
    if ds.columns != mf.design_names(run.covariates):
        raise InvalidInput("the node's feature columns differ from the run's")
    if run.spec.dp is not None:  # the run's (epsilon, delta) against this node's budget
        ctx.guard.charge(run.spec.dp.epsilon, run.spec.dp.delta)
    workdir = tempfile.mkdtemp(prefix="hm-fl-node-")  # mode 0700: the rows stay private
    try:
        data = str(Path(workdir) / "data.npz")
        ds.save(data)
        released: Released = {"n": round(ctx.guard.release_count(n)), "features": ds.columns}
        if ca_pem is None:
            node = SuperNode(superlink, ctx.node, data, Path(workdir), insecure=True)
        else:
            ca_file = Path(workdir) / "superlink-ca.pem"
            ca_file.write_text(ca_pem)
            pair = new_node_key(Path(workdir))
            node = SuperNode(superlink, ctx.node, data, Path(workdir),
                             root_certificates=ca_file, auth_key=pair.private_path)
            released["public_key"] = pair.public_key
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    with _LOCK:
        _SUPERNODES[(ctx.node, key)] = _Joined(
            node, workdir, time.monotonic() + run.timeout + _MARGIN_S, released)
    return dict(released)


def node_start(ctx: NodeContext, args: Params) -> Released:
    """Start the SuperNode of a run this node joined (its key is registered by now)."""
    key = _run_key(args)
    with _LOCK:
        entry = _SUPERNODES.get((ctx.node, key))
    if entry is None:
        raise InvalidInput("this node has not joined the run", location="run_key")
    with _LOCK:
        first, entry.started = not entry.started, True
    if first:
        try:
            entry.supernode.start()
        except BaseException:
            with _LOCK:
                _SUPERNODES.pop((ctx.node, key), None)
            _drop(entry)
            raise
    return {"started": True}


def node_leave(ctx: NodeContext, args: Params) -> Released:
    """Leave a run: stop its SuperNode and delete its rows (idempotent)."""
    key = _run_key(args)
    with _LOCK:
        entry = _SUPERNODES.pop((ctx.node, key), None)
    if entry is not None:
        _drop(entry)
    _reap()
    return {"left": entry is not None}


# ---- hub side --------------------------------------------------------------------------------


def _min_institutions(parts: dict[str, Released]) -> None:
    if len(parts) < 2:
        raise DisclosureRisk(
            "min-institutions: federated training needs two institutions that joined")


def _central(
    registry: ModelRegistry | None, security: LinkSecurity, ctx: HubContext, params: Params
) -> dict[str, Any]:
    run = _parse(params)
    job_id = str(getattr(ctx, "job_id", "") or random_id("run-", 6))
    study_id = str(getattr(ctx, "study_id", "") or "")
    key = job_id.replace(".", "-")[:64]
    host = str(params.get("superlink_host", "127.0.0.1"))
    # nodes on other machines reach the Fleet API only, through the TLS proxy
    expose = None if host in _LOCAL else "0.0.0.0"  # noqa: S104 (Fleet proxy: TLS + node auth)
    link = SuperLink(host=host, security=security, expose=expose)
    link.start()
    try:
        args = {k: params[k] for k in ("cohort", "outcome", "survival", "covariates",
                                       "spec", "test_fraction", "timeout") if k in params}
        ca_pem = link.ca_pem()
        secure: dict[str, Any] = {"insecure": True} if ca_pem is None else {"ca_cert": ca_pem}
        joined = ctx.call("join", {**args, "run_key": key, "superlink": link.address, **secure})
        try:
            _min_institutions(joined)
            columns = mf.design_names(run.covariates)
            if any(p.get("features") != columns for p in joined.values()):
                raise InvalidInput("institutions produced different feature columns")
            if ca_pem is not None:  # only the institutions that joined this run may connect
                link.register_nodes({node: p.get("public_key") for node, p in joined.items()})
            started = ctx.call("start", {"run_key": key})
            parts = {n: joined[n] for n in started}
            _min_institutions(parts)
            update: dict[str, Any] = {"min_clients": len(parts)}
            if "secagg_max_weight" not in (params.get("spec") or {}):
                # SecAgg+ quantises weight * rows / cap: a cap near the largest node keeps
                # precision (n is released, maybe noised: a margin keeps rows under it)
                largest = max(int(p["n"]) for p in parts.values())
                update["secagg_max_weight"] = max(1.2 * largest, 10.0)
            spec = run.spec.model_copy(update=update)
            result = link.run(spec.model_dump_json(), len(parts), timeout=run.timeout)
        finally:
            ctx.call("leave", {"run_key": key})
        with np.load(result["model_path"]) as f:
            weights = [f[f"arr_{i}"] for i in range(len(f.files))]
    finally:
        link.stop()
    participants = {n: {"n": int(p["n"])} for n, p in parts.items()}
    privacy = result.get("privacy")
    out: dict[str, Any] = {
        "model": {"kind": spec.model, "digest": weights_digest(weights),
                  "features": columns, "weights": [w.tolist() for w in weights]},
        "metric": result.get("metric"),
        "per_institution": result.get("per_institution", {}),
        "rounds": result.get("rounds"),
        "clients_per_round": result.get("clients_per_round"),
        "privacy": privacy,
        "epsilon": privacy["epsilon"] if privacy else None,
        "delta": privacy["delta"] if privacy else None,
        "secagg": spec.secagg,
        "participants": participants,
        "registered": None,
    }
    if registry is not None:
        lineage = {"institutions": participants,
                   "cohort": run.cohort.model_dump(mode="json"),
                   "cohort_digest": cohort_digest(run.cohort), "feature_columns": columns,
                   "covariates": [v.model_dump(mode="json") for v in run.covariates],
                   "privacy": privacy, "rounds": result.get("rounds")}
        model = registry.register(
            str(params.get("model_name", NAME)), study_id=study_id or "-", job_id=job_id,
            spec=spec.model_dump(mode="json"), weights=weights, metric=result.get("metric"),
            per_institution=result.get("per_institution", {}), lineage=lineage)
        out["registered"] = {"name": model.name, "version": model.version}
    return out


def _central_guarded(
    registry: ModelRegistry | None, security: LinkSecurity, ctx: HubContext, params: Params
) -> dict[str, Any]:
    """:func:`_central` with process failures (a Flower program missing, a CLI call that hung)
    as :class:`DeploymentError`, so the job runner records a failed job."""
    try:
        return _central(registry, security, ctx, params)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DeploymentError(f"a Flower process failed: {type(exc).__name__}") from None


def federated_learning(
    registry: ModelRegistry | None = None, security: LinkSecurity | None = None
) -> Algorithm:
    """The algorithm; with ``registry`` the hub registers every trained model there.

    ``security``: how the hub's SuperLink is secured (default: TLS with a CA made per run,
    SuperNode authentication); ``LinkSecurity(insecure=True)`` is for development only and
    makes the node side accept insecure runs too."""
    sec = security or LinkSecurity()

    def central(ctx: HubContext, params: Params) -> dict[str, Any]:
        return _central_guarded(registry, sec, ctx, params)

    join = partial(node_join, allow_insecure=sec.insecure)
    return Algorithm(
        NAME, "federated training on Flower (SecAgg+, optional DP)",
        {"join": join, "start": node_start, "leave": node_leave}, central, validate,
    )


ALGORITHM = federated_learning()
