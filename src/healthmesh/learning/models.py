"""The models federated training fits, and one client's local optimisation (PyTorch, CPU).

- ``logreg``: logistic regression, ``Linear(p, 1)`` + sigmoid, binary cross-entropy.
- ``mlp``: a small multilayer perceptron (one hidden ReLU layer) for binary outcomes.
- ``cox``: linear Cox proportional hazards, ``Linear(p, 1, bias=False)``, negative Breslow
  partial log-likelihood (ties handled by Breslow's approximation).

Parameters travel as a list of numpy arrays in ``model.parameters()`` order, the form Flower's
legacy strategies and SecAgg+ aggregate. Local training supports FedProx's proximal term and
record-level DP-SGD (per-example clipping + Gaussian noise, :mod:`healthmesh.learning.dpsgd`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from healthmesh.errors import InvalidInput
from healthmesh.learning.dpsgd import private_gradients
from healthmesh.learning.spec import LocalConfig

MODELS = ("logreg", "mlp", "cox")
Arrays = list[npt.NDArray[np.float32]]


def build_model(kind: str, n_features: int, hidden: int = 16) -> nn.Module:
    """A freshly initialised model of ``kind`` for ``n_features`` inputs."""
    if n_features < 1:
        raise InvalidInput("a model needs at least one feature")
    if kind == "logreg":
        return nn.Linear(n_features, 1)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    if kind == "cox":
        return nn.Linear(n_features, 1, bias=False)
    raise InvalidInput(f"unknown model {kind!r}; one of {', '.join(MODELS)}")


def get_weights(model: nn.Module) -> Arrays:
    """The model's parameters as float32 numpy arrays (copies)."""
    return [p.detach().cpu().numpy().astype(np.float32).copy() for p in model.parameters()]


def set_weights(model: nn.Module, weights: Arrays) -> None:
    """Load ``weights`` (as :func:`get_weights` lists them) into ``model``."""
    params = list(model.parameters())
    if len(params) != len(weights):
        raise InvalidInput(f"expected {len(params)} weight arrays, got {len(weights)}")
    with torch.no_grad():
        for p, w in zip(params, weights, strict=True):
            if tuple(p.shape) != tuple(np.shape(w)):
                raise InvalidInput(f"weight shape {np.shape(w)} does not fit {tuple(p.shape)}")
            p.copy_(torch.as_tensor(np.asarray(w, dtype=np.float32)))


def cox_loss(score: torch.Tensor, time: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
    """Negative Breslow partial log-likelihood, averaged over events (0 when none)."""
    order = torch.argsort(time, descending=True)
    s, t, e = score[order], time[order], event[order]
    # risk set of i = everyone with time >= t_i; with ties, all tied rows share one risk set
    log_cum = torch.logcumsumexp(s, dim=0)
    # for tied times use the risk-set sum at the last row of the tie group
    _, inverse, counts = torch.unique_consecutive(t, return_inverse=True, return_counts=True)
    last = torch.cumsum(counts, dim=0) - 1
    log_risk = log_cum[last[inverse]]
    n_events = e.sum()
    if n_events.item() == 0:
        return (s * 0.0).sum()
    return -((s - log_risk) * e).sum() / n_events


def loss_fn(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss of ``kind`` for outputs ``out`` (n,) and targets ``y``.

    Binary models: ``y`` is (n,) 0/1. Cox: ``y`` is (n, 2) of (time, event).
    """
    if kind == "cox":
        return cox_loss(out, y[:, 0], y[:, 1])
    return nn.functional.binary_cross_entropy_with_logits(out, y)


def local_train(
    model: nn.Module,
    kind: str,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    cfg: LocalConfig,
    seed: int,
) -> float:
    """Optimise ``model`` in place for ``cfg.steps`` minibatch steps; the mean training loss.

    Minibatches are drawn epoch by epoch from a permutation seeded by ``seed``. A Cox model
    trains on full batches (the partial likelihood needs whole risk sets), as FLamby does.
    """
    n = len(x)
    if n == 0:
        raise InvalidInput("no training rows at this node")
    gen = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    params = list(model.parameters())
    anchor = [p.detach().clone() for p in params]
    opt: torch.optim.Optimizer
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr)
    else:
        raise InvalidInput(f"unknown optimizer {cfg.optimizer!r}")
    batch = n if kind == "cox" else min(cfg.batch_size, n)
    perm = torch.randperm(n, generator=gen)
    pos, total = 0, 0.0
    model.train()
    for _ in range(cfg.steps):
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos : pos + batch]
        pos += batch
        opt.zero_grad()
        if cfg.dp_clip > 0:
            # DP-SGD: Poisson-sampled batch (rate batch/n), the sampling its accountant assumes
            idx = torch.nonzero(torch.rand(n, generator=gen) < batch / n).squeeze(-1)
            loss = private_gradients(model, kind, xt[idx], yt[idx], cfg, gen, expected=batch)
        else:
            loss = loss_fn(kind, model(xt[idx]).squeeze(-1), yt[idx])
            loss.backward()  # type: ignore[no-untyped-call]
        if cfg.weight_decay > 0:
            with torch.no_grad():
                for p in params:
                    if p.grad is not None and p.dim() > 1:  # weights, not biases
                        p.grad.add_(cfg.weight_decay * p)
        if cfg.proximal_mu > 0:
            with torch.no_grad():
                for p, a in zip(params, anchor, strict=True):
                    if p.grad is not None:
                        p.grad.add_(cfg.proximal_mu * (p - a))
        opt.step()
        total += float(loss.detach())
    return total / max(cfg.steps, 1)


def predict(model: nn.Module, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The model's raw scores (logits, or Cox log relative hazards) for rows ``x``."""
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(x, dtype=torch.float32)).squeeze(-1)
    result: npt.NDArray[np.float64] = out.numpy().astype(np.float64)
    return result
