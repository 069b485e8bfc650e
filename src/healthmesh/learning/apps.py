"""The Flower apps of a training run: ``server_app`` (runs at the hub, under the SuperLink) and
``client_app`` (runs at each institution, under its SuperNode).

The run configuration carries ``spec`` (a :class:`TrainingSpec` as JSON) and ``result-dir``
(where the server writes ``result.json`` and ``model.npz``). A SuperNode's node configuration
carries ``data`` (an ``.npz`` the institution's governed data provider wrote: ``x_train``,
``y_train``, ``x_test``, ``y_test``) and ``institution``. SecAgg+ runs through Flower's legacy
workflow (``SecAggPlusWorkflow`` + ``secaggplus_mod``); client-level DP through
``fixedclipping_mod`` inside it, so updates are clipped before they are masked.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import flwr.compat.common.recorddict_compat as compat
import numpy as np
from flwr.app import Context, Message
from flwr.client import Client, ClientApp, NumPyClient
from flwr.client.mod import fixedclipping_mod, secaggplus_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import NDArrays, Scalar, parameters_to_ndarrays
from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD

from healthmesh.errors import HealthmeshError
from healthmesh.learning.metrics import accuracy, concordance_index
from healthmesh.learning.privacy import calibrate_noise, epsilon_spent
from healthmesh.learning.spec import TrainingSpec, parse_spec
from healthmesh.learning.strategies import RunLog, build_strategy


class TrainingFailed(HealthmeshError):
    """A round could not be aggregated; nothing of the run is released."""

    status = 503
    code = "transient"


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


class NodeClient(NumPyClient):
    """One institution's side of the run: trains on its rows, evaluates on its test rows."""

    def __init__(self, spec: TrainingSpec, data: dict[str, np.ndarray], institution: str):
        import torch  # here, not at import: SecAgg+ key-exchange messages need no torch

        from healthmesh.learning import models
        self.spec, self.institution = spec, institution
        self.models = models
        self.x, self.y = data["x_train"], data["y_train"]
        self.x_test, self.y_test = data["x_test"], data["y_test"]
        torch.set_num_threads(1)
        self.model = models.build_model(spec.model, spec.n_features, spec.hidden)
        self.noise = 0.0
        if spec.dp is not None and spec.dp.level == "record":
            self.noise = calibrate_noise(
                spec.dp.epsilon, population=len(self.x), sample=spec.batch_size,
                steps=spec.rounds * spec.local_steps, delta=spec.dp.delta, poisson=True,
            )

    def fit(
        self, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[NDArrays, int, dict[str, Scalar]]:
        self.models.set_weights(self.model, parameters)
        cfg = self.spec.local(proximal=self.spec.strategy == "fedprox")
        if self.noise and self.spec.dp is not None:
            cfg = replace(cfg, dp_clip=self.spec.dp.clip, dp_noise=self.noise)
        rnd = int(config.get("round", 0))
        loss = self.models.local_train(
            self.model, self.spec.model, self.x, self.y, cfg,
            seed=_seed(self.spec.seed, rnd, self.institution),
        )
        return self.models.get_weights(self.model), len(self.x), {"loss": loss}

    def evaluate(
        self, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[float, int, dict[str, Scalar]]:
        self.models.set_weights(self.model, parameters)
        score = self.models.predict(self.model, self.x_test)
        if self.spec.task == "survival":
            metric = concordance_index(self.y_test[:, 0], -score, self.y_test[:, 1])
        else:
            metric = accuracy(score, self.y_test)
        out: dict[str, Scalar] = {"metric": metric, "institution": self.institution}
        if self.noise and self.spec.dp is not None:
            rnd = int(config.get("round", self.spec.rounds))
            out["epsilon"] = epsilon_spent(
                self.noise, population=len(self.x), sample=self.spec.batch_size,
                steps=rnd * self.spec.local_steps, delta=self.spec.dp.delta, poisson=True,
            )
        return float(1.0 - metric), len(self.x_test), out


def _client_fn(context: Context) -> Client:
    spec = parse_spec(str(context.run_config["spec"]))
    with np.load(str(context.node_config["data"])) as f:
        data = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    institution = str(context.node_config.get("institution", context.node_id))
    return NodeClient(spec, data, institution).to_client()


def _client_dp_mod(msg: Message, ctx: Context, call_next: ClientAppCallable) -> Message:
    """Flower's ``fixedclipping_mod`` when the run uses client-level DP, else a pass-through."""
    spec = parse_spec(str(ctx.run_config["spec"]))
    if spec.dp is not None and spec.dp.level == "client":
        return fixedclipping_mod(msg, ctx, call_next)
    return call_next(msg, ctx)


def _secagg_mod(msg: Message, ctx: Context, call_next: ClientAppCallable) -> Message:
    """Flower's ``secaggplus_mod`` when the run uses SecAgg+ (the default), else a pass-through."""
    if parse_spec(str(ctx.run_config["spec"])).secagg:
        return secaggplus_mod(msg, ctx, call_next)
    return call_next(msg, ctx)


# SecAgg+ outermost: it masks what the clipping mod (inside it) has already clipped
client_app = ClientApp(client_fn=_client_fn, mods=[_secagg_mod, _client_dp_mod])

server_app = ServerApp()


@server_app.main()
def _server_main(grid: Grid, context: Context) -> None:
    run_server(grid, context)


def run_server(grid: Grid, context: Context) -> dict[str, Any]:
    """Run the whole training (all rounds) through ``grid``; write and return the result."""
    spec = parse_spec(str(context.run_config["spec"]))
    out = Path(str(context.run_config["result-dir"]))
    import torch

    from healthmesh.learning import models

    torch.manual_seed(spec.seed)
    initial = models.get_weights(models.build_model(spec.model, spec.n_features, spec.hidden))
    n_clients = int(context.run_config.get("clients", spec.min_clients))
    log = RunLog()
    strategy = build_strategy(spec, initial, n_clients, log)
    legacy = LegacyContext(context, config=ServerConfig(num_rounds=spec.rounds), strategy=strategy)
    fit_workflow = None
    if spec.secagg:
        fit_workflow = SecAggPlusWorkflow(
            num_shares=spec.secagg_shares if spec.secagg_shares <= 1 else int(spec.secagg_shares),
            reconstruction_threshold=(
                spec.secagg_threshold if spec.secagg_threshold <= 1 else int(spec.secagg_threshold)
            ),
            clipping_range=spec.secagg_clip,
            max_weight=spec.secagg_max_weight,
        )
    started = time.perf_counter()
    DefaultWorkflow(fit_workflow=fit_workflow)(grid, legacy)
    ended = time.perf_counter()
    if len(log.fit_rounds) < spec.rounds:
        raise TrainingFailed(
            f"only {len(log.fit_rounds)} of {spec.rounds} rounds aggregated "
            "(too few institutions answered, or secure aggregation halted)"
        )
    final = parameters_to_ndarrays(
        compat.arrayrecord_to_parameters(legacy.state.array_records[MAIN_PARAMS_RECORD], True)
    )
    result = summarise(spec, log, started, ended, n_clients)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "model.npz", *[np.asarray(w, dtype=np.float32) for w in final])
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def summarise(
    spec: TrainingSpec, log: RunLog, started: float, ended: float, n_clients: int
) -> dict[str, Any]:
    """The run's figures: metric per round (mean and per institution), seconds per round, DP."""
    marks = [*log.round_started, ended]
    rounds = []
    for i, ev in enumerate(log.evaluations):
        secs = marks[i + 1] - marks[i] if i + 1 < len(marks) else None
        rounds.append({k: v for k, v in ev.items() if k != "at"} | {"seconds": secs})
    final = log.evaluations[-1] if log.evaluations else None
    privacy: dict[str, Any] | None = None
    if spec.dp is not None:
        eps = spec.dp.epsilon
        if spec.dp.level == "record" and final is not None and final["record_epsilon"] is not None:
            eps = float(final["record_epsilon"])
        privacy = {
            "level": spec.dp.level, "epsilon": eps, "delta": spec.dp.delta,
            "clip": spec.dp.clip, "client_noise_multiplier": log.client_noise,
            "accountant": "rdp (flwr.supercore.privacy_accounting / dp-accounting)",
        }
    return {
        "spec": spec.model_dump(mode="json"),
        "clients": n_clients,
        "clients_per_round": log.fit_rounds,
        "rounds": rounds,
        "metric": final["metric"] if final else None,
        "per_institution": final["per_institution"] if final else {},
        "seconds": ended - started,
        "privacy": privacy,
    }
