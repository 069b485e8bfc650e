"""Record-level differential privacy inside one institution's training: DP-SGD.

Each step clips every example's gradient to ``dp_clip`` (L2), sums, adds Gaussian noise of
standard deviation ``dp_noise * dp_clip`` and divides by the expected batch size (Abadi et al.
2016). Batches are Poisson-sampled by the caller, so the privacy loss is that of the sampled
Gaussian mechanism, composed by Flower's RDP accountant (:mod:`healthmesh.learning.privacy`).

Per-example gradients come from ``torch.func`` (``vmap`` over ``grad``); written here rather
than taken from Opacus because Opacus is not a dependency and the models are tiny.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from healthmesh.errors import InvalidInput

if TYPE_CHECKING:
    from healthmesh.learning.spec import LocalConfig


def private_gradients(
    model: nn.Module,
    kind: str,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: LocalConfig,
    gen: torch.Generator,
    *,
    expected: int,
) -> torch.Tensor:
    """Set ``p.grad`` of every parameter to the noisy clipped mean gradient; the batch loss.

    ``x``/``y`` is the sampled batch (may be empty: the gradient is then noise only).
    """
    if kind == "cox":
        raise InvalidInput(
            "record-level DP-SGD needs a per-example loss; the Cox partial likelihood has none "
            "(use client-level DP for survival models)"
        )
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}

    def one_loss(
        p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor
    ) -> torch.Tensor:
        out = functional_call(model, p, (xi.unsqueeze(0),)).squeeze(-1)
        return nn.functional.binary_cross_entropy_with_logits(out, yi.unsqueeze(0))

    summed = {n: torch.zeros_like(p) for n, p in params.items()}
    loss = torch.zeros(())
    if len(x):
        per = vmap(grad(one_loss), in_dims=(None, 0, 0))(params, x, y)
        norms = torch.sqrt(sum(per[n].flatten(1).pow(2).sum(1) for n in names))
        scale = torch.clamp(cfg.dp_clip / (norms + 1e-12), max=1.0)
        for n in names:
            summed[n] = (per[n] * scale.view(-1, *([1] * (per[n].dim() - 1)))).sum(0)
        with torch.no_grad():
            out = model(x).squeeze(-1)
            loss = nn.functional.binary_cross_entropy_with_logits(out, y)
    for n, p in model.named_parameters():
        noise = torch.normal(0.0, cfg.dp_noise * cfg.dp_clip, p.shape, generator=gen)
        p.grad = (summed[n] + noise) / expected
    return loss
